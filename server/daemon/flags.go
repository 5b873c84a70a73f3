package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/pflag"
)

// Flags are the command-line form of Options, as `weir serve` takes them:
// AddFlags registers them on a flag set, Options turns what was parsed
// into Options. They live beside Options so that a new option and its
// flag are added in one place, and so that the daemon's end-to-end tests
// start the server exactly as the command line does.
type Flags struct {
	// Options receives the flags that map one to one onto an option.
	Options Options
	// LogLevel is --log-level: debug, info, warn or error.
	LogLevel string
	// LogFormat is --log-format: json or text.
	LogFormat string
}

// AddFlags registers the flags of `weir serve` on f, with their defaults.
func (fl *Flags) AddFlags(f *pflag.FlagSet) {
	o := &fl.Options
	f.StringVarP(&o.ConfigPath, "config", "c", "", "policy configuration file (YAML); default: the built-in demo")
	f.StringArrayVar(&o.EnvoyPaths, "envoy-config", nil, "envoyproxy/ratelimit YAML file or directory (repeatable)")
	f.StringVar(&o.Store, "store", "", "store: memory | sqlite:PATH | redis://[user:pass@]HOST:PORT/DB (default memory)")
	f.StringVar(&o.HTTP, "http", "", "HTTP listen address (default "+DefaultHTTP+"; :0 picks a port)")
	f.StringVar(&o.GRPC, "grpc", "", "gRPC listen address (default "+DefaultGRPC+"; :0 picks a port)")
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
	f.DurationVar(&o.HeaderTimeout, "read-header-timeout", ReadHeaderTimeout, "how long a client may take to send request headers")
	f.IntVar(&o.MaxIdleConns, "max-idle-conns", MaxIdleConns, "idle HTTP keep-alive connections kept; past it a connection going idle is closed (negative: no cap)")
	f.IntVar(&o.MaxInFlight, "max-inflight", 4096, "requests served at once before shedding with 503 / RESOURCE_EXHAUSTED (negative: no bound)")
	f.BoolVar(&o.NoTopKeys, "no-top-keys", false, "do not count decisions' keys for the dashboard's top-keys tables (which only admin tokens can read)")
	f.StringVar(&fl.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&fl.LogFormat, "log-format", "json", "log format: json or text")
}

// ServeOptions returns the parsed Options with a logger on stderr of the
// level and format asked for, and stdout and stderr set. An unknown
// --log-level or --log-format is an error naming the flag.
func (fl *Flags) ServeOptions(stdout, stderr io.Writer) (Options, error) {
	o := fl.Options
	var level slog.Level
	if err := level.UnmarshalText([]byte(fl.LogLevel)); err != nil {
		return o, fmt.Errorf("--log-level: %w", err)
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch fl.LogFormat {
	case "json":
		o.Logger = slog.New(slog.NewJSONHandler(stderr, hopts))
	case "text":
		o.Logger = slog.New(slog.NewTextHandler(stderr, hopts))
	default:
		return o, fmt.Errorf("--log-format %q: want json or text", fl.LogFormat)
	}
	o.Stdout, o.Stderr = stdout, stderr
	return o, nil
}
