package daemon

import (
	"fmt"
	"net"
	"slices"

	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/service"
)

// loadConfig loads the configuration and resolves the addresses and the
// store URL: a flag wins over the configuration, which wins over the
// default.
func (s *Server) loadConfig() error {
	cfg, err := Load(s.o)
	if err != nil {
		return err
	}
	s.cfg = cfg
	s.httpAddr = first(s.o.HTTP, cfg.Server.HTTP, DefaultHTTP)
	s.grpcAddr = first(s.o.GRPC, cfg.Server.GRPC, DefaultGRPC)
	s.debugAddr = first(s.o.Debug, cfg.Server.Debug, "")
	s.storeURL = first(s.o.Store, cfg.Server.Store, "memory")
	return nil
}

// loadSecurity builds the bearer-token scopes and the TLS reloader, and
// refuses a non-loopback listener that nothing protects.
func (s *Server) loadSecurity() error {
	flagTokens, err := config.Tokens(s.o.Tokens)
	if err != nil {
		return fmt.Errorf("--token%w", err)
	}
	flagAdmin, err := config.Tokens(s.o.AdminTokens)
	if err != nil {
		return fmt.Errorf("--admin-token%w", err)
	}
	flagMetrics, err := config.Tokens(s.o.MetricsTokens)
	if err != nil {
		return fmt.Errorf("--metrics-token%w", err)
	}
	if s.tls, err = LoadTLS(s.o, s.cfg, s.log); err != nil {
		return err
	}
	adminTokens := slices.Concat(s.cfg.Server.AdminTokens, flagAdmin)
	s.auth = service.NewAuth(slices.Concat(s.cfg.Server.Tokens, flagTokens), adminTokens)
	if mt := slices.Concat(s.cfg.Server.MetricsTokens, flagMetrics); len(mt) > 0 {
		s.metricsAuth = service.NewAuth(mt, adminTokens)
	}
	if s.tls != nil && s.tls.MutualTLS() {
		// A verified client certificate grants the decision scope.
		s.auth = s.auth.WithClientCerts()
	}
	return s.checkExposure()
}

// checkExposure refuses a non-loopback decision listener without tokens or
// client certificates (unless --insecure), warns when one has no TLS, and
// refuses a non-loopback pprof listener.
func (s *Server) checkExposure() error {
	for _, a := range []string{s.httpAddr, s.grpcAddr} {
		if a == "" || isLoopback(a) {
			continue
		}
		if !s.auth.Enabled() && !s.o.Insecure {
			return fmt.Errorf("listening on %s (not loopback) needs bearer tokens or client certificates: set server.tokens / --token, or server.tls / --tls-cert, --tls-key and --tls-client-ca, or pass --insecure", a)
		}
		if s.tls == nil {
			s.log.Warn("INSECURE: listening on a non-loopback address without TLS: bearer tokens and decisions travel in clear text; set server.tls or --tls-cert and --tls-key", "addr", a)
		}
	}
	if s.debugAddr != "" && !isLoopback(s.debugAddr) {
		return fmt.Errorf("--debug %s: the pprof listener must be a loopback address", s.debugAddr)
	}
	return nil
}

// tlsMode names the TLS mode for the banner and the log: off, on, mutual.
func (s *Server) tlsMode() string {
	switch {
	case s.tls != nil && s.tls.MutualTLS():
		return "mutual"
	case s.tls != nil:
		return "on"
	}
	return "off"
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
