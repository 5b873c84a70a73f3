package daemon

import (
	"log/slog"
	"strings"
	"testing"

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
