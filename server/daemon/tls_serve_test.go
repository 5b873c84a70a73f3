package daemon_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/weir-go/weir/internal/testcert"
	"github.com/weir-go/weir/server/gen/weirv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// pki is a CA, a server certificate for 127.0.0.1 and a client
// certificate, written to a temporary directory.
type pki struct {
	dir                   string
	ca                    *testcert.CA
	caFile                string
	server, client        *testcert.Pair
	cert, key             string // the server's files
	clientCert, clientKey string
}

func newPKI(t *testing.T) *pki {
	p := &pki{dir: t.TempDir(), ca: testcert.NewCA(t, "weir test CA")}
	p.caFile = p.ca.Write(t, p.dir, "ca")
	p.server, p.client = p.ca.Server(t), p.ca.Client(t, "client")
	p.cert, p.key = p.server.Write(t, p.dir, "server")
	p.clientCert, p.clientKey = p.client.Write(t, p.dir, "client")
	return p
}

// tlsConfig trusts the CA and presents pair (nil: no client certificate).
func (p *pki) tlsConfig(t *testing.T, pair *testcert.Pair) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Cert)
	cfg := &tls.Config{RootCAs: pool}
	if pair != nil {
		c, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		// Always present it, even when the server asks for another CA's.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	return cfg
}

