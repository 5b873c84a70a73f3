package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/sim"
)

func simCommand(stdio IO) *cobra.Command {
	var limits, policies []string
	var configPath, pattern, forText, plotPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "sim (--limit TEXT ... | --config FILE --policy NAME ...) --pattern PATTERN [--for D]",
		Short: "Show what limits would do with a traffic pattern, in virtual time",
		Long: `Run limits against a traffic pattern in virtual time, with the same
algorithm code the stores run, and print one line per scenario: requests
offered, admitted and denied; per limit its utilisation, the most units
admitted for one key in any window of its period beside the algorithm's
exact bound, and the denials it decided; and the retry-after distribution.

Each --limit is a scenario: a limit's text form ("100/s burst=200",
"6000/m algo=sliding-window"), or several joined by ";" to apply together
("10/s burst=20; 1000/d"). Each --policy is a scenario too: the limits of
that policy of the --config file (keys are used as they come, not
rendered through the policy's key template).

Patterns (RATE is N/PERIOD, or N per second):
  constant:RATE                      evenly spaced requests
  poisson:RATE[,seed=N]              random gaps (exponential)
  bursts:SIZE/EVERY[,width=D][,base=RATE]
                                     SIZE requests every EVERY, spread over width
  daily:PEAK[,low=RATE][,peak=HH:MM][,seed=N]
                                     a day's cosine curve, Poisson arrivals
  file:PATH                          replay lines "TIME [KEY [COST]]" (RFC 3339
                                     or Unix seconds), from the file's first time
Generated patterns also take keys=N (requests spread over N keys in turn)
and cost=N. Runs of generated patterns start at 2026-01-01T00:00:00Z.

  weir sim --limit '100/s burst=200' --limit '100/s algo=fixed-window' \
      --pattern bursts:500/10s,width=1s,base=50/s --for 1m --plot out.png

Exit status: 0 on success, 1 on an error, 2 for bad flags or values.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			usage := func(format string, a ...any) error {
				return &ExitError{Code: 2, Err: fmt.Errorf(format, a...)}
			}
			var scenarios []sim.Scenario
			for _, text := range limits {
				sc := sim.Scenario{Name: strings.TrimSpace(text)}
				for part := range strings.SplitSeq(text, ";") {
					l, err := weir.ParseLimit(part)
					if err != nil {
						return usage("--limit %q: %v", text, err)
					}
					sc.Limits = append(sc.Limits, l)
				}
				scenarios = append(scenarios, sc)
			}
			if (configPath == "") != (len(policies) == 0) {
				return usage("--config and --policy go together")
			}
			if configPath != "" {
				cfg, err := config.Load(configPath)
				if err != nil {
					return usage("--config: %v", err)
				}
				for _, name := range policies {
					p, ok := cfg.Policy(name)
					if !ok {
						return usage("--policy %q: no such policy in %s", name, configPath)
					}
					scenarios = append(scenarios, sim.Scenario{Name: p.Name, Limits: p.Limits, Shadow: p.Shadow})
				}
			}
			if len(scenarios) == 0 {
				return usage("give at least one --limit, or --config and --policy")
			}
			if pattern == "" {
				return usage("--pattern is required")
			}
			pat, err := sim.ParsePattern(pattern)
			if err != nil {
				return usage("--pattern: %v", err)
			}
			opt := sim.Options{Pattern: pat}
			if forText != "" {
				l, err := weir.ParseLimit("1/" + forText)
				if err != nil {
					return usage("--for %q: not a duration such as 90s, 1h or 1d", forText)
				}
				opt.For = l.Period
			} else if _, replay := pat.(*sim.Replay); !replay {
				opt.For = time.Hour
			}
			format := sim.Format("")
			if plotPath != "" {
				if format, err = sim.FormatOf(plotPath); err != nil {
					return usage("--plot: %v", err)
				}
			}
			results, err := sim.Run(cmd.Context(), scenarios, opt)
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			out := bufio.NewWriter(stdio.Stdout)
			for _, r := range results {
				if asJSON {
					b, err := json.Marshal(r)
					if err != nil {
						return &ExitError{Code: 1, Err: err}
					}
					out.Write(append(b, '\n'))
				} else {
					fmt.Fprintln(out, r)
				}
			}
			if err := out.Flush(); err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			if plotPath != "" {
				f, err := os.Create(plotPath)
				if err != nil {
					return &ExitError{Code: 1, Err: err}
				}
				if err := sim.Plot(f, format, results); err != nil {
					f.Close()
					return &ExitError{Code: 1, Err: fmt.Errorf("--plot: %w", err)}
				}
				if err := f.Close(); err != nil {
					return &ExitError{Code: 1, Err: err}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&limits, "limit", nil, "a scenario: a limit's text form, or several joined by ';' (repeatable)")
	f.StringVar(&configPath, "config", "", "policy file to take --policy from")
	f.StringArrayVar(&policies, "policy", nil, "a scenario: the limits of this policy of --config (repeatable)")
	f.StringVar(&pattern, "pattern", "", "traffic: constant:RATE, poisson:RATE, bursts:SIZE/EVERY, daily:PEAK or file:PATH (required)")
	f.StringVar(&forText, "for", "", "length of the run in virtual time, e.g. 90s, 1h, 1d (default 1h; a replay: its whole span)")
	f.StringVar(&plotPath, "plot", "", "draw offered vs admitted over time, one panel per scenario, to this .svg or .png file")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per scenario instead of a line of text")
	return cmd
}
