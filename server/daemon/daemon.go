// Package daemon runs the weir server: it loads the configuration, opens
// the store, serves the HTTP and gRPC listeners (native API, Envoy's
// rate-limit service, health, metrics), plain or over TLS and mutual TLS
// (package tlsconf; a verified client certificate grants the decision
// scope), reloads the configuration and the certificates on file change
// and SIGHUP, and shuts down gracefully: readiness flips first, then
// in-flight requests finish.
package daemon

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/dashboard"
	"github.com/weir-go/weir/server/envoyrls"
	"github.com/weir-go/weir/server/gen/weirv1"
	"github.com/weir-go/weir/server/grpcapi"
	"github.com/weir-go/weir/server/httpapi"
	"github.com/weir-go/weir/server/lograte"
	"github.com/weir-go/weir/server/metrics"
	"github.com/weir-go/weir/server/service"
	"github.com/weir-go/weir/server/tlsconf"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
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

// Options configure Run. Zero values mean the defaults; flags set them.
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
	// Logger receives structured logs; nil means JSON on Stderr.
	Logger *slog.Logger
	// Stdout receives the human-readable startup banner.
	Stdout io.Writer
	// Stderr receives logs when Logger is nil.
	Stderr io.Writer
}

// Run serves until ctx is cancelled, then shuts down gracefully. It
// returns nil after a clean shutdown.
func Run(ctx context.Context, o Options) error {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewJSONHandler(o.Stderr, nil))
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

	cfg, err := Load(o)
	if err != nil {
		return err
	}
	httpAddr := first(o.HTTP, cfg.Server.HTTP, DefaultHTTP)
	grpcAddr := first(o.GRPC, cfg.Server.GRPC, DefaultGRPC)
	debugAddr := first(o.Debug, cfg.Server.Debug, "")
	storeURL := first(o.Store, cfg.Server.Store, "memory")
	flagTokens, err := config.Tokens(o.Tokens)
	if err != nil {
		return fmt.Errorf("--token%w", err)
	}
	flagAdmin, err := config.Tokens(o.AdminTokens)
	if err != nil {
		return fmt.Errorf("--admin-token%w", err)
	}
	flagMetrics, err := config.Tokens(o.MetricsTokens)
	if err != nil {
		return fmt.Errorf("--metrics-token%w", err)
	}
	tlsr, err := LoadTLS(o, cfg, log)
	if err != nil {
		return err
	}
	adminTokens := slices.Concat(cfg.Server.AdminTokens, flagAdmin)
	auth := service.NewAuth(slices.Concat(cfg.Server.Tokens, flagTokens), adminTokens)
	var metricsAuth *service.Auth // nil: /metrics is open
	if mt := slices.Concat(cfg.Server.MetricsTokens, flagMetrics); len(mt) > 0 {
		metricsAuth = service.NewAuth(mt, adminTokens)
	}
	if tlsr != nil && tlsr.MutualTLS() {
		// A verified client certificate grants the decision scope.
		auth = auth.WithClientCerts()
	}
	for _, a := range []string{httpAddr, grpcAddr} {
		if a == "" || isLoopback(a) {
			continue
		}
		if !auth.Enabled() && !o.Insecure {
			return fmt.Errorf("listening on %s (not loopback) needs bearer tokens or client certificates: set server.tokens / --token, or server.tls / --tls-cert, --tls-key and --tls-client-ca, or pass --insecure", a)
		}
		if tlsr == nil {
			log.Warn("INSECURE: listening on a non-loopback address without TLS: bearer tokens and decisions travel in clear text; set server.tls or --tls-cert and --tls-key", "addr", a)
		}
	}
	if debugAddr != "" && !isLoopback(debugAddr) {
		return fmt.Errorf("--debug %s: the pprof listener must be a loopback address", debugAddr)
	}

	if strings.HasPrefix(storeURL, "redis") {
		routeRedisLogs(log)
	}
	store, storeDesc, closeStore, err := OpenStore(ctx, storeURL)
	if err != nil {
		return err
	}
	defer closeStore()
	m := metrics.New()
	if tlsr != nil {
		m.WatchCertificate(func() time.Time { return tlsr.Certificate().Leaf.NotAfter })
	}
	fallback := memstore.New(memstore.WithSweep(time.Minute))
	defer fallback.Close()
	svc, err := service.New(store, fallback, cfg, m)
	if err != nil {
		return err
	}
	defer svc.Close() // local quotas give back their units while the store is open
	stopTelemetry, err := startTelemetry(ctx, svc, storeURL, log)
	if err != nil {
		return err
	}
	defer stopTelemetry()
	m.ConfigReloads.WithLabelValues("ok").Inc()
	m.ConfigLastReload.SetToCurrentTime()
	env := envoyrls.New(svc.Store(), cfg.Envoy, envoyrls.OptionsOf(cfg), m)
	if strings.HasPrefix(storeURL, "redis") {
		// Decide the items of a batch concurrently so that the Redis store
		// pipelines them instead of paying one round trip each.
		svc.SetParallel(64)
		env.SetParallel(64)
		// Count the instances on this Redis, for the fallback share.
		stopPeers, err := startPeers(ctx, storeURL, svc, log)
		if err != nil {
			return err
		}
		defer stopPeers()
	}

	var draining atomic.Bool
	// Store failures are logged as state changes and periodic summaries,
	// never once per request (issue 16.6).
	storeLog := lograte.NewStore(log, 0, nil)
	ping := func(ctx context.Context) error {
		err := svc.Ping(ctx)
		m.StoreReady.Set(boolGauge(err == nil))
		if err != nil {
			storeLog.Fail(err)
		} else {
			storeLog.OK()
		}
		return err
	}
	ready := func(ctx context.Context) error {
		if draining.Load() {
			return errors.New("shutting down")
		}
		return ping(ctx)
	}
	_ = ping(ctx)
	r := &reloader{o: o, svc: svc, env: env, m: m, log: log, tls: tlsr}
	r.remember(cfg)

	// Listeners first, so that ":0" resolves before anything is printed.
	var hl, gl, dl net.Listener
	if hl, err = net.Listen("tcp", httpAddr); err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	defer hl.Close()
	if gl, err = net.Listen("tcp", grpcAddr); err != nil {
		return fmt.Errorf("grpc listener: %w", err)
	}
	defer gl.Close()
	if debugAddr != "" {
		if dl, err = net.Listen("tcp", debugAddr); err != nil {
			return fmt.Errorf("debug listener: %w", err)
		}
		defer dl.Close()
	}

	gate := service.NewGate(o.MaxInFlight)
	dash := dashboard.New(svc, m)
	defer dash.Close() // stops the history sampler even when the server is not shut down gracefully
	var handler http.Handler = httpapi.New(httpapi.Options{
		Service: svc, Auth: auth, Ready: ready, Logger: log, Gate: gate,
		Reload: func(ctx context.Context) error {
			tlsErr := r.reloadTLS("api")
			return errors.Join(tlsErr, r.reload("api"))
		},
		Envoy:       env.JSONHandler(httpapi.MaxBodyBytes),
		Dashboard:   dash,
		MetricsAuth: metricsAuth,
		StoreLog:    storeLog,
	})
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: o.HeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes - 4096, // net/http adds 4096 (see MaxHeaderBytes)
		ErrorLog:          httpErrorLog(log),
		ConnState:         idleCap(o.MaxIdleConns),
	}
	hs.RegisterOnShutdown(dash.Close)
	reqs := newCodeCounters(m.Requests, "grpc")
	unary := []grpc.UnaryServerInterceptor{
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(ctx, req)
			reqs.inc(info.FullMethod, status.Code(err).String())
			return resp, err
		},
	}
	stream := []grpc.StreamServerInterceptor{
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			err := h(srv, ss)
			reqs.inc(info.FullMethod, status.Code(err).String())
			return err
		},
	}
	unary = append(unary, grpcapi.AuthInterceptor(auth), grpcapi.GateInterceptor(gate))
	stream = append(stream, grpcapi.StreamAuthInterceptor(auth))
	gopts := []grpc.ServerOption{
		// Reused worker goroutines keep grown stacks: without them every
		// RPC pays for stack growth (about a sixth of the CPU profile).
		grpc.NumStreamWorkers(uint32(max(128, 16*runtime.GOMAXPROCS(0)))),
		grpc.MaxRecvMsgSize(MaxRecvMsgSize),
		grpc.MaxConcurrentStreams(1024),
		grpc.ConnectionTimeout(o.HeaderTimeout),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 5 * time.Minute, Time: 2 * time.Minute, Timeout: 20 * time.Second}),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		// Envoy descriptor values that are not UTF-8 are decided, not refused.
		grpc.ForceServerCodecV2(envoyrls.Codec()),
	}
	if tlsr != nil {
		hs.TLSConfig = tlsr.ServerConfig("h2", "http/1.1")
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(tlsr.ServerConfig())))
	}
	gs := grpc.NewServer(gopts...)
	api := grpcapi.New(svc, auth, grpcapi.WithGate(gate))
	weirv1.RegisterWeirServer(gs, api)
	rlv3.RegisterRateLimitServiceServer(gs, env)
	hsrv := health.NewServer()
	for _, name := range []string{"", "weir.v1.Weir", "envoy.service.ratelimit.v3.RateLimitService"} {
		hsrv.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(gs, hsrv)
	reflection.Register(gs)

	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Go(func() {
		serve := hs.Serve
		if tlsr != nil {
			serve = func(l net.Listener) error { return hs.ServeTLS(l, "", "") }
		}
		if err := serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	})
	wg.Go(func() {
		if err := gs.Serve(gl); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errc <- fmt.Errorf("grpc: %w", err)
		}
	})
	var ds *http.Server
	if dl != nil {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		ds = &http.Server{Handler: mux, ReadHeaderTimeout: ReadHeaderTimeout, IdleTimeout: IdleTimeout, ErrorLog: errLog}
		wg.Go(func() {
			if err := ds.Serve(dl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("debug: %w", err)
			}
		})
	}
	m.Ready.Set(1)

	// Reload on SIGHUP and on file change.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	stopWatch := make(chan struct{})
	wg.Go(func() { r.watch(hup, stopWatch) })
	wg.Go(func() { tuneGC(stopWatch, 100*time.Millisecond) })
	wg.Go(func() { probeStore(stopWatch, StoreProbeInterval, ping) })

	tlsMode := "off"
	switch {
	case tlsr != nil && tlsr.MutualTLS():
		tlsMode = "mutual"
	case tlsr != nil:
		tlsMode = "on"
	}
	banner(o.Stdout, cfg, storeDesc, hl.Addr().String(), gl.Addr().String(), dl, env.Domains(), auth.Enabled(), tlsMode)
	log.Info("serving", "http", hl.Addr().String(), "grpc", gl.Addr().String(), "store", storeDesc,
		"policies", len(cfg.Policies), "envoy_domains", len(cfg.Envoy), "auth", auth.Enabled(), "tls", tlsMode)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		log.Error("listener failed", "err", runErr)
	}

	// Shutdown: readiness flips first, then listeners drain.
	draining.Store(true)
	m.Ready.Set(0)
	hsrv.Shutdown()
	log.Info("shutting down", "drain_delay", o.DrainDelay.String(), "grace", o.ShutdownGrace.String())
	if o.DrainDelay > 0 && runErr == nil {
		t := time.NewTimer(o.DrainDelay)
		<-t.C
	}
	close(stopWatch)
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
		hs.Close()
	}
	if ds != nil {
		ds.Close()
	}
	stopped := make(chan struct{})
	api.Drain() // open CheckStream streams end now, not at the grace deadline
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-sctx.Done():
		gs.Stop()
		<-stopped
	}
	wg.Wait()
	log.Info("stopped")
	return runErr
}