// httpsClient opens a new connection for every request, so that each one
// sees the certificate being served at that moment.
func (p *pki) httpsClient(t *testing.T, pair *testcert.Pair) *http.Client {
	tr := &http.Transport{TLSClientConfig: p.tlsConfig(t, pair), DisableKeepAlives: true, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func (p *pki) dial(t *testing.T, addr string, pair *testcert.Pair) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(p.tlsConfig(t, pair))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// post sends body to s.http+path with an optional bearer token.
func post(c *http.Client, url, body, token string) (int, []byte, *tls.ConnectionState, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.TLS, err
}

var envoyReq = &rlv3.RateLimitRequest{Domain: "demo", Descriptors: []*rlcommon.RateLimitDescriptor{
	{Entries: []*rlcommon.RateLimitDescriptor_Entry{{Key: "generic_key", Value: "slow"}}},
}}

func TestTLSServe(t *testing.T) {
	p := newPKI(t)
	s := start(t, "--tls-cert", p.cert, "--tls-key", p.key)
	if !strings.HasPrefix(s.http, "https://127.0.0.1:") {
		t.Fatalf("banner says %s, want an https:// URL", s.http)
	}
	c := p.httpsClient(t, nil)
	code, body, st, err := post(c, s.http+"/v1/check", `{"policy":"login","key":"alice"}`, "")
	if err != nil || code != 200 || !bytes.Contains(body, []byte(`"allowed":true`)) {
		t.Fatalf("HTTPS check: %v %d %s", err, code, body)
	}
	if st.Version < tls.VersionTLS12 || st.NegotiatedProtocol != "h2" || !st.PeerCertificates[0].Equal(p.server.Cert) {
		t.Errorf("TLS %x, ALPN %q, the configured certificate %v", st.Version, st.NegotiatedProtocol, st.PeerCertificates[0].Equal(p.server.Cert))
	}
	// Plain HTTP on the HTTPS port is refused; so is TLS 1.1.
	if code, _, _, err := post(http.DefaultClient, "http"+strings.TrimPrefix(s.http, "https")+"/v1/check", `{"policy":"login","key":"alice"}`, ""); err == nil && code == 200 {
		t.Error("plain HTTP served on the TLS listener")
	}
	old := p.tlsConfig(t, nil)
	old.MaxVersion = tls.VersionTLS11
	tr := &http.Transport{TLSClientConfig: old}
	defer tr.CloseIdleConnections()
	if _, _, _, err := post(&http.Client{Transport: tr}, s.http+"/v1/check", `{}`, ""); err == nil {
		t.Error("a TLS 1.1 client was served")
	}

	// gRPC over TLS: weir.v1 and Envoy's service on the same listener.
	cc := p.dial(t, s.grpc, nil)
	r, err := weirv1.NewWeirClient(cc).Check(context.Background(), &weirv1.CheckRequest{Policy: "login", Key: "alice"})
	if err != nil || !r.Allowed || r.Remaining != 3 {
		t.Errorf("gRPC check over TLS: %v %v (remaining 3 after the HTTPS check)", r, err)
	}
	e, err := rlv3.NewRateLimitServiceClient(cc).ShouldRateLimit(context.Background(), envoyReq)
	if err != nil || e.OverallCode != rlv3.RateLimitResponse_OK {
		t.Errorf("Envoy RLS over TLS: %v %v", e, err)
	}
	// A plaintext gRPC client gets nowhere.
	plain, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := weirv1.NewWeirClient(plain).Check(context.Background(), &weirv1.CheckRequest{Policy: "login", Key: "alice"}); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext gRPC on the TLS listener: %v, want Unavailable", err)
	}

}

// mTLS: no certificate or another CA's is a failed handshake; a verified
// certificate is enough for decisions; admin still needs its token.
func TestMutualTLSServe(t *testing.T) {
	const admin = "admin-token-0123456789ab"
	p := newPKI(t)
	s := start(t, "--tls-cert", p.cert, "--tls-key", p.key, "--tls-client-ca", p.caFile, "--admin-token", admin,
		"--grpc", "0.0.0.0:0") // non-loopback: client certificates are the authentication
	_, port, _ := net.SplitHostPort(s.grpc)
	grpcAddr := net.JoinHostPort("127.0.0.1", port)
	mallory := testcert.NewCA(t, "another CA").Client(t, "mallory")
	check := `{"policy":"login","key":"k"}`

	// HTTP: the handshake fails without a good certificate (the client
	// may see it as an alert or a closed connection: TLS 1.3 clients finish
	// their side of the handshake first); the server logs why.
	for _, tt := range []struct {
		name string
		pair *testcert.Pair
		why  string
	}{
		{"no certificate", nil, "TLS handshake error from 127.0.0.1:"},
		{"no certificate", nil, "client didn't provide a certificate"},
		{"another CA's", mallory, "certificate signed by unknown authority"},
	} {
		if code, _, _, err := post(p.httpsClient(t, tt.pair), s.http+"/v1/check", check, ""); err == nil {
			t.Errorf("HTTPS with %s: %d, want a TLS handshake failure", tt.name, code)
		}
		eventually(t, "the server to log "+tt.why, func() bool { return strings.Contains(s.logs.String(), tt.why) })
	}
	good := p.httpsClient(t, p.client)
	for _, tt := range []struct {
		path, token string
		code        int
	}{
		{"/v1/check", "", 200},                       // the certificate is enough
		{"/v1/check", "wrong-token-0123456789", 401}, // a wrong token is not ignored
		{"/v1/check", admin, 200},                    // admin includes decide
		{"/v1/reset", "", 403},                       // admin needs the token
		{"/v1/reset", admin, 200},
	} {
		code, body, _, err := post(good, s.http+tt.path, check, tt.token)
		if err != nil || code != tt.code {
			t.Errorf("%s with a client certificate and token %q: %d %s %v, want %d", tt.path, tt.token, code, body, err, tt.code)
		}
	}

	// gRPC: the same.
	ctx := context.Background()
	for name, pair := range map[string]*testcert.Pair{"no certificate": nil, "another CA's": mallory} {
		_, err := weirv1.NewWeirClient(p.dial(t, grpcAddr, pair)).Check(ctx, &weirv1.CheckRequest{Policy: "login", Key: "k"})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("gRPC with %s: %v, want Unavailable", name, err)
		}
	}
	cc := p.dial(t, grpcAddr, p.client)
	w := weirv1.NewWeirClient(cc)
	if r, err := w.Check(ctx, &weirv1.CheckRequest{Policy: "login", Key: "k"}); err != nil || !r.Allowed {
		t.Errorf("gRPC check with a client certificate: %v %v", r, err)
	}
	if e, err := rlv3.NewRateLimitServiceClient(cc).ShouldRateLimit(ctx, envoyReq); err != nil || e.OverallCode != rlv3.RateLimitResponse_OK {
		t.Errorf("Envoy RLS with a client certificate: %v %v", e, err)
	}
	if _, err := w.Reset(ctx, &weirv1.ResetRequest{Policy: "login", Key: "k"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC reset without the admin token: %v, want PermissionDenied", err)
	}
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+admin)
	if _, err := w.Reset(actx, &weirv1.ResetRequest{Policy: "login", Key: "k"}); err != nil {
		t.Errorf("gRPC reset with the admin token: %v", err)
	}

}

