package tlsconf

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MinVersion is the oldest TLS version any configuration accepts.
const MinVersion = tls.VersionTLS12

// racyWindow is how long after its modification time a file is also
// compared by content: file systems record times with a coarse clock (a
// jiffy on Linux, 2 s on FAT), so a rewrite can keep the same time.
const racyWindow = 2 * time.Second

// Which file a [FileError] concerns.
const (
	FieldCert     = "cert"      // the certificate (chain) file
	FieldKey      = "key"       // the private key file
	FieldClientCA = "client-ca" // the server's pool of client CAs
	FieldCA       = "ca"        // a client's pool of server CAs
)

// A FileError is a problem with one of the files: missing, unreadable,
// not PEM, or not matching the other.
type FileError struct {
	// Field is FieldCert, FieldKey, FieldClientCA or FieldCA.
	Field string
	// File is the path as given.
	File string
	// Err is the cause.
	Err error
}

// Error returns "tls FIELD FILE: cause".
func (e *FileError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("tls %s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("tls %s %s: %v", e.Field, e.File, e.Err)
}

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }

// Files names the PEM files of a server.
type Files struct {
	// Cert is the certificate, followed by its intermediates (required).
	Cert string
	// Key is the certificate's private key, PKCS #1, PKCS #8 or SEC 1
	// (required).
	Key string
	// ClientCA, when set, holds the certificates of the authorities whose
	// client certificates are accepted; every client must present one.
	ClientCA string
}

// Options tune a Reloader; the zero value is fine.
type Options struct {
	// Logger receives reloads and reload failures; nil discards them.
	Logger *slog.Logger
	// Now is the clock (for tests); nil means time.Now.
	Now func() time.Time
}

// A Reloader serves a certificate that is re-read when its files change.
// It is safe for concurrent use.
type Reloader struct {
	files Files
	paths []string // Cert, Key[, ClientCA]
	log   *slog.Logger
	now   func() time.Time

	mu   sync.Mutex // serialises reloads
	seen atomic.Pointer[snapshot]
	cur  atomic.Pointer[state]
}

// state is one loaded, valid set of files.
type state struct {
	cert *tls.Certificate
	pool *x509.CertPool // nil: no client certificates asked for
}

// snapshot is what the files looked like at the last attempt to load them,
// successful or not.
type snapshot struct {
	stamps  []stamp
	sum     [32]byte // hash of the contents read
	settled bool     // every file is older than racyWindow: trust the stamps
}

type stamp struct {
	fi  os.FileInfo // nil when Stat failed
	err string
}

// New loads the files and returns their Reloader, or a [*FileError]
// naming the first bad file.
func New(f Files, o Options) (*Reloader, error) {
	if f.Cert == "" {
		return nil, &FileError{Field: FieldCert, File: f.Cert, Err: errors.New("no certificate file given")}
	}
	if f.Key == "" {
		return nil, &FileError{Field: FieldKey, File: f.Key, Err: errors.New("no private key file given")}
	}
	r := &Reloader{files: f, paths: []string{f.Cert, f.Key}, log: o.Logger, now: o.Now}
	if f.ClientCA != "" {
		r.paths = append(r.paths, f.ClientCA)
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// MutualTLS reports whether client certificates are required.
func (r *Reloader) MutualTLS() bool { return r.files.ClientCA != "" }

// Certificate returns the certificate being served now.
func (r *Reloader) Certificate() *tls.Certificate { return r.cur.Load().cert }

// Reload re-reads the files now, whatever their stamps say. On error the
// previous certificate stays and the error, a [*FileError], is returned.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamps := r.stat()
	data, errs, sum := r.read()
	return r.load(stamps, data, errs, sum)
}

// ServerConfig returns a configuration for one listener that advertises
// nextProtos (ALPN, e.g. "h2", "http/1.1") and always serves the current
// certificate. The returned Config must not be modified.
func (r *Reloader) ServerConfig(nextProtos ...string) *tls.Config {
	type cached struct {
		st  *state
		cfg *tls.Config
	}
	var cache atomic.Pointer[cached]
	return &tls.Config{
		MinVersion: MinVersion,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			r.check()
			st := r.cur.Load()
			if c := cache.Load(); c != nil && c.st == st {
				return c.cfg, nil
			}
			cfg := &tls.Config{
				MinVersion:   MinVersion,
				NextProtos:   nextProtos,
				Certificates: []tls.Certificate{*st.cert},
			}
			if st.pool != nil {
				cfg.ClientAuth = tls.RequireAndVerifyClientCert
				cfg.ClientCAs = st.pool
			}
			cache.Store(&cached{st: st, cfg: cfg})
			return cfg, nil
		},
	}
}

// check reloads the files if they changed since they were last read. The
// common case, nothing changed and the files are old, costs one stat per
// file and no lock.
func (r *Reloader) check() {
	if s := r.seen.Load(); s.settled && sameStamps(s.stamps, r.stat()) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.seen.Load()
	stamps := r.stat()
	if prev.settled && sameStamps(prev.stamps, stamps) {
		return // another handshake reloaded meanwhile
	}
	data, errs, sum := r.read()
	if sum == prev.sum {
		// Same contents: remember the new stamps, settle when old enough.
		r.seen.Store(&snapshot{stamps: stamps, sum: sum, settled: r.settled(stamps)})
		return
	}
	_ = r.load(stamps, data, errs, sum)
}

