package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/dashboard"
	"github.com/weir-go/weir/server/envoyrls"
	"github.com/weir-go/weir/server/grpcapi"
	"github.com/weir-go/weir/server/lograte"
	"github.com/weir-go/weir/server/metrics"
	"github.com/weir-go/weir/server/service"
	"github.com/weir-go/weir/server/tlsconf"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
)

// Server is a weir daemon built by New: its configuration loaded, store
// open, listeners bound and handlers ready. Serve serves until its
// context is cancelled; Close releases what New acquired. A Server serves
// once.
type Server struct {
	o   Options
	log *slog.Logger
	cfg *config.Config

	// Addresses and security (security.go).
	httpAddr, grpcAddr, debugAddr, storeURL string
	auth, metricsAuth                       *service.Auth // metricsAuth nil: /metrics is open
	tls                                     *tlsconf.Reloader

	// Decisions (New).
	storeDesc string
	m         *metrics.Metrics
	svc       *service.Service
	env       *envoyrls.Server
	gate      *service.Gate
	storeLog  *lograte.Store
	reloader  *reloader
	draining  atomic.Bool

	// Listeners and their servers (http.go, grpc.go).
	hl, gl, dl net.Listener // dl nil without --debug
	hs, ds     *http.Server // ds nil without --debug
	dash       *dashboard.Dashboard
	gs         *grpc.Server
	api        *grpcapi.Server
	health     *health.Server

	// base is cancelled when serving stops or the Server closes; the
	// store's helpers (peers, telemetry) run under it.
	base   context.Context
	cancel context.CancelFunc

	closers   []func() error // run in reverse order by Close
	closeOnce sync.Once
	closeErr  error
}

// New builds a Server from o: it loads and validates the configuration,
// checks the listen addresses against the tokens and TLS, opens the store,
// binds the listeners (so that ":0" is resolved) and builds the HTTP and
// gRPC servers. Nothing is served until Serve. On error, whatever New
// acquired is released.
func New(o Options) (*Server, error) {
	o = o.withDefaults()
	s := &Server{o: o, log: o.Logger}
	s.base, s.cancel = context.WithCancel(context.Background())
	s.onClose(func() error { s.cancel(); return nil })
	for _, step := range []func() error{
		s.loadConfig,   // security.go
		s.loadSecurity, // security.go
		s.openService,
		s.listen, // http.go
		s.buildHTTP,
		s.buildGRPC, // grpc.go
	} {
		if err := step(); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// onClose registers f to run when the Server closes, before everything
// registered earlier.
func (s *Server) onClose(f func() error) { s.closers = append(s.closers, f) }

// openService opens the store and builds the decision service, the Envoy
// server, the metrics and the store helpers (peers, telemetry).
func (s *Server) openService() error {
	redis := strings.HasPrefix(s.storeURL, "redis")
	if redis {
		routeRedisLogs(s.log)
	}
	store, desc, closeStore, err := OpenStore(s.base, s.storeURL)
	if err != nil {
		return err
	}
	s.onClose(closeStore)
	s.storeDesc = desc
	s.m = metrics.New()
	if s.tls != nil {
		s.m.WatchCertificate(func() time.Time { return s.tls.Certificate().Leaf.NotAfter })
	}
	fallback := memstore.New(memstore.WithSweep(time.Minute))
	s.onClose(func() error { fallback.Close(); return nil })
	if s.svc, err = service.New(store, fallback, s.cfg, s.m); err != nil {
		return err
	}
	s.svc.SetLogger(s.log) // every override change is logged

	s.onClose(func() error { s.svc.Close(); return nil }) // local quotas give back their units while the store is open
	stopTelemetry, err := startTelemetry(s.base, s.svc, s.storeURL, s.log)
	if err != nil {
		return err
	}
	s.onClose(func() error { stopTelemetry(); return nil })
	s.m.ConfigReloads.WithLabelValues("ok").Inc()
	s.m.ConfigLastReload.SetToCurrentTime()
	s.env = envoyrls.New(s.svc.Store(), s.cfg.Envoy, envoyrls.OptionsOf(s.cfg), s.m)
	if redis {
		if err := s.shareRedis(); err != nil {
			return err
		}
	}
	// Store failures are logged as state changes and periodic summaries,
	// never once per request (issue 16.6).
	s.storeLog = lograte.NewStore(s.log, 0, nil)
	s.gate = service.NewGate(s.o.MaxInFlight)
	_ = s.ping(s.base)
	s.reloader = &reloader{o: s.o, svc: s.svc, env: s.env, m: s.m, log: s.log, tls: s.tls}
	s.reloader.remember(s.cfg)
	return nil
}

// shareRedis tunes the service for a Redis store shared with other
// instances.
func (s *Server) shareRedis() error {
	// Decide the items of a batch concurrently so that the Redis store
	// pipelines them instead of paying one round trip each.
	s.svc.SetParallel(64)
	s.env.SetParallel(64)
	// Count the instances on this Redis, for the fallback share.
	stopPeers, err := startPeers(s.base, s.storeURL, s.svc, s.log)
	if err != nil {
		return err
	}
	s.onClose(func() error { stopPeers(); return nil })
	return nil
}

// ping checks the store and records the result (weir_store_ready and the
// rate-limited store log).
func (s *Server) ping(ctx context.Context) error {
	start := time.Now()
	err := s.svc.Ping(ctx)
	s.notePing(start, time.Since(start), err) // dashboard.go
	s.m.StoreReady.Set(boolGauge(err == nil))
	if err != nil {
		s.storeLog.Fail(err)
	} else {
		s.storeLog.OK()
	}
	return err
}

// ready is the readiness check: not ready while draining or when the
// store does not answer.
func (s *Server) ready(ctx context.Context) error {
	if s.draining.Load() {
		return errors.New("shutting down")
	}
	return s.ping(ctx)
}

// Serve serves until ctx is cancelled or a listener fails, then shuts
// down gracefully: readiness flips first, listeners drain, in-flight
// requests finish within Options.ShutdownGrace. It returns nil after a
// clean shutdown, the listener's error otherwise. Call Close after.
func (s *Server) Serve(ctx context.Context) error {
	// The store's helpers stop when serving stops, as the caller's
	// context would stop them.
	stopBase := context.AfterFunc(ctx, s.cancel)
	defer stopBase()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	s.serveListeners(&wg, errc)
	s.m.Ready.Set(1)
	stop := make(chan struct{})
	s.background(&wg, stop)
	s.announce()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		s.log.Error("listener failed", "err", runErr)
	}
	s.shutdown(runErr, stop)
	wg.Wait()
	s.log.Info("stopped")
	return runErr
}

// serveListeners starts a goroutine per listener; each sends a failure
// other than a clean stop to errc.
func (s *Server) serveListeners(wg *sync.WaitGroup, errc chan<- error) {
	wg.Go(func() {
		serve := s.hs.Serve
		if s.tls != nil {
			serve = func(l net.Listener) error { return s.hs.ServeTLS(l, "", "") }
		}
		if err := serve(s.hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	})
	wg.Go(func() {
		if err := s.gs.Serve(s.gl); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errc <- fmt.Errorf("grpc: %w", err)
		}
	})
	if s.ds != nil {
		wg.Go(func() {
			if err := s.ds.Serve(s.dl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("debug: %w", err)
			}
		})
	}
}

// background starts the goroutines that live as long as the server
// serves; each returns when stop is closed. A new background task is
// added here.
func (s *Server) background(wg *sync.WaitGroup, stop <-chan struct{}) {
	// Reload on SIGHUP and on file change.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	wg.Go(func() {
		defer signal.Stop(hup)
		s.reloader.watch(hup, stop)
	})
	wg.Go(func() { tuneGC(stop, 100*time.Millisecond) })
	wg.Go(func() { probeStore(stop, StoreProbeInterval, s.ping) })
}