func TestTLSRotation(t *testing.T) {
	p := newPKI(t)
	s := start(t, "--tls-cert", p.cert, "--tls-key", p.key)
	c := p.httpsClient(t, nil)
	served := func() (httpCert, grpcCert *x509.Certificate) {
		t.Helper()
		_, _, st, err := post(c, s.http+"/v1/check", `{"policy":"login","key":"k","cost":0}`, "")
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", s.grpc, &tls.Config{RootCAs: p.tlsConfig(t, nil).RootCAs, ServerName: "127.0.0.1", NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return st.PeerCertificates[0], conn.ConnectionState().PeerCertificates[0]
	}
	if h, g := served(); !h.Equal(p.server.Cert) || !g.Equal(p.server.Cert) {
		t.Fatal("not serving the configured certificate")
	}
	// The expiry metric follows the certificate being served.
	expiry := func() int64 {
		t.Helper()
		resp, err := c.Get(s.http + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "weir_tls_certificate_expiry_timestamp_seconds "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("expiry metric %q: %v", v, err)
				}
				return int64(f)
			}
		}
		t.Fatalf("no weir_tls_certificate_expiry_timestamp_seconds in /metrics")
		return 0
	}
	if got, want := expiry(), p.server.Cert.NotAfter.Unix(); got != want {
		t.Errorf("expiry metric %d, want %d", got, want)
	}
	// A new certificate, renamed into place: the next connections see it.
	next := p.ca.ServerUntil(t, time.Now().Add(90*24*time.Hour).Truncate(time.Second))
	next.Write(t, p.dir, "server")
	if h, g := served(); !h.Equal(next.Cert) || !g.Equal(next.Cert) {
		t.Errorf("after rotation: HTTP serves serial %s, gRPC %s, want %s", h.SerialNumber, g.SerialNumber, next.Cert.SerialNumber)
	}
	if got, want := expiry(), next.Cert.NotAfter.Unix(); got != want {
		t.Errorf("expiry metric after rotation %d, want %d", got, want)
	}
	// A new gRPC client works across the rotation.
	if _, err := weirv1.NewWeirClient(p.dial(t, s.grpc, nil)).Check(context.Background(), &weirv1.CheckRequest{Policy: "login", Key: "k"}); err != nil {
		t.Errorf("gRPC after rotation: %v", err)
	}
	if !strings.Contains(s.logs.String(), "tls certificate reloaded") {
		t.Errorf("rotation not logged:\n%s", s.logs.String())
	}
}

func TestTLSFlagErrors(t *testing.T) {
	p := newPKI(t)
	other := testcert.NewCA(t, "other").Server(t)
	_, otherKey := other.Write(t, p.dir, "other")
	missing := filepath.Join(p.dir, "missing.pem")
	tests := []struct {
		name string
		args []string
		want []string // all in the error
	}{
		{"cert without key", []string{"--tls-cert", p.cert}, []string{"--tls-cert", "needs --tls-key"}},
		{"key without cert", []string{"--tls-key", p.key}, []string{"--tls-key", "needs --tls-cert"}},
		{"client CA alone", []string{"--tls-client-ca", p.caFile}, []string{"--tls-client-ca", "needs --tls-cert"}},
		{"missing cert", []string{"--tls-cert", missing, "--tls-key", p.key}, []string{"--tls-cert " + missing, "no such file"}},
		{"cert is a directory", []string{"--tls-cert", p.dir, "--tls-key", p.key}, []string{"--tls-cert " + p.dir, "directory"}},
		{"missing key", []string{"--tls-cert", p.cert, "--tls-key", missing}, []string{"--tls-key " + missing, "no such file"}},
		{"key not matching", []string{"--tls-cert", p.cert, "--tls-key", otherKey}, []string{"--tls-key " + otherKey, "does not match"}},
		{"cert is a key", []string{"--tls-cert", p.key, "--tls-key", p.key}, []string{"--tls-cert", "no PEM CERTIFICATE"}},
		{"missing client CA", []string{"--tls-cert", p.cert, "--tls-key", p.key, "--tls-client-ca", missing}, []string{"--tls-client-ca " + missing}},
		{"client CA is a key", []string{"--tls-cert", p.cert, "--tls-key", p.key, "--tls-client-ca", p.key}, []string{"--tls-client-ca", "no PEM CERTIFICATE"}},
		// TLS alone is not authentication: non-loopback still needs tokens.
		{"TLS without tokens, not loopback", []string{"--tls-cert", p.cert, "--tls-key", p.key, "--grpc", "0.0.0.0:0"}, []string{"needs bearer tokens or client certificates"}},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		args := append([]string{"serve", "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0"}, tt.args...)
		err := Run(context.Background(), args, IO{Stdout: &out, Stderr: &errb})
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want it to contain %q", tt.name, err, w)
			}
		}
		if out.Len() > 0 {
			t.Errorf("%s: printed a banner: %s", tt.name, out.String())
		}
	}
}