// idleCap returns an http.Server.ConnState hook that closes a connection
// going idle when max connections are idle already (nil: no cap). A
// connection that leaves the idle state (a new request, closed, hijacked)
// frees its place.
func idleCap(max int) func(net.Conn, http.ConnState) {
	if max < 0 {
		return nil
	}
	var mu sync.Mutex
	idle := make(map[net.Conn]struct{})
	return func(c net.Conn, st http.ConnState) {
		mu.Lock()
		if st != http.StateIdle {
			delete(idle, c)
			mu.Unlock()
			return
		}
		if len(idle) >= max {
			mu.Unlock()
			c.Close()
			return
		}
		idle[c] = struct{}{}
		mu.Unlock()
	}
}

// StoreProbeInterval is how often the daemon pings its store to keep
// weir_store_ready current between /readyz calls.
const StoreProbeInterval = time.Second

// probeStore calls ping every interval until stop is closed. Each ping is
// bounded by the store's own deadline (and a second at most).
func probeStore(stop <-chan struct{}, interval time.Duration, ping func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = ping(ctx)
			cancel()
		}
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// isLoopback reports whether a listen address binds only loopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Load reads the configuration Options name: the file (or the built-in
// demo) plus extra Envoy files. It validates everything.
func Load(o Options) (*config.Config, error) {
	var cfg *config.Config
	var err error
	if o.ConfigPath != "" {
		cfg, err = config.Load(o.ConfigPath)
	} else {
		cfg, err = config.Parse("<built-in demo>", []byte(demoConfig))
		if err == nil && len(o.EnvoyPaths) == 0 {
			var d *config.Domain
			if d, err = config.ParseEnvoy("<built-in demo envoy>", []byte(demoEnvoy)); err == nil {
				cfg.Envoy = append(cfg.Envoy, *d)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if err := CheckStoreLimits(cfg, first(o.Store, cfg.Server.Store, "memory")); err != nil {
		return nil, err
	}
	if len(o.EnvoyPaths) > 0 {
		domains, files, err := config.LoadEnvoy(o.EnvoyPaths...)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, d := range cfg.Envoy {
			seen[d.Name] = true
		}
		for _, d := range domains {
			if seen[d.Name] {
				return nil, &config.Error{File: d.File, Msg: fmt.Sprintf("duplicate domain %q", d.Name)}
			}
			cfg.Envoy = append(cfg.Envoy, d)
		}
		sort.Slice(cfg.Envoy, func(i, j int) bool { return cfg.Envoy[i].Name < cfg.Envoy[j].Name })
		cfg.EnvoyFiles = append(cfg.EnvoyFiles, files...)
	}
	return cfg, nil
}

func banner(w io.Writer, cfg *config.Config, store, httpAddr, grpcAddr string, dl net.Listener, domains []string, auth bool, tlsMode string) {
	var names []string
	for _, p := range cfg.Policies {
		names = append(names, p.Name)
	}
	src := cfg.Source
	if src == "" {
		src = "<built-in>"
	}
	sort.Strings(domains)
	fmt.Fprintf(w, "weir serve: store %s, config %s\n", store, src)
	fmt.Fprintf(w, "  policies: %s\n", strings.Join(names, ", "))
	if len(domains) > 0 {
		fmt.Fprintf(w, "  envoy domains: %s\n", strings.Join(domains, ", "))
	}
	scheme, grpcTLS, curlTLS := "http", "", ""
	switch tlsMode {
	case "on":
		scheme, grpcTLS, curlTLS = "https", "TLS; ", " --cacert CA.pem"
	case "mutual":
		scheme, grpcTLS, curlTLS = "https", "mutual TLS; ", " --cacert CA.pem --cert client.pem --key client-key.pem"
	}
	fmt.Fprintf(w, "  HTTP  %s://%s  (%sPOST /v1/check, GET /v1/policies, /metrics, /dashboard)\n", scheme, httpAddr, grpcTLS)
	fmt.Fprintf(w, "  gRPC  %s  (%sweir.v1.Weir, envoy.service.ratelimit.v3.RateLimitService, health, reflection)\n", grpcAddr, grpcTLS)
	if dl != nil {
		fmt.Fprintf(w, "  pprof http://%s/debug/pprof/\n", dl.Addr())
	}
	if len(names) > 0 {
		authHdr := curlTLS
		if auth && tlsMode != "mutual" {
			authHdr += ` -H "Authorization: Bearer $TOKEN"`
		}
		fmt.Fprintf(w, "  try:  curl -s%s %s://%s/v1/check -d '{\"policy\":\"%s\",\"key\":\"user:42\"}'\n", authHdr, scheme, httpAddr, names[0])
		fmt.Fprintf(w, "        open %s://%s/dashboard\n", scheme, httpAddr)
	}
}

// reloader validates a new configuration fully, then swaps it in.
type reloader struct {
	o   Options
	svc *service.Service
	env *envoyrls.Server
	m   *metrics.Metrics
	log *slog.Logger
	tls *tlsconf.Reloader // nil without TLS

	mu    sync.Mutex
	files []string
	sum   [32]byte
}

func (r *reloader) remember(cfg *config.Config) {
	r.files = nil
	if cfg.Source != "" && r.o.ConfigPath != "" {
		r.files = append(r.files, cfg.Source)
	}
	r.files = append(r.files, cfg.EnvoyFiles...)
	r.files = append(r.files, r.o.EnvoyPaths...)
	r.sum = fingerprint(r.files)
}

// fingerprint hashes the files' contents (and directory listings), so
// that a change is seen whatever the file system's mtime granularity.
func fingerprint(files []string) [32]byte {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00", f)
		if st, err := os.Stat(f); err == nil && st.IsDir() {
			ents, _ := os.ReadDir(f)
			for _, e := range ents {
				fmt.Fprintf(h, "%s\x00", e.Name())
				if b, err := os.ReadFile(f + "/" + e.Name()); err == nil {
					h.Write(b)
				}
			}
			continue
		}
		if b, err := os.ReadFile(f); err == nil {
			h.Write(b)
		} else {
			fmt.Fprintf(h, "error %v", err)
		}
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// reload loads, validates and applies the configuration. On any error the
// running configuration stays and the error is logged and returned.
func (r *reloader) reload(reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.o.ConfigPath == "" && len(r.o.EnvoyPaths) == 0 {
		return errors.New("no configuration file to reload (serving the built-in demo)")
	}
	fail := func(err error) error {
		r.m.ConfigReloads.WithLabelValues("error").Inc()
		r.log.Error("configuration reload failed; keeping the previous configuration", "reason", reason, "err", err.Error())
		return err
	}
	cfg, err := Load(r.o)
	if err != nil {
		return fail(err)
	}
	comp, err := r.svc.Compile(cfg)
	if err != nil {
		return fail(err)
	}
	old := r.svc.Config().Server
	r.svc.Apply(comp)
	r.env.Load(cfg.Envoy, envoyrls.OptionsOf(cfg))
	r.remember(cfg)
	r.m.ConfigReloads.WithLabelValues("ok").Inc()
	r.m.ConfigLastReload.SetToCurrentTime()
	r.log.Info("configuration reloaded", "reason", reason, "policies", len(cfg.Policies), "envoy_domains", len(cfg.Envoy))
	if !serverEqual(old, cfg.Server) {
		r.log.Warn("changes to the server section (listeners, store, tokens, TLS file names) take effect on restart")
	}
	return nil
}

// reloadTLS re-reads the certificate files, whatever their stamps say (a
// failure keeps the previous certificate and is logged by tlsconf).
func (r *reloader) reloadTLS(reason string) error {
	if r.tls == nil {
		return nil
	}
	err := r.tls.Reload()
	if err == nil {
		r.log.Debug("tls files re-read", "reason", reason)
	}
	return err
}

func serverEqual(a, b config.Server) bool {
	return a.HTTP == b.HTTP && a.GRPC == b.GRPC && a.Debug == b.Debug && a.Store == b.Store &&
		strings.Join(a.Tokens, "\x00") == strings.Join(b.Tokens, "\x00") &&
		strings.Join(a.AdminTokens, "\x00") == strings.Join(b.AdminTokens, "\x00") &&
		strings.Join(a.MetricsTokens, "\x00") == strings.Join(b.MetricsTokens, "\x00") && a.TLS == b.TLS
}

func (r *reloader) watch(hup <-chan os.Signal, stop <-chan struct{}) {
	var tick <-chan time.Time
	if r.o.ReloadInterval > 0 && (r.o.ConfigPath != "" || len(r.o.EnvoyPaths) > 0) {
		t := time.NewTicker(r.o.ReloadInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-stop:
			return
		case <-hup:
			_ = r.reloadTLS("SIGHUP")
			_ = r.reload("SIGHUP")
		case <-tick:
			r.mu.Lock()
			changed := fingerprint(r.files) != r.sum
			r.mu.Unlock()
			if changed {
				if err := r.reload("file changed"); err != nil {
					// Do not retry the same broken content every tick.
					r.mu.Lock()
					r.sum = fingerprint(r.files)
					r.mu.Unlock()
				}
			}
		}
	}
}

// codeCounters caches the request counters by method and code, so the hot
// path skips hashing label values.
type codeCounters struct {
	vec *prometheus.CounterVec
	api string
	m   sync.Map // [2]string -> prometheus.Counter
}

func newCodeCounters(vec *prometheus.CounterVec, api string) *codeCounters {
	return &codeCounters{vec: vec, api: api}
}

func (c *codeCounters) inc(method, code string) {
	k := [2]string{method, code}
	if v, ok := c.m.Load(k); ok {
		v.(prometheus.Counter).Inc()
		return
	}
	ctr := c.vec.WithLabelValues(c.api, method, code)
	c.m.Store(k, ctr)
	ctr.Inc()
}
