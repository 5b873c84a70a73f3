package testcert

import (
	"crypto/x509"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestChains(t *testing.T) {
	ca := NewCA(t, "test CA")
	other := NewCA(t, "other CA")
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	srv, cli := ca.Server(t), ca.Client(t, "alice")
	tests := []struct {
		name  string
		cert  *x509.Certificate
		host  string
		usage x509.ExtKeyUsage
		ok    bool
	}{
		{"server by IP", srv.Cert, "127.0.0.1", x509.ExtKeyUsageServerAuth, true},
		{"server by name", srv.Cert, "localhost", x509.ExtKeyUsageServerAuth, true},
		{"server, wrong name", srv.Cert, "example.com", x509.ExtKeyUsageServerAuth, false},
		{"client", cli.Cert, "", x509.ExtKeyUsageClientAuth, true},
		{"client used as server", cli.Cert, "", x509.ExtKeyUsageServerAuth, false},
		{"other CA", other.Server(t).Cert, "127.0.0.1", x509.ExtKeyUsageServerAuth, false},
	}
	for _, tt := range tests {
		_, err := tt.cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: tt.host, KeyUsages: []x509.ExtKeyUsage{tt.usage}})
		if (err == nil) != tt.ok {
			t.Errorf("%s: verify error %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
	dir := t.TempDir()
	cf, kf := srv.Write(t, dir, "server")
	for f, want := range map[string][]byte{cf: srv.CertPEM, kf: srv.KeyPEM, ca.Write(t, dir, "ca"): ca.PEM} {
		if b, err := os.ReadFile(f); err != nil || string(b) != string(want) {
			t.Errorf("%s: %v", f, err)
		}
	}
}
