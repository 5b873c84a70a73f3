package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"

	"github.com/weir-go/weir/server/httpapi"
)

// listen binds the listeners first, so that ":0" resolves before anything
// is printed.
func (s *Server) listen() error {
	var err error
	if s.hl, err = s.bind(s.httpAddr); err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	if s.gl, err = s.bind(s.grpcAddr); err != nil {
		return fmt.Errorf("grpc listener: %w", err)
	}
	if s.debugAddr != "" {
		if s.dl, err = s.bind(s.debugAddr); err != nil {
			return fmt.Errorf("debug listener: %w", err)
		}
	}
	return nil
}

// bind listens on addr and closes the listener with the Server.
func (s *Server) bind(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.onClose(func() error { l.Close(); return nil }) // already closed after a shutdown
	return l, nil
}

// buildHTTP builds the HTTP server of the API listener and, with --debug,
// the pprof server.
func (s *Server) buildHTTP() error {
	s.dash = s.newDashboard()
	s.onClose(func() error { s.dash.Close(); return nil }) // stops the history sampler even when the server is not shut down gracefully
	s.hs = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: s.o.HeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes - 4096, // net/http adds 4096 (see MaxHeaderBytes)
		ErrorLog:          httpErrorLog(s.log),
		ConnState:         idleCap(s.o.MaxIdleConns),
	}
	s.hs.RegisterOnShutdown(s.dash.Close)
	if s.tls != nil {
		s.hs.TLSConfig = s.tls.ServerConfig("h2", "http/1.1")
	}
	if s.dl != nil {
		errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)
		s.ds = &http.Server{Handler: debugRoutes(), ReadHeaderTimeout: ReadHeaderTimeout, IdleTimeout: IdleTimeout, ErrorLog: errLog}
	}
	return nil
}

// routes returns the handler of the HTTP listener: the native API, the
// Envoy JSON endpoint, health, /metrics and the dashboard. This is the
// one place a new HTTP route set is added.
func (s *Server) routes() http.Handler {
	return httpapi.New(httpapi.Options{
		Service: s.svc, Auth: s.auth, Ready: s.ready, Logger: s.log, Gate: s.gate,
		Reload: func(ctx context.Context) error {
			tlsErr := s.reloader.reloadTLS("api")
			return errors.Join(tlsErr, s.reloader.reload("api"))
		},
		Envoy:       s.env.JSONHandler(httpapi.MaxBodyBytes),
		Dashboard:   s.dash,
		MetricsAuth: s.metricsAuth,
		StoreLog:    s.storeLog,
	})
}

// debugRoutes returns the pprof handlers of the debug listener.
func debugRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
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