// Without TLS, tokens on a non-loopback listener work as before but the
// log says loudly that they travel in clear text.
func TestPlaintextTokensWarn(t *testing.T) {
	s := start(t, "--token", "decision-token-0123456789", "--grpc", "0.0.0.0:0")
	if !strings.Contains(s.logs.String(), "clear text") {
		t.Errorf("no clear-text warning:\n%s", s.logs.String())
	}
	loop := start(t, "--token", "decision-token-0123456789")
	if strings.Contains(loop.logs.String(), "clear text") {
		t.Errorf("clear-text warning on loopback:\n%s", loop.logs.String())
	}
}

// TestTLSFromConfig: the configuration file's server.tls serves TLS and
// mutual TLS as the flags do, with paths relative to the file; the flags,
// when given, replace the section; its errors name the file and the key.
func TestTLSFromConfig(t *testing.T) {
	p := newPKI(t)
	cfg := filepath.Join(p.dir, "weir.yaml")
	write := func(tlsSection string) {
		testcert.WriteFile(t, cfg, []byte("server:\n  tls:\n"+tlsSection+"policies:\n  api:\n    limits: [\"5/min\"]\n"))
	}
	check := `{"policy":"api","key":"k"}`

	write("    cert: server.pem\n    key: server-key.pem\n    client_ca: ca.pem\n")
	s := start(t, "--config", cfg, "--grpc", "0.0.0.0:0") // non-loopback: client certificates authenticate
	if !strings.HasPrefix(s.http, "https://127.0.0.1:") {
		t.Fatalf("banner says %s, want an https:// URL", s.http)
	}
	if code, _, _, err := post(p.httpsClient(t, nil), s.http+"/v1/check", check, ""); err == nil {
		t.Errorf("served (%d) without a client certificate under server.tls.client_ca", code)
	}
	code, body, st, err := post(p.httpsClient(t, p.client), s.http+"/v1/check", check, "")
	if err != nil || code != 200 || !bytes.Contains(body, []byte(`"allowed":true`)) {
		t.Fatalf("HTTPS check with a client certificate: %v %d %s", err, code, body)
	}
	if !st.PeerCertificates[0].Equal(p.server.Cert) {
		t.Error("the server did not present server.tls.cert")
	}
	_, port, _ := net.SplitHostPort(s.grpc)
	cc := p.dial(t, net.JoinHostPort("127.0.0.1", port), p.client)
	if r, err := weirv1.NewWeirClient(cc).Check(context.Background(), &weirv1.CheckRequest{Policy: "api", Key: "k"}); err != nil || !r.Allowed || r.Remaining != 3 {
		t.Errorf("gRPC check over mutual TLS: %v %v (remaining 3 after the HTTPS check)", r, err)
	}

	// The flags replace the whole section: its files need not exist, and
	// without --tls-client-ca no client certificate is asked for.
	write("    cert: missing.pem\n    key: missing-key.pem\n    client_ca: missing-ca.pem\n")
	s2 := start(t, "--config", cfg, "--tls-cert", p.cert, "--tls-key", p.key)
	if code, body, _, err := post(p.httpsClient(t, nil), s2.http+"/v1/check", check, ""); err != nil || code != 200 {
		t.Errorf("flags over server.tls: %v %d %s", err, code, body)
	}

	for _, tt := range []struct {
		name, section string
		want          []string // all in the error
	}{
		{"cert without key", "    cert: server.pem\n", []string{cfg, "server.tls.cert server.pem needs server.tls.key"}},
		{"key without cert", "    key: server-key.pem\n", []string{cfg, "server.tls.key server-key.pem needs server.tls.cert"}},
		{"client CA alone", "    client_ca: ca.pem\n", []string{cfg, "server.tls.client_ca needs server.tls.cert and server.tls.key"}},
		{"missing key", "    cert: server.pem\n    key: nokey.pem\n", []string{cfg + ": server.tls.key " + filepath.Join(p.dir, "nokey.pem"), "no such file"}},
		{"client CA is a key", "    cert: server.pem\n    key: server-key.pem\n    client_ca: server-key.pem\n", []string{cfg + ": server.tls.client_ca", "no PEM CERTIFICATE"}},
		{"unknown key", "    certificate: server.pem\n", []string{cfg + ":3", `unknown key "certificate"`}},
	} {
		write(tt.section)
		var out, errb bytes.Buffer
		err := Run(context.Background(), []string{"serve", "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--config", cfg}, IO{Stdout: &out, Stderr: &errb})
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want it to contain %q", tt.name, err, w)
			}
		}
		if out.Len() > 0 {
			t.Errorf("%s: printed a banner: %s", tt.name, out.String())
		}
	}
}
