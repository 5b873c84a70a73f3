package tlsconf_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-go/weir/internal/testcert"
	"github.com/weir-go/weir/server/tlsconf"
)

// lockedBuffer is a goroutine-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serve accepts TLS connections on 127.0.0.1 with cfg; each handshake that
// succeeds is answered with one byte. It stops when the test ends.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if c.(*tls.Conn).Handshake() == nil {
					c.Write([]byte{1})
				}
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// dial connects with cfg, waits for the server's byte (so that a rejected
// client certificate surfaces), and returns the server's leaf and whether
// the session was resumed.
func dial(addr string, cfg *tls.Config) (*x509.Certificate, bool, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, false, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// The byte may come with the server's close_notify: (1, io.EOF).
	if n, err := c.Read(make([]byte, 1)); n != 1 {
		return nil, false, err
	}
	st := c.ConnectionState()
	return st.PeerCertificates[0], st.DidResume, nil
}

type fixture struct {
	dir               string
	ca                *testcert.CA
	cert, key, client string // file paths
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{dir: t.TempDir(), ca: testcert.NewCA(t, "test CA")}
	f.cert, f.key = f.ca.Server(t).Write(t, f.dir, "server")
	f.client = f.ca.Write(t, f.dir, "client-ca")
	return f
}

func (f *fixture) clientConfig(t *testing.T, pair *testcert.Pair) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(f.ca.Cert)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if pair != nil {
		c, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}

func TestNewErrors(t *testing.T) {
	f := newFixture(t)
	other := testcert.NewCA(t, "other").Server(t)
	otherCert, otherKey := other.Write(t, f.dir, "other")
	garbage := filepath.Join(f.dir, "garbage.pem")
	testcert.WriteFile(t, garbage, []byte("not PEM at all\n"))
	badDER := filepath.Join(f.dir, "bad-der.pem")
	testcert.WriteFile(t, badDER, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	missing := filepath.Join(f.dir, "missing.pem")
	tests := []struct {
		name  string
		files tlsconf.Files
		field string
		msg   string
	}{
		{"no cert", tlsconf.Files{Key: f.key}, tlsconf.FieldCert, "no certificate file"},
		{"no key", tlsconf.Files{Cert: f.cert}, tlsconf.FieldKey, "no private key file"},
		{"missing cert", tlsconf.Files{Cert: missing, Key: f.key}, tlsconf.FieldCert, "no such file"},
		{"missing key", tlsconf.Files{Cert: f.cert, Key: missing}, tlsconf.FieldKey, "no such file"},
		{"cert not PEM", tlsconf.Files{Cert: garbage, Key: f.key}, tlsconf.FieldCert, "no PEM CERTIFICATE block"},
		{"cert bad DER", tlsconf.Files{Cert: badDER, Key: f.key}, tlsconf.FieldCert, "certificate 1"},
		{"key is a certificate", tlsconf.Files{Cert: f.cert, Key: f.cert}, tlsconf.FieldKey, "rather than a key"},
		{"key not PEM", tlsconf.Files{Cert: f.cert, Key: garbage}, tlsconf.FieldKey, "no PEM private key"},
		{"key of another cert", tlsconf.Files{Cert: f.cert, Key: otherKey}, tlsconf.FieldKey, "does not match the certificate"},
		{"cert of another key", tlsconf.Files{Cert: otherCert, Key: f.key}, tlsconf.FieldKey, "does not match the certificate"},
		{"missing client CA", tlsconf.Files{Cert: f.cert, Key: f.key, ClientCA: missing}, tlsconf.FieldClientCA, "no such file"},
		{"client CA not PEM", tlsconf.Files{Cert: f.cert, Key: f.key, ClientCA: garbage}, tlsconf.FieldClientCA, "no PEM CERTIFICATE"},
		{"client CA is a key", tlsconf.Files{Cert: f.cert, Key: f.key, ClientCA: f.key}, tlsconf.FieldClientCA, "no PEM CERTIFICATE"},
	}
	for _, tt := range tests {
		_, err := tlsconf.New(tt.files, tlsconf.Options{})
		var fe *tlsconf.FileError
		if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: error %v, want a FileError for %s containing %q", tt.name, err, tt.field, tt.msg)
		}
	}
	if _, err := tlsconf.New(tlsconf.Files{Cert: f.cert, Key: f.key, ClientCA: f.client}, tlsconf.Options{}); err != nil {
		t.Errorf("good files: %v", err)
	}
}