// announce prints the banner and logs that the server is serving.
func (s *Server) announce() {
	tlsMode := s.tlsMode()
	banner(s.o.Stdout, s.cfg, s.storeDesc, s.hl.Addr().String(), s.gl.Addr().String(), s.dl, s.env.Domains(), s.auth.Enabled(), tlsMode)
	s.log.Info("serving", "http", s.hl.Addr().String(), "grpc", s.gl.Addr().String(), "store", s.storeDesc,
		"policies", len(s.cfg.Policies), "envoy_domains", len(s.cfg.Envoy), "auth", s.auth.Enabled(), "tls", tlsMode)
}

// shutdown flips readiness, waits the drain delay (not after a listener
// failed), stops the background goroutines, then drains the HTTP and gRPC
// servers within the shutdown grace.
func (s *Server) shutdown(runErr error, stop chan struct{}) {
	s.draining.Store(true)
	s.m.Ready.Set(0)
	s.health.Shutdown()
	s.log.Info("shutting down", "drain_delay", s.o.DrainDelay.String(), "grace", s.o.ShutdownGrace.String())
	if s.o.DrainDelay > 0 && runErr == nil {
		t := time.NewTimer(s.o.DrainDelay)
		<-t.C
	}
	close(stop)
	sctx, cancel := context.WithTimeout(context.Background(), s.o.ShutdownGrace)
	defer cancel()
	if err := s.hs.Shutdown(sctx); err != nil {
		s.log.Warn("http shutdown", "err", err)
		s.hs.Close()
	}
	if s.ds != nil {
		s.ds.Close()
	}
	stopped := make(chan struct{})
	s.api.Drain() // open CheckStream streams end now, not at the grace deadline
	go func() { s.gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-sctx.Done():
		s.gs.Stop()
		<-stopped
	}
}

// Close releases what New acquired, in the reverse order: listeners, the
// dashboard's sampler, the store's helpers, the service, the store. It is
// safe to call more than once; only the first call does anything.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		for i := len(s.closers) - 1; i >= 0; i-- {
			errs = append(errs, s.closers[i]())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// HTTPAddr returns the address the HTTP listener is bound to.
func (s *Server) HTTPAddr() net.Addr { return s.hl.Addr() }

// GRPCAddr returns the address the gRPC listener is bound to.
func (s *Server) GRPCAddr() net.Addr { return s.gl.Addr() }
