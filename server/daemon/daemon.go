// Package daemon runs the weir server: it loads the configuration, opens
// the store, serves the HTTP and gRPC listeners (native API, Envoy's
// rate-limit service, health, metrics), plain or over TLS and mutual TLS
// (package tlsconf; a verified client certificate grants the decision
// scope), reloads the configuration and the certificates on file change
// and SIGHUP, and shuts down gracefully: readiness flips first, then
// in-flight requests finish.
//
// The daemon is a [Server]: [New] does everything that can fail before
// serving (configuration, TLS, store, listeners, handlers), [Server.Serve]
// serves until its context is cancelled and then shuts down gracefully,
// and [Server.Close] releases what New acquired. [Run] is the three in a
// row, as `weir serve` calls it.
//
// Each part of the server reads alone, in its own file:
//
//   - server.go: the Server type, New (its build steps in order), Serve,
//     Close, and the shutdown sequence.
//   - security.go: addresses, bearer tokens, TLS and the loopback rules.
//   - store.go, store_redis.go, store_sqlite.go: opening the store.
//   - http.go: the HTTP server; [Server.routes] is the one place an HTTP
//     route set is added (a new API: add it to httpapi.Options or mount it
//     there), and the pprof mux of the debug listener.
//   - grpc.go: the gRPC server; [Server.grpcServices] is the one place a
//     gRPC service is registered (and named for the health service),
//     [Server.grpcOptions] its interceptors and limits.
//   - reload.go: the configuration reloader and its file watcher.
//   - banner.go: the startup banner.
//
// A background goroutine that lives as long as the server is started in
// [Server.background]; one that needs stopping after the listeners close
// is registered with Server.onClose. Metrics are defined in package
// metrics (one *metrics.Metrics per Server, s.m); dashboard panels read
// them through package dashboard, built in [Server.routes].
package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"
)

// Default listen addresses.
const (
	DefaultHTTP = "127.0.0.1:8080"
	DefaultGRPC = "127.0.0.1:8081"
)

// Listener limits (S4, S5).
const (
	// MaxHeaderBytes is the most an HTTP request's line and headers may
	// take together: 16 KiB. net/http allows MaxHeaderBytes plus 4096
	// bytes of read-ahead, so the server sets MaxHeaderBytes-4096.
	MaxHeaderBytes = 16 << 10
	// MaxIdleConns is the default cap on idle HTTP keep-alive
	// connections (each holds about 16 KiB of buffers): past it, a
	// connection that goes idle is closed (--max-idle-conns).
	MaxIdleConns      = 1024
	MaxRecvMsgSize    = 256 << 10
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 10 * time.Second
	IdleTimeout       = 120 * time.Second
)

// Options configure New and Run. Zero values mean the defaults; flags set them.
type Options struct {
	// ConfigPath is the YAML configuration; "" means the built-in demo.
	ConfigPath string
	// EnvoyPaths are envoyproxy/ratelimit YAML files or directories, added
	// to those the configuration names.
	EnvoyPaths []string
	// Store is the store URL (see OpenStore); it overrides the config.
	Store string
	// HTTP, GRPC, Debug are listen addresses overriding the config; Debug
	// (pprof) is off when empty and must be a loopback address.
	HTTP, GRPC, Debug string
	// Tokens and AdminTokens add bearer tokens to the config's.
	Tokens, AdminTokens []string
	// MetricsTokens add bearer tokens that protect GET /metrics (with the
	// config's server.metrics_tokens). With none, /metrics is open.
	MetricsTokens []string
	// Insecure allows non-loopback listeners without tokens.
	Insecure bool
	// TLSCert and TLSKey are PEM files: with them the HTTP listener serves
	// HTTPS and the gRPC listener TLS (1.2 or later). They are re-read when
	// they change and on SIGHUP (see package tlsconf).
	TLSCert, TLSKey string
	// TLSClientCA is a PEM file of the authorities whose client
	// certificates are accepted: with it both listeners require and verify
	// a client certificate (mutual TLS), and a verified certificate grants
	// the decision scope without a token. The admin scope always needs an
	// admin token.
	TLSClientCA string
	// DrainDelay is how long readiness reports "draining" before the
	// listeners stop accepting (give load balancers time to notice).
	DrainDelay time.Duration
	// ShutdownGrace bounds how long in-flight requests may take to finish
	// after a shutdown starts (default 10s).
	ShutdownGrace time.Duration
	// ReloadInterval is how often configuration files are checked for
	// changes (default 2s; negative disables watching; SIGHUP still works).
	ReloadInterval time.Duration
	// MaxInFlight bounds the decision requests being served at once,
	// across HTTP and gRPC; more are shed at once with 503 /
	// RESOURCE_EXHAUSTED (default 4096; negative: no bound).
	MaxInFlight int
	// MaxIdleConns caps the HTTP keep-alive connections held idle; a
	// connection that goes idle past the cap is closed (default
	// MaxIdleConns; negative: no cap).
	MaxIdleConns int
	// HeaderTimeout bounds how long a client may take to send request
	// headers, and a new gRPC connection its handshake (default 5s; S5).
	HeaderTimeout time.Duration
	// NoTopKeys turns off the dashboard's top keys: no decision's key is
	// counted and the tables say so (default: on; admin scope to read).
	NoTopKeys bool
	// Logger receives structured logs; nil means JSON on Stderr.
	Logger *slog.Logger
	// Stdout receives the human-readable startup banner.
	Stdout io.Writer
	// Stderr receives logs when Logger is nil.
	Stderr io.Writer
}

// withDefaults returns o with its zero values replaced by the defaults.
func (o Options) withDefaults() Options {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(o.Stderr, nil))
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 10 * time.Second
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 4096
	}
	if o.MaxIdleConns == 0 {
		o.MaxIdleConns = MaxIdleConns
	}
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = ReadHeaderTimeout
	}
	if o.ReloadInterval == 0 {
		o.ReloadInterval = 2 * time.Second
	}
	return o
}

// Run serves until ctx is cancelled, then shuts down gracefully. It
// returns nil after a clean shutdown. Run is shorthand for New, Serve and
// Close.
func Run(ctx context.Context, o Options) error {
	s, err := New(o)
	if err != nil {
		return err
	}
	err = s.Serve(ctx)
	if cerr := s.Close(); cerr != nil {
		s.log.Warn("close", "err", cerr)
	}
	return err
}
