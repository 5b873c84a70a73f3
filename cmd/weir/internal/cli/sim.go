package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/sim"
)

// simFlags are weir sim's flags.
type simFlags struct {
	limits, policies                     []string
	configPath, pattern, forText, plotTo string
	asJSON                               bool
}

func simCommand(stdio IO) *cobra.Command {
	var sf simFlags
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
			scenarios, err := sf.scenarios()
			if err != nil {
				return err
			}
			opt, format, err := sf.options()
			if err != nil {
				return err
			}
			results, err := sim.Run(cmd.Context(), scenarios, opt)
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			if err := sf.print(stdio.Stdout, results); err != nil {
				return err
			}
			return sf.plot(format, results)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&sf.limits, "limit", nil, "a scenario: a limit's text form, or several joined by ';' (repeatable)")
	f.StringVar(&sf.configPath, "config", "", "policy file to take --policy from")
	f.StringArrayVar(&sf.policies, "policy", nil, "a scenario: the limits of this policy of --config (repeatable)")
	f.StringVar(&sf.pattern, "pattern", "", "traffic: constant:RATE, poisson:RATE, bursts:SIZE/EVERY, daily:PEAK or file:PATH (required)")
	f.StringVar(&sf.forText, "for", "", "length of the run in virtual time, e.g. 90s, 1h, 1d (default 1h; a replay: its whole span)")
	f.StringVar(&sf.plotTo, "plot", "", "draw offered vs admitted over time, one panel per scenario, to this .svg or .png file")
	f.BoolVar(&sf.asJSON, "json", false, "print one JSON object per scenario instead of a line of text")
	return cmd
}

// simUsage is the ExitError of a bad flag or value.
func simUsage(format string, a ...any) error {
	return &ExitError{Code: 2, Err: fmt.Errorf(format, a...)}
}

// scenarios are the --limit scenarios, then the --policy ones.
func (sf *simFlags) scenarios() ([]sim.Scenario, error) {
	var scenarios []sim.Scenario
	for _, text := range sf.limits {
		sc := sim.Scenario{Name: strings.TrimSpace(text)}
		for part := range strings.SplitSeq(text, ";") {
			l, err := weir.ParseLimit(part)
			if err != nil {
				return nil, simUsage("--limit %q: %v", text, err)
			}
			sc.Limits = append(sc.Limits, l)
		}
		scenarios = append(scenarios, sc)
	}
	if (sf.configPath == "") != (len(sf.policies) == 0) {
		return nil, simUsage("--config and --policy go together")
	}
	if sf.configPath != "" {
		cfg, err := config.Load(sf.configPath)
		if err != nil {
			return nil, simUsage("--config: %v", err)
		}
		for _, name := range sf.policies {
			p, ok := cfg.Policy(name)
			if !ok {
				return nil, simUsage("--policy %q: no such policy in %s", name, sf.configPath)
			}
			scenarios = append(scenarios, sim.Scenario{Name: p.Name, Limits: p.Limits, Shadow: p.Shadow})
		}
	}
	if len(scenarios) == 0 {
		return nil, simUsage("give at least one --limit, or --config and --policy")
	}
	return scenarios, nil
}

// options are the run's pattern and length, and the picture's format
// ("" without --plot).
func (sf *simFlags) options() (sim.Options, sim.Format, error) {
	if sf.pattern == "" {
		return sim.Options{}, "", simUsage("--pattern is required")
	}
	pat, err := sim.ParsePattern(sf.pattern)
	if err != nil {
		return sim.Options{}, "", simUsage("--pattern: %v", err)
	}
	opt := sim.Options{Pattern: pat}
	if sf.forText != "" {
		l, err := weir.ParseLimit("1/" + sf.forText)
		if err != nil {
			return sim.Options{}, "", simUsage("--for %q: not a duration such as 90s, 1h or 1d", sf.forText)
		}
		opt.For = l.Period
	} else if _, replay := pat.(*sim.Replay); !replay {
		opt.For = time.Hour
	}
	format := sim.Format("")
	if sf.plotTo != "" {
		if format, err = sim.FormatOf(sf.plotTo); err != nil {
			return sim.Options{}, "", simUsage("--plot: %v", err)
		}
	}
	return opt, format, nil
}

// print writes one line (or JSON object) per scenario.
func (sf *simFlags) print(w io.Writer, results []sim.Result) error {
	out := bufio.NewWriter(w)
	for _, r := range results {
		if sf.asJSON {
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
	return nil
}

// plot draws the results to --plot, if given.
func (sf *simFlags) plot(format sim.Format, results []sim.Result) error {
	if sf.plotTo == "" {
		return nil
	}
	f, err := os.Create(sf.plotTo)
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
	return nil
}
