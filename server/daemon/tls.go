package daemon

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"strings"

	"github.com/weir-go/weir/server/tlsconf"
)

// loadTLS checks the TLS flags and loads their files; nil, nil when TLS is
// off. Errors name the flag.
func loadTLS(o Options, log *slog.Logger) (*tlsconf.Reloader, error) {
	switch {
	case o.TLSCert == "" && o.TLSKey == "" && o.TLSClientCA == "":
		return nil, nil
	case o.TLSCert == "" && o.TLSKey == "":
		return nil, errors.New("--tls-client-ca needs --tls-cert and --tls-key: client certificates are verified by the TLS listeners")
	case o.TLSKey == "":
		return nil, fmt.Errorf("--tls-cert %s needs --tls-key (the certificate's private key)", o.TLSCert)
	case o.TLSCert == "":
		return nil, fmt.Errorf("--tls-key %s needs --tls-cert (the certificate it belongs to)", o.TLSKey)
	}
	r, err := tlsconf.New(tlsconf.Files{Cert: o.TLSCert, Key: o.TLSKey, ClientCA: o.TLSClientCA}, tlsconf.Options{Logger: log})
	if fe, ok := errors.AsType[*tlsconf.FileError](err); ok {
		return nil, fmt.Errorf("--tls-%s %s: %w", fe.Field, fe.File, fe.Err)
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
