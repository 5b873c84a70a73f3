package cli

import (
	"github.com/spf13/cobra"
	"github.com/weir-go/weir/server/daemon"
)

func serveCommand(stdio IO) *cobra.Command {
	var fl daemon.Flags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the rate-limit server (HTTP JSON, gRPC, Envoy RLS)",
		Long: `Run the weir rate-limit server.

With no flags it serves the built-in demo policies from the memory store on
127.0.0.1:8080 (HTTP) and 127.0.0.1:8081 (gRPC) and prints where to look.

Stores: memory (default; memory:?max_keys=N&sweep=30s), sqlite:PATH,
redis://[user:pass@]HOST:PORT/DB. Policies come from --config (YAML); Envoy
rate-limit configuration (envoyproxy/ratelimit format) from --envoy-config
or the config's envoy.files. Files are re-read when they change and on
SIGHUP; a bad file keeps the running configuration.

TLS: --tls-cert and --tls-key (or the config's server.tls: cert, key,
client_ca) serve HTTPS and gRPC over TLS (1.2 or later) on both
listeners; the files are re-read when they change, so replacing
them rotates the certificate without a restart. --tls-client-ca requires a
client certificate signed by one of its authorities (mutual TLS); a verified
certificate is then enough for the decision APIs, while reset and reload
still need an --admin-token. The pprof listener stays loopback plain HTTP.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := fl.ServeOptions(stdio.Stdout, stdio.Stderr)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			return daemon.Run(cmd.Context(), o)
		},
	}
	fl.AddFlags(cmd.Flags())
	return cmd
}