// load parses data and swaps it in; r.mu is held. The snapshot is stored
// even on failure, so that a bad file is reported once, not per handshake.
func (r *Reloader) load(stamps []stamp, data [][]byte, errs []error, sum [32]byte) error {
	r.seen.Store(&snapshot{stamps: stamps, sum: sum, settled: r.settled(stamps)})
	st, err := r.parse(data, errs)
	if err != nil {
		if r.cur.Load() != nil {
			r.log.Error("tls reload failed; keeping the previous certificate", "err", err.Error())
		}
		return err
	}
	old := r.cur.Swap(st)
	leaf := st.cert.Leaf
	attrs := []any{"subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "client_ca", r.files.ClientCA != ""}
	switch {
	case old == nil:
		r.log.Info("tls certificate loaded", attrs...)
	default:
		r.log.Info("tls certificate reloaded", attrs...)
	}
	if now := r.now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		r.log.Warn("tls certificate is not valid now: clients will refuse it", attrs...)
	}
	return nil
}

// parse validates the files' contents, blaming the right file.
func (r *Reloader) parse(data [][]byte, errs []error) (*state, error) {
	for i, err := range errs {
		if err != nil {
			return nil, &FileError{Field: r.field(i), File: r.paths[i], Err: err}
		}
	}
	if _, err := parseCerts(data[0]); err != nil {
		return nil, &FileError{Field: FieldCert, File: r.files.Cert, Err: err}
	}
	cert, err := tls.X509KeyPair(data[0], data[1])
	if err != nil {
		return nil, &FileError{Field: FieldKey, File: r.files.Key, Err: keyError(err)}
	}
	if cert.Leaf == nil { // GODEBUG=x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, &FileError{Field: FieldCert, File: r.files.Cert, Err: err}
		}
	}
	st := &state{cert: &cert}
	if len(data) > 2 {
		if st.pool, err = Pool(data[2]); err != nil {
			return nil, &FileError{Field: FieldClientCA, File: r.files.ClientCA, Err: err}
		}
	}
	return st, nil
}

func (r *Reloader) field(i int) string {
	return [...]string{FieldCert, FieldKey, FieldClientCA}[i]
}

// stat stamps every file.
func (r *Reloader) stat() []stamp {
	out := make([]stamp, len(r.paths))
	for i, p := range r.paths {
		fi, err := os.Stat(p)
		if err != nil {
			out[i].err = err.Error()
			continue
		}
		out[i].fi = fi
	}
	return out
}

// read returns every file's contents or error, and a hash of them all.
func (r *Reloader) read() ([][]byte, []error, [32]byte) {
	h := sha256.New()
	data := make([][]byte, len(r.paths))
	errs := make([]error, len(r.paths))
	for i, p := range r.paths {
		b, err := os.ReadFile(p)
		if err != nil {
			errs[i] = err
			fmt.Fprintf(h, "error %d %v\x00", i, err)
			continue
		}
		data[i] = b
		fmt.Fprintf(h, "file %d %d\x00", i, len(b))
		h.Write(b)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return data, errs, sum
}

func (r *Reloader) settled(stamps []stamp) bool {
	limit := r.now().Add(-racyWindow)
	for _, s := range stamps {
		if s.fi != nil && !s.fi.ModTime().Before(limit) {
			return false
		}
	}
	return true
}

func sameStamps(a, b []stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if (x.fi == nil) != (y.fi == nil) || x.err != y.err {
			return false
		}
		if x.fi != nil && (!os.SameFile(x.fi, y.fi) || x.fi.Size() != y.fi.Size() || !x.fi.ModTime().Equal(y.fi.ModTime())) {
			return false
		}
	}
	return true
}

// parseCerts returns the certificates of the CERTIFICATE blocks in pemData.
func parseCerts(pemData []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := pemData
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return certs, nil
}

// keyError rewords crypto/tls's errors about a key pair, whose certificate
// half is already known to be good.
func keyError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "does not match"):
		return errors.New("private key does not match the certificate")
	case strings.Contains(msg, "failed to find"):
		return errors.New("no PEM private key block")
	}
	return err
}

// Pool returns a pool of the certificates in pemData, or an error when it
// holds none or a bad one.
func Pool(pemData []byte) (*x509.CertPool, error) {
	certs, err := parseCerts(pemData)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// ClientFiles names the PEM files of a client; all are optional.
type ClientFiles struct {
	// CA holds the authorities trusted to sign the server's certificate;
	// empty means the system's roots.
	CA string
	// Cert and Key are a client certificate for mutual TLS: both or none.
	Cert, Key string
}

// ClientConfig returns a client configuration (TLS 1.2 or later) from
// files, or a [*FileError] naming the bad one (FieldCA, FieldCert or
// FieldKey).
func ClientConfig(f ClientFiles) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: MinVersion}
	if f.CA != "" {
		b, err := os.ReadFile(f.CA)
		if err == nil {
			cfg.RootCAs, err = Pool(b)
		}
		if err != nil {
			return nil, &FileError{Field: FieldCA, File: f.CA, Err: err}
		}
	}
	switch {
	case f.Cert == "" && f.Key == "":
		return cfg, nil
	case f.Key == "":
		return nil, &FileError{Field: FieldKey, Err: errors.New("a client certificate needs its private key")}
	case f.Cert == "":
		return nil, &FileError{Field: FieldCert, Err: errors.New("a private key needs its client certificate")}
	}
	certPEM, err := os.ReadFile(f.Cert)
	if err == nil {
		_, err = parseCerts(certPEM)
	}
	if err != nil {
		return nil, &FileError{Field: FieldCert, File: f.Cert, Err: err}
	}
	keyPEM, err := os.ReadFile(f.Key)
	if err != nil {
		return nil, &FileError{Field: FieldKey, File: f.Key, Err: err}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &FileError{Field: FieldKey, File: f.Key, Err: keyError(err)}
	}
	cfg.Certificates = []tls.Certificate{cert}
	return cfg, nil
}
