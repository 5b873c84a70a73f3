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
	"github.com/weir-go/weir/server/daemon/daemontest"
	"github.com/weir-go/weir/server/gen/weirv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// post sends body to s.HTTP+path with an optional bearer token.
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
	p := daemontest.NewPKI(t)
	s := start(t, "--tls-cert", p.Cert, "--tls-key", p.Key)
	if !strings.HasPrefix(s.HTTP, "https://127.0.0.1:") {
		t.Fatalf("banner says %s, want an https:// URL", s.HTTP)
	}
	c := p.HTTPSClient(t, nil)
	code, body, st, err := post(c, s.HTTP+"/v1/check", `{"policy":"login","key":"alice"}`, "")
	if err != nil || code != 200 || !bytes.Contains(body, []byte(`"allowed":true`)) {
		t.Fatalf("HTTPS check: %v %d %s", err, code, body)
	}
	if st.Version < tls.VersionTLS12 || st.NegotiatedProtocol != "h2" || !st.PeerCertificates[0].Equal(p.Server.Cert) {
		t.Errorf("TLS %x, ALPN %q, the configured certificate %v", st.Version, st.NegotiatedProtocol, st.PeerCertificates[0].Equal(p.Server.Cert))
	}
	// Plain HTTP on the HTTPS port is refused; so is TLS 1.1.
	if code, _, _, err := post(http.DefaultClient, "http"+strings.TrimPrefix(s.HTTP, "https")+"/v1/check", `{"policy":"login","key":"alice"}`, ""); err == nil && code == 200 {
		t.Error("plain HTTP served on the TLS listener")
	}
	old := p.TLSConfig(t, nil)
	old.MaxVersion = tls.VersionTLS11
	tr := &http.Transport{TLSClientConfig: old}
	defer tr.CloseIdleConnections()
	if _, _, _, err := post(&http.Client{Transport: tr}, s.HTTP+"/v1/check", `{}`, ""); err == nil {
		t.Error("a TLS 1.1 client was served")
	}

	// gRPC over TLS: weir.v1 and Envoy's service on the same listener.
	cc := p.Dial(t, s.GRPC, nil)
	r, err := weirv1.NewWeirClient(cc).Check(context.Background(), &weirv1.CheckRequest{Policy: "login", Key: "alice"})
	if err != nil || !r.Allowed || r.Remaining != 3 {
		t.Errorf("gRPC check over TLS: %v %v (remaining 3 after the HTTPS check)", r, err)
	}
	e, err := rlv3.NewRateLimitServiceClient(cc).ShouldRateLimit(context.Background(), envoyReq)
	if err != nil || e.OverallCode != rlv3.RateLimitResponse_OK {
		t.Errorf("Envoy RLS over TLS: %v %v", e, err)
	}
	// A plaintext gRPC client gets nowhere.
	plain, err := grpc.NewClient(s.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
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
	p := daemontest.NewPKI(t)
	s := start(t, "--tls-cert", p.Cert, "--tls-key", p.Key, "--tls-client-ca", p.CAFile, "--admin-token", admin,
		"--grpc", "0.0.0.0:0") // non-loopback: client certificates are the authentication
	_, port, _ := net.SplitHostPort(s.GRPC)
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
		if code, _, _, err := post(p.HTTPSClient(t, tt.pair), s.HTTP+"/v1/check", check, ""); err == nil {
			t.Errorf("HTTPS with %s: %d, want a TLS handshake failure", tt.name, code)
		}
		eventually(t, "the server to log "+tt.why, func() bool { return strings.Contains(s.Logs.String(), tt.why) })
	}
	good := p.HTTPSClient(t, p.Client)
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
		code, body, _, err := post(good, s.HTTP+tt.path, check, tt.token)
		if err != nil || code != tt.code {
			t.Errorf("%s with a client certificate and token %q: %d %s %v, want %d", tt.path, tt.token, code, body, err, tt.code)
		}
	}

	// gRPC: the same.
	ctx := context.Background()
	for name, pair := range map[string]*testcert.Pair{"no certificate": nil, "another CA's": mallory} {
		_, err := weirv1.NewWeirClient(p.Dial(t, grpcAddr, pair)).Check(ctx, &weirv1.CheckRequest{Policy: "login", Key: "k"})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("gRPC with %s: %v, want Unavailable", name, err)
		}
	}
	cc := p.Dial(t, grpcAddr, p.Client)
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
	p := daemontest.NewPKI(t)
	s := start(t, "--tls-cert", p.Cert, "--tls-key", p.Key)
	c := p.HTTPSClient(t, nil)
	served := func() (httpCert, grpcCert *x509.Certificate) {
		t.Helper()
		_, _, st, err := post(c, s.HTTP+"/v1/check", `{"policy":"login","key":"k","cost":0}`, "")
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", s.GRPC, &tls.Config{RootCAs: p.TLSConfig(t, nil).RootCAs, ServerName: "127.0.0.1", NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return st.PeerCertificates[0], conn.ConnectionState().PeerCertificates[0]
	}
	if h, g := served(); !h.Equal(p.Server.Cert) || !g.Equal(p.Server.Cert) {
		t.Fatal("not serving the configured certificate")
	}
	// The expiry metric follows the certificate being served.
	expiry := func() int64 {
		t.Helper()
		resp, err := c.Get(s.HTTP + "/metrics")
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
	if got, want := expiry(), p.Server.Cert.NotAfter.Unix(); got != want {
		t.Errorf("expiry metric %d, want %d", got, want)
	}
	// A new certificate, renamed into place: the next connections see it.
	next := p.CA.ServerUntil(t, time.Now().Add(90*24*time.Hour).Truncate(time.Second))
	next.Write(t, p.Dir, "server")
	if h, g := served(); !h.Equal(next.Cert) || !g.Equal(next.Cert) {
		t.Errorf("after rotation: HTTP serves serial %s, gRPC %s, want %s", h.SerialNumber, g.SerialNumber, next.Cert.SerialNumber)
	}
	if got, want := expiry(), next.Cert.NotAfter.Unix(); got != want {
		t.Errorf("expiry metric after rotation %d, want %d", got, want)
	}
	// A new gRPC client works across the rotation.
	if _, err := weirv1.NewWeirClient(p.Dial(t, s.GRPC, nil)).Check(context.Background(), &weirv1.CheckRequest{Policy: "login", Key: "k"}); err != nil {
		t.Errorf("gRPC after rotation: %v", err)
	}
	if !strings.Contains(s.Logs.String(), "tls certificate reloaded") {
		t.Errorf("rotation not logged:\n%s", s.Logs.String())
	}
}