func TestServe(t *testing.T) {
	f := newFixture(t)
	r, err := tlsconf.New(tlsconf.Files{Cert: f.cert, Key: f.key}, tlsconf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.MutualTLS() {
		t.Error("MutualTLS without a client CA")
	}
	addr := serve(t, r.ServerConfig("h2", "http/1.1"))
	leaf, _, err := dial(addr, f.clientConfig(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Equal(r.Certificate().Leaf) {
		t.Error("served another certificate")
	}
	// ALPN is what the listener asked for.
	cfg := f.clientConfig(t, nil)
	cfg.NextProtos = []string{"h2"}
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Errorf("ALPN %q, want h2", p)
	}
	c.Close()
	// TLS 1.1 and older are refused.
	cfg = f.clientConfig(t, nil)
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if _, _, err := dial(addr, cfg); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
	// An unknown authority is refused by the client: the server certificate
	// really is the one from the files.
	if _, _, err := dial(addr, &tls.Config{ServerName: "127.0.0.1", RootCAs: x509.NewCertPool()}); err == nil {
		t.Error("client accepted a certificate from an unknown CA")
	}
}

func TestMutualTLS(t *testing.T) {
	f := newFixture(t)
	r, err := tlsconf.New(tlsconf.Files{Cert: f.cert, Key: f.key, ClientCA: f.client}, tlsconf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.MutualTLS() {
		t.Error("MutualTLS false with a client CA")
	}
	addr := serve(t, r.ServerConfig())
	alice := f.ca.Client(t, "alice")
	other := testcert.NewCA(t, "other CA")
	tests := []struct {
		name string
		pair *testcert.Pair
		ok   bool
	}{
		{"no client certificate", nil, false},
		{"certificate from another CA", other.Client(t, "mallory"), false},
		{"server certificate used as a client's", f.ca.Server(t), false},
		{"valid client certificate", alice, true},
	}
	for _, tt := range tests {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			cfg := f.clientConfig(t, tt.pair)
			cfg.MaxVersion = v
			if _, _, err := dial(addr, cfg); (err == nil) != tt.ok {
				t.Errorf("%s, TLS %x: error %v, want ok=%v", tt.name, v, err, tt.ok)
			}
		}
	}

	// Rotate the client CA: alice's sessions are not resumed past it.
	cfg := f.clientConfig(t, alice)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	if _, _, err := dial(addr, cfg); err != nil {
		t.Fatal(err)
	}
	if _, resumed, err := dial(addr, cfg); err != nil || !resumed {
		t.Fatalf("second connection: resumed %v, error %v; want a resumed session", resumed, err)
	}
	testcert.WriteFile(t, f.client, other.PEM)
	if _, resumed, err := dial(addr, cfg); err == nil {
		t.Errorf("alice still served after her CA was removed (resumed %v)", resumed)
	}
	if _, _, err := dial(addr, f.clientConfig(t, other.Client(t, "bob"))); err != nil {
		t.Errorf("client of the new CA: %v", err)
	}
}

func TestRotation(t *testing.T) {
	f := newFixture(t)
	logs := &lockedBuffer{}
	r, err := tlsconf.New(tlsconf.Files{Cert: f.cert, Key: f.key}, tlsconf.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, r.ServerConfig())
	serial := func() string {
		t.Helper()
		leaf, _, err := dial(addr, f.clientConfig(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber.String()
	}
	first := r.Certificate().Leaf.SerialNumber.String()
	if got := serial(); got != first {
		t.Fatalf("serial %s, want %s", got, first)
	}

	// Renamed into place.
	second := f.ca.Server(t)
	second.Write(t, f.dir, "server")
	if got := serial(); got != second.Cert.SerialNumber.String() {
		t.Errorf("after rename: serial %s, want the new %s", got, second.Cert.SerialNumber)
	}

	// Rewritten in place (same inode, maybe the same size and time tick).
	third := f.ca.Server(t)
	for _, w := range []struct {
		path string
		data []byte
	}{{f.key, third.KeyPEM}, {f.cert, third.CertPEM}} {
		if err := os.WriteFile(w.path, w.data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := serial(); got != third.Cert.SerialNumber.String() {
		t.Errorf("after an in-place rewrite: serial %s, want the new %s", got, third.Cert.SerialNumber)
	}

	// Half a rotation (the certificate without its key) keeps serving the
	// previous pair, and says so once.
	fourth := f.ca.Server(t)
	testcert.WriteFile(t, f.cert, fourth.CertPEM)
	for range 3 {
		if got := serial(); got != third.Cert.SerialNumber.String() {
			t.Errorf("after a bad rotation: serial %s, want the previous %s", got, third.Cert.SerialNumber)
		}
	}
	if n := strings.Count(logs.String(), "tls reload failed"); n != 1 {
		t.Errorf("%d reload failures logged, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "does not match the certificate") {
		t.Errorf("the failure does not say why:\n%s", logs)
	}
	// The key arrives: the rotation completes.
	testcert.WriteFile(t, f.key, fourth.KeyPEM)
	if got := serial(); got != fourth.Cert.SerialNumber.String() {
		t.Errorf("after the key: serial %s, want %s", got, fourth.Cert.SerialNumber)
	}
}

// Files older than the racy window are trusted by their stamps; Reload
// reads them whatever the stamps say.
func TestSettledStamps(t *testing.T) {
	f := newFixture(t)
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{f.cert, f.key} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	r, err := tlsconf.New(tlsconf.Files{Cert: f.cert, Key: f.key}, tlsconf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, r.ServerConfig())
	first := r.Certificate().Leaf
	// Same size, same time, same inode: a change the stamps cannot see.
	// (P-256 PKCS #8 keys have one size; certificates vary by a byte.)
	next := f.ca.Server(t)
	for i := 0; !sameLen(t, f.cert, next.CertPEM); i++ {
		if i == 1000 {
			t.Fatal("no certificate of the same size in 1000 tries")
		}
		next = f.ca.Server(t)
	}
	for _, w := range []struct {
		path string
		data []byte
	}{{f.cert, next.CertPEM}, {f.key, next.KeyPEM}} {
		if !sameLen(t, w.path, w.data) {
			t.Fatalf("%s changes size", w.path)
		}
		if err := os.WriteFile(w.path, w.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(w.path, old, old); err != nil {
			t.Fatal(err)
		}
	}
	leaf, _, err := dial(addr, f.clientConfig(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Equal(first) {
		t.Error("a settled file was read again although its stamps did not change")
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if leaf, _, err = dial(addr, f.clientConfig(t, nil)); err != nil || !leaf.Equal(next.Cert) {
		t.Errorf("after Reload: %v, want the new certificate", err)
	}
}

func sameLen(t *testing.T, path string, data []byte) bool {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size() == int64(len(data))
}

func TestClientConfig(t *testing.T) {
	f := newFixture(t)
	alice := f.ca.Client(t, "alice")
	cert, key := alice.Write(t, f.dir, "alice")
	caFile := f.ca.Write(t, f.dir, "ca")
	missing := filepath.Join(f.dir, "missing.pem")
	tests := []struct {
		name  string
		files tlsconf.ClientFiles
		field string // "" for no error
	}{
		{"nothing", tlsconf.ClientFiles{}, ""},
		{"CA", tlsconf.ClientFiles{CA: caFile}, ""},
		{"all", tlsconf.ClientFiles{CA: caFile, Cert: cert, Key: key}, ""},
		{"missing CA", tlsconf.ClientFiles{CA: missing}, tlsconf.FieldCA},
		{"CA is a key", tlsconf.ClientFiles{CA: key}, tlsconf.FieldCA},
		{"cert without key", tlsconf.ClientFiles{Cert: cert}, tlsconf.FieldKey},
		{"key without cert", tlsconf.ClientFiles{Key: key}, tlsconf.FieldCert},
		{"missing cert", tlsconf.ClientFiles{Cert: missing, Key: key}, tlsconf.FieldCert},
		{"missing key", tlsconf.ClientFiles{Cert: cert, Key: missing}, tlsconf.FieldKey},
		{"mismatched key", tlsconf.ClientFiles{Cert: cert, Key: f.key}, tlsconf.FieldKey},
	}
	for _, tt := range tests {
		cfg, err := tlsconf.ClientConfig(tt.files)
		var fe *tlsconf.FileError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.field == "" && cfg.MinVersion != tls.VersionTLS12:
			t.Errorf("%s: MinVersion %x", tt.name, cfg.MinVersion)
		case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
			t.Errorf("%s: error %v, want a FileError for %s", tt.name, err, tt.field)
		}
	}
	// The client configuration talks mutual TLS with a Reloader's server.
	r, err := tlsconf.New(tlsconf.Files{Cert: f.cert, Key: f.key, ClientCA: f.client}, tlsconf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, r.ServerConfig())
	cfg, err := tlsconf.ClientConfig(tlsconf.ClientFiles{CA: caFile, Cert: cert, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := dial(addr, cfg); err != nil {
		t.Errorf("mutual TLS: %v", err)
	}
}

// A FileError names the file at fault, so a command line can name its flag.
func ExampleFileError() {
	_, err := tlsconf.New(tlsconf.Files{Cert: "server.pem", Key: "server-key.pem"}, tlsconf.Options{})
	var fe *tlsconf.FileError
	if errors.As(err, &fe) {
		fmt.Printf("--tls-%s: %v\n", fe.Field, fe.Err)
	}
	// Output: --tls-cert: open server.pem: no such file or directory
}
