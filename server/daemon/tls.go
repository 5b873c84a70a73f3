package daemon

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"strings"

	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/tlsconf"
)

// LoadTLS loads the listeners' TLS files as weir serve does before it
// listens (and `weir config check` to validate them): the files the --tls-*
// flags in o name when any is given (they replace the configuration's tls
// section as a whole, so a certificate and key never come from different
// places), else cfg's server.tls. It checks that every file parses and
// that the key matches the certificate. It returns nil, nil when TLS is
// off; errors name the flag, or the configuration file and key. log may be
// nil.
func LoadTLS(o Options, cfg *config.Config, log *slog.Logger) (*tlsconf.Reloader, error) {
	t := config.TLS{Cert: o.TLSCert, Key: o.TLSKey, ClientCA: o.TLSClientCA}
	name := func(field string) string { return "--tls-" + field }
	if !t.Enabled() {
		// config.Parse has checked the section.
		t = cfg.Server.TLS
		if !t.Enabled() {
			return nil, nil
		}
		name = func(field string) string {
			return cfg.Source + ": server.tls." + strings.ReplaceAll(field, "-", "_")
		}
	} else if err := t.Check(name); err != nil {
		return nil, err
	}
	files := tlsconf.Files{Cert: t.Cert, Key: t.Key, ClientCA: t.ClientCA}
	r, err := tlsconf.New(files, tlsconf.Options{Logger: log})
	if fe, ok := errors.AsType[*tlsconf.FileError](err); ok {
		return nil, fmt.Errorf("%s %s: %w", name(fe.Field), fe.File, fe.Err)
	}
	return r, err
}

// httpErrorLog is the HTTP server's error log: warnings, except TLS
// handshakes that end before they start (a TCP health probe, a port scan),
// which are debug lines so that a tcpSocket probe does not fill the logs.
func httpErrorLog(l *slog.Logger) *log.Logger {
	return log.New(errorLogWriter{l}, "", 0)
}

type errorLogWriter struct{ l *slog.Logger }

func (w errorLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error") && strings.HasSuffix(msg, ": EOF") {
		level = slog.LevelDebug
	}
	w.l.Log(context.Background(), level, msg)
	return len(p), nil
}