func TestTLSFlagErrors(t *testing.T) {
	p := daemontest.NewPKI(t)
	other := testcert.NewCA(t, "other").Server(t)
	_, otherKey := other.Write(t, p.Dir, "other")
	missing := filepath.Join(p.Dir, "missing.pem")
	tests := []struct {
		name string
		args []string
		want []string // all in the error
	}{
		{"cert without key", []string{"--tls-cert", p.Cert}, []string{"--tls-cert", "needs --tls-key"}},
		{"key without cert", []string{"--tls-key", p.Key}, []string{"--tls-key", "needs --tls-cert"}},
		{"client CA alone", []string{"--tls-client-ca", p.CAFile}, []string{"--tls-client-ca", "needs --tls-cert"}},
		{"missing cert", []string{"--tls-cert", missing, "--tls-key", p.Key}, []string{"--tls-cert " + missing, "no such file"}},
		{"cert is a directory", []string{"--tls-cert", p.Dir, "--tls-key", p.Key}, []string{"--tls-cert " + p.Dir, "directory"}},
		{"missing key", []string{"--tls-cert", p.Cert, "--tls-key", missing}, []string{"--tls-key " + missing, "no such file"}},
		{"key not matching", []string{"--tls-cert", p.Cert, "--tls-key", otherKey}, []string{"--tls-key " + otherKey, "does not match"}},
		{"cert is a key", []string{"--tls-cert", p.Key, "--tls-key", p.Key}, []string{"--tls-cert", "no PEM CERTIFICATE"}},
		{"missing client CA", []string{"--tls-cert", p.Cert, "--tls-key", p.Key, "--tls-client-ca", missing}, []string{"--tls-client-ca " + missing}},
		{"client CA is a key", []string{"--tls-cert", p.Cert, "--tls-key", p.Key, "--tls-client-ca", p.Key}, []string{"--tls-client-ca", "no PEM CERTIFICATE"}},
		// TLS alone is not authentication: non-loopback still needs tokens.
		{"TLS without tokens, not loopback", []string{"--tls-cert", p.Cert, "--tls-key", p.Key, "--grpc", "0.0.0.0:0"}, []string{"needs bearer tokens or client certificates"}},
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
	if !strings.Contains(s.Logs.String(), "clear text") {
		t.Errorf("no clear-text warning:\n%s", s.Logs.String())
	}
	loop := start(t, "--token", "decision-token-0123456789")
	if strings.Contains(loop.Logs.String(), "clear text") {
		t.Errorf("clear-text warning on loopback:\n%s", loop.Logs.String())
	}
}

// TestTLSFromConfig: the configuration file's server.tls serves TLS and
// mutual TLS as the flags do, with paths relative to the file; the flags,
// when given, replace the section; its errors name the file and the key.
func TestTLSFromConfig(t *testing.T) {
	p := daemontest.NewPKI(t)
	cfg := filepath.Join(p.Dir, "weir.yaml")
	write := func(tlsSection string) {
		testcert.WriteFile(t, cfg, []byte("server:\n  tls:\n"+tlsSection+"policies:\n  api:\n    limits: [\"5/min\"]\n"))
	}
	check := `{"policy":"api","key":"k"}`

	write("    cert: server.pem\n    key: server-key.pem\n    client_ca: ca.pem\n")
	s := start(t, "--config", cfg, "--grpc", "0.0.0.0:0") // non-loopback: client certificates authenticate
	if !strings.HasPrefix(s.HTTP, "https://127.0.0.1:") {
		t.Fatalf("banner says %s, want an https:// URL", s.HTTP)
	}
	if code, _, _, err := post(p.HTTPSClient(t, nil), s.HTTP+"/v1/check", check, ""); err == nil {
		t.Errorf("served (%d) without a client certificate under server.tls.client_ca", code)
	}
	code, body, st, err := post(p.HTTPSClient(t, p.Client), s.HTTP+"/v1/check", check, "")
	if err != nil || code != 200 || !bytes.Contains(body, []byte(`"allowed":true`)) {
		t.Fatalf("HTTPS check with a client certificate: %v %d %s", err, code, body)
	}
	if !st.PeerCertificates[0].Equal(p.Server.Cert) {
		t.Error("the server did not present server.tls.cert")
	}
	_, port, _ := net.SplitHostPort(s.GRPC)
	cc := p.Dial(t, net.JoinHostPort("127.0.0.1", port), p.Client)
	if r, err := weirv1.NewWeirClient(cc).Check(context.Background(), &weirv1.CheckRequest{Policy: "api", Key: "k"}); err != nil || !r.Allowed || r.Remaining != 3 {
		t.Errorf("gRPC check over mutual TLS: %v %v (remaining 3 after the HTTPS check)", r, err)
	}

	// The flags replace the whole section: its files need not exist, and
	// without --tls-client-ca no client certificate is asked for.
	write("    cert: missing.pem\n    key: missing-key.pem\n    client_ca: missing-ca.pem\n")
	s2 := start(t, "--config", cfg, "--tls-cert", p.Cert, "--tls-key", p.Key)
	if code, body, _, err := post(p.HTTPSClient(t, nil), s2.HTTP+"/v1/check", check, ""); err != nil || code != 200 {
		t.Errorf("flags over server.tls: %v %d %s", err, code, body)
	}

	for _, tt := range []struct {
		name, section string
		want          []string // all in the error
	}{
		{"cert without key", "    cert: server.pem\n", []string{cfg, "server.tls.cert server.pem needs server.tls.key"}},
		{"key without cert", "    key: server-key.pem\n", []string{cfg, "server.tls.key server-key.pem needs server.tls.cert"}},
		{"client CA alone", "    client_ca: ca.pem\n", []string{cfg, "server.tls.client_ca needs server.tls.cert and server.tls.key"}},
		{"missing key", "    cert: server.pem\n    key: nokey.pem\n", []string{cfg + ": server.tls.key " + filepath.Join(p.Dir, "nokey.pem"), "no such file"}},
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
