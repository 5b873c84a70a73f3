package daemontest

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"

	"github.com/weir-go/weir/internal/testcert"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// A PKI is a CA, a server certificate for 127.0.0.1 and a client
// certificate, written to a temporary directory: what the TLS and mTLS
// tests of `weir serve` and of the commands that call it need.
type PKI struct {
	// Dir is the temporary directory that holds the files.
	Dir string
	// CA issued both certificates; CAFile is its PEM file (ca.pem).
	CA     *testcert.CA
	CAFile string
	// Server is the certificate for 127.0.0.1, Client the one for the
	// common name "client".
	Server, Client *testcert.Pair
	// Cert and Key are the server's files (server.pem, server-key.pem),
	// ClientCert and ClientKey the client's (client.pem, client-key.pem).
	Cert, Key             string
	ClientCert, ClientKey string
}

// NewPKI makes a CA and its two certificates in a new t.TempDir().
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{Dir: t.TempDir(), CA: testcert.NewCA(t, "weir test CA")}
	p.CAFile = p.CA.Write(t, p.Dir, "ca")
	p.Server, p.Client = p.CA.Server(t), p.CA.Client(t, "client")
	p.Cert, p.Key = p.Server.Write(t, p.Dir, "server")
	p.ClientCert, p.ClientKey = p.Client.Write(t, p.Dir, "client")
	return p
}

// TLSConfig trusts the CA and presents pair (nil: no client certificate).
// It presents pair whatever CA the server asks for, so that a test can
// offer a certificate the server must refuse.
func (p *PKI) TLSConfig(t testing.TB, pair *testcert.Pair) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(p.CA.Cert)
	cfg := &tls.Config{RootCAs: pool}
	if pair != nil {
		c, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	return cfg
}

// HTTPSClient is an HTTPS client with TLSConfig(pair) that opens a new
// connection for every request, so that each one sees the certificate
// being served at that moment.
func (p *PKI) HTTPSClient(t testing.TB, pair *testcert.Pair) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: p.TLSConfig(t, pair), DisableKeepAlives: true, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// Dial is a gRPC client of addr over TLS with TLSConfig(pair), closed when
// the test ends.
func (p *PKI) Dial(t testing.TB, addr string, pair *testcert.Pair) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(p.TLSConfig(t, pair))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}
