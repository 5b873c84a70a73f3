package daemon

import (
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/weir-go/weir/server/config"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHTTPErrorLog(t *testing.T) {
	var buf strings.Builder
	l := httpErrorLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Printf("http: TLS handshake error from 127.0.0.1:1234: EOF")
	l.Printf("http: TLS handshake error from 127.0.0.1:1234: tls: client didn't provide a certificate")
	l.Printf("http: panic serving 127.0.0.1:1234: boom")
	want := []string{
		`level=DEBUG msg="http: TLS handshake error from 127.0.0.1:1234: EOF"`,
		`level=WARN msg="http: TLS handshake error from 127.0.0.1:1234: tls: client didn't provide a certificate"`,
		`level=WARN msg="http: panic serving 127.0.0.1:1234: boom"`,
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines:\n%s", len(lines), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d: %s, want %s", i, lines[i], w)
		}
	}
}

// TestServerEqual: a reload that changes the TLS file names (which only a
// restart applies) is told apart, like the listeners and tokens.
func TestServerEqual(t *testing.T) {
	base := config.Server{HTTP: "127.0.0.1:1", Tokens: []string{"a"}, TLS: config.TLS{Cert: "c.pem", Key: "k.pem"}}
	if !serverEqual(base, base) {
		t.Error("a section differs from itself")
	}
	for _, change := range []func(*config.Server){
		func(s *config.Server) { s.HTTP = "127.0.0.1:2" },
		func(s *config.Server) { s.Tokens = []string{"b"} },
		func(s *config.Server) { s.TLS.Cert = "other.pem" },
		func(s *config.Server) { s.TLS.ClientCA = "ca.pem" },
	} {
		s := base
		s.Tokens = slices.Clone(base.Tokens)
		change(&s)
		if serverEqual(base, s) {
			t.Errorf("%+v reported equal to %+v", s, base)
		}
	}
}
