package cli

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"github.com/weir-go/weir/server/daemon"
)

func init() { subcommands = append(subcommands, serveCommand) }

func serveCommand(stdio IO) *cobra.Command {
	var o daemon.Options
	var logLevel, logFormat string
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
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			hopts := &slog.HandlerOptions{Level: level}
			switch logFormat {
			case "json":
				o.Logger = slog.New(slog.NewJSONHandler(stdio.Stderr, hopts))
			case "text":
				o.Logger = slog.New(slog.NewTextHandler(stdio.Stderr, hopts))
			default:
				return &ExitError{Code: 2, Err: fmt.Errorf("--log-format %q: want json or text", logFormat)}
			}
			o.Stdout, o.Stderr = stdio.Stdout, stdio.Stderr
			return daemon.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.ConfigPath, "config", "c", "", "policy configuration file (YAML); default: the built-in demo")
	f.StringArrayVar(&o.EnvoyPaths, "envoy-config", nil, "envoyproxy/ratelimit YAML file or directory (repeatable)")
	f.StringVar(&o.Store, "store", "", "store: memory | sqlite:PATH | redis://[user:pass@]HOST:PORT/DB (default memory)")
	f.StringVar(&o.HTTP, "http", "", "HTTP listen address (default "+daemon.DefaultHTTP+"; :0 picks a port)")
	f.StringVar(&o.GRPC, "grpc", "", "gRPC listen address (default "+daemon.DefaultGRPC+"; :0 picks a port)")
	f.StringVar(&o.Debug, "debug", "", "pprof listen address, loopback only (default off)")
	f.StringArrayVar(&o.Tokens, "token", nil, "bearer token for the decision APIs (repeatable; env:NAME reads $NAME)")
	f.StringArrayVar(&o.AdminTokens, "admin-token", nil, "bearer token with the admin scope: reset, reload (repeatable)")
	f.StringArrayVar(&o.MetricsTokens, "metrics-token", nil, "bearer token required by GET /metrics (repeatable; admin tokens work too); default: /metrics is open")
	f.BoolVar(&o.Insecure, "insecure", false, "allow non-loopback listeners without tokens")
	f.StringVar(&o.TLSCert, "tls-cert", "", "PEM certificate (and intermediates): serve HTTPS and gRPC over TLS; re-read on change")
	f.StringVar(&o.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&o.TLSClientCA, "tls-client-ca", "", "PEM CA certificates: require and verify client certificates (mutual TLS)")
	f.DurationVar(&o.DrainDelay, "drain-delay", 0, "on shutdown, report not-ready this long before closing listeners")
	f.DurationVar(&o.ShutdownGrace, "shutdown-grace", 10*time.Second, "on shutdown, how long in-flight requests may take")
	f.DurationVar(&o.ReloadInterval, "reload-interval", 2*time.Second, "how often to check configuration files for changes (negative: never)")
	f.DurationVar(&o.HeaderTimeout, "read-header-timeout", daemon.ReadHeaderTimeout, "how long a client may take to send request headers")
	f.IntVar(&o.MaxIdleConns, "max-idle-conns", daemon.MaxIdleConns, "idle HTTP keep-alive connections kept; past it a connection going idle is closed (negative: no cap)")
	f.IntVar(&o.MaxInFlight, "max-inflight", 4096, "requests served at once before shedding with 503 / RESOURCE_EXHAUSTED (negative: no bound)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	return cmd
}
