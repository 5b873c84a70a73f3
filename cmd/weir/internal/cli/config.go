package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/daemon"
	"github.com/weir-go/weir/server/service"
)

func configCommand(stdio IO) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with configuration files"}
	var envoy []string
	var store string
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a policy file (the Envoy and TLS files it names too) without serving",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Everything is validated before anything is printed: "ok"
			// only when all of it is.
			cfg, err := daemon.Load(daemon.Options{ConfigPath: args[0], EnvoyPaths: envoy, Store: store})
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			// Build the limiters too: the same validation a reload does.
			svc, err := service.New(nopStore{}, nopStore{}, cfg, nil)
			if err != nil {
				return &ExitError{Code: 1, Err: fmt.Errorf("%s: %w", args[0], err)}
			}
			svc.Close() // stops the local-quota stores a local: section starts
			// The server section's TLS files, loaded as weir serve loads them.
			tlsr, err := daemon.LoadTLS(daemon.Options{}, cfg, nil)
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			policies := fmt.Sprintf("%d policies", len(cfg.Policies))
			if len(cfg.Policies) == 1 {
				policies = "1 policy"
			}
			fmt.Fprintf(stdio.Stdout, "%s: ok (%s", args[0], policies)
			if len(cfg.Envoy) > 0 {
				fmt.Fprintf(stdio.Stdout, ", %s", plural(len(cfg.Envoy), "envoy domain"))
			}
			fmt.Fprintln(stdio.Stdout, ")")
			for _, p := range cfg.Policies {
				fmt.Fprintf(stdio.Stdout, "  %s:", p.Name)
				for _, l := range p.Limits {
					fmt.Fprintf(stdio.Stdout, " [%s]", config.LimitLabel(l))
				}
				fmt.Fprintf(stdio.Stdout, " key=%s", p.Key)
				if p.Shadow {
					fmt.Fprint(stdio.Stdout, " shadow")
				}
				if p.Plans != nil {
					fmt.Fprintf(stdio.Stdout, " plans: default %s, %s listed", p.Plans.Default, plural(len(p.Plans.Keys), "key"))
				}
				fmt.Fprintln(stdio.Stdout)
			}
			for _, pl := range cfg.Plans {
				fmt.Fprintf(stdio.Stdout, "  plan %s:", pl.Name)
				for _, l := range pl.Limits {
					fmt.Fprintf(stdio.Stdout, " [%s]", config.LimitLabel(l))
				}
				fmt.Fprintln(stdio.Stdout)
			}
			for _, d := range cfg.Envoy {
				fmt.Fprintf(stdio.Stdout, "  envoy domain %s (%s)\n", d.Name, d.File)
			}
			if tlsr != nil {
				leaf := tlsr.Certificate().Leaf
				fmt.Fprintf(stdio.Stdout, "  tls: %s, valid until %s", leaf.Subject, leaf.NotAfter.UTC().Format(time.RFC3339))
				if tlsr.MutualTLS() {
					fmt.Fprint(stdio.Stdout, ", client certificates required")
				}
				fmt.Fprintln(stdio.Stdout)
			}
			return nil
		},
	}
	check.Flags().StringVar(&store, "store", "", "check the limits against this store (as weir serve --store); default: the file's server.store, else memory")
	check.Flags().StringArrayVar(&envoy, "envoy-config", nil, "also validate these envoyproxy/ratelimit files or directories")
	cmd.AddCommand(check)
	return cmd
}

// plural is n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
