package cli

// The commands that talk to a server (check) or read what the server
// reads (config check), run against a real `weir serve` started through
// Run. The server's own end-to-end tests are in server/daemon.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-go/weir/internal/testcert"
	"github.com/weir-go/weir/server/daemon/daemontest"
)

const policyV1 = `
policies:
  p:
    limits: ["2/m algo=fixed-window"]
`

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(policyV1), 0o600)
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"config", "check", good}, IO{Stdout: &out, Stderr: &out}); err != nil {
		t.Fatalf("good file: %v", err)
	}
	if !strings.Contains(out.String(), "ok (1 policy)") {
		t.Errorf("output: %s", out.String())
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("policies:\n  p:\n    limits: [\"1/s\"]\n    lmits: 3\n"), 0o600)
	err := Run(context.Background(), []string{"config", "check", bad}, IO{Stdout: &out, Stderr: &out})
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:4: unknown key \"lmits\"") {
		t.Errorf("bad file: %v", err)
	}
}

func TestCheckCommand(t *testing.T) {
	s := start(t)
	var out bytes.Buffer
	args := []string{"check", "--server", s.HTTP, "--policy", "login", "--key", "zed", "--token", ""}
	for i := range 6 {
		out.Reset()
		err := Run(context.Background(), args, IO{Stdout: &out, Stderr: &out})
		if i < 5 {
			if err != nil || !strings.HasPrefix(out.String(), "allowed: policy login") {
				t.Errorf("check %d: %v %s", i, err, out.String())
			}
			continue
		}
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != 1 || !strings.HasPrefix(out.String(), "denied:") {
			t.Errorf("denied check: %v %q", err, out.String())
		}
	}
	err := Run(context.Background(), []string{"check", "--server", s.HTTP, "--policy", "nope", "--key", "k", "--token", ""}, IO{Stdout: &out, Stderr: &out})
	if err == nil || !strings.Contains(err.Error(), "policy: unknown policy") {
		t.Errorf("unknown policy: %v", err)
	}
}

// weir check over HTTPS against a TLS server: with --ca it works, also
// with a bare host:port; without --ca the server's certificate is from an
// unknown authority and no decision comes back.
func TestCheckTLS(t *testing.T) {
	p := daemontest.NewPKI(t)
	s := start(t, "--tls-cert", p.Cert, "--tls-key", p.Key)
	var err error
	// weir check over HTTPS: with --ca it works, without it the server's
	// certificate is from an unknown authority.
	var out bytes.Buffer
	args := []string{"check", "--server", s.HTTP, "--policy", "login", "--key", "bob", "--token", "", "--ca", p.CAFile}
	if err := Run(context.Background(), args, IO{Stdout: &out, Stderr: &out}); err != nil || !strings.HasPrefix(out.String(), "allowed: policy login") {
		t.Errorf("weir check --ca: %v %s", err, out.String())
	}
	out.Reset()
	hostPort := strings.TrimPrefix(s.HTTP, "https://")
	args = []string{"check", "--server", hostPort, "--policy", "login", "--key", "bob", "--token", "", "--ca", p.CAFile}
	if err := Run(context.Background(), args, IO{Stdout: &out, Stderr: &out}); err != nil {
		t.Errorf("weir check --ca with a bare host:port (https implied): %v %s", err, out.String())
	}
	err = Run(context.Background(), []string{"check", "--server", s.HTTP, "--policy", "login", "--key", "bob", "--token", ""}, IO{Stdout: &out, Stderr: &out})
	if ee := (*ExitError)(nil); !errors.As(err, &ee) || ee.Code != exitNoDecision || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("weir check without --ca: %v", err)
	}
}

// weir check against a mutual-TLS server: with --cert and --cert-key it
// works; without them, a handshake error.
func TestCheckMutualTLS(t *testing.T) {
	const admin = "admin-token-0123456789ab"
	p := daemontest.NewPKI(t)
	s := start(t, "--tls-cert", p.Cert, "--tls-key", p.Key, "--tls-client-ca", p.CAFile, "--admin-token", admin)
	ctx := context.Background()
	// weir check with --cert and --cert-key; without them, a handshake error.
	var out bytes.Buffer
	base := []string{"check", "--server", s.HTTP, "--policy", "login", "--key", "zed", "--token", "", "--ca", p.CAFile}
	if err := Run(ctx, append(base, "--cert", p.ClientCert, "--cert-key", p.ClientKey), IO{Stdout: &out, Stderr: &out}); err != nil {
		t.Errorf("weir check with a client certificate: %v %s", err, out.String())
	}
	if err := Run(ctx, base, IO{Stdout: &out, Stderr: &out}); err == nil {
		t.Error("weir check without a client certificate succeeded")
	}
}

// weir check's TLS flags are checked before any connection, exit status 2.
func TestCheckTLSFlagErrors(t *testing.T) {
	p := daemontest.NewPKI(t)
	other := testcert.NewCA(t, "other").Server(t)
	_, otherKey := other.Write(t, p.Dir, "other")
	missing := filepath.Join(p.Dir, "missing.pem")
	// weir check's flags, before any connection.
	checks := []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"--cert", p.ClientCert}, "--cert-key"},
		{"key without cert", []string{"--cert-key", p.ClientKey}, "--cert"},
		{"missing CA", []string{"--ca", missing}, "--ca " + missing},
		{"key not matching", []string{"--cert", p.ClientCert, "--cert-key", otherKey}, "--cert-key " + otherKey},
		{"TLS files with http://", []string{"--ca", p.CAFile, "--server", "http://127.0.0.1:1"}, "https://"},
	}
	for _, tt := range checks {
		var out bytes.Buffer
		err := Run(context.Background(), append([]string{"check", "--policy", "p", "--key", "k"}, tt.args...), IO{Stdout: &out, Stderr: &out})
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != 2 || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("weir check %s: %v, want exit 2 naming %q", tt.name, err, tt.want)
		}
	}
}

// weir config check loads the TLS files of server.tls and says what it
// found; a key of another certificate fails naming the field.
func TestConfigCheckTLS(t *testing.T) {
	p := daemontest.NewPKI(t)
	cfg := filepath.Join(p.Dir, "weir.yaml")
	write := func(tlsSection string) {
		testcert.WriteFile(t, cfg, []byte("server:\n  tls:\n"+tlsSection+"policies:\n  api:\n    limits: [\"5/min\"]\n"))
	}
	write("    cert: server.pem\n    key: server-key.pem\n    client_ca: ca.pem\n")
	// weir config check loads the same files and says what it found.
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"config", "check", cfg}, IO{Stdout: &out, Stderr: &out}); err != nil {
		t.Fatalf("config check: %v", err)
	}
	if want := "  tls: " + p.Server.Cert.Subject.String() + ", valid until " + p.Server.Cert.NotAfter.UTC().Format(time.RFC3339) + ", client certificates required\n"; !strings.Contains(out.String(), want) {
		t.Errorf("config check printed\n%s\nwant the line %q", out.String(), want)
	}
	other := testcert.NewCA(t, "other").Server(t)
	_, otherKey := other.Write(t, p.Dir, "other")
	write("    cert: server.pem\n    key: " + filepath.Base(otherKey) + "\n")
	out.Reset()
	if err := Run(context.Background(), []string{"config", "check", cfg}, IO{Stdout: &out, Stderr: &out}); err == nil || !strings.Contains(err.Error(), cfg+": server.tls.key "+otherKey+": ") || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("config check with a key of another certificate: %v", err)
	}
}

// The configuration shown in docs/server.md is docs/examples/weir.yaml, and
// the Envoy file it names is the one docs/envoy.md shows; with the TLS files
// it names (made as docs/server.md says) and tokens of at least 16
// characters in the environment, `weir config check` passes it. A 15-character
// token fails, naming the rule.
func TestDocsExampleConfig(t *testing.T) {
	example, err := os.ReadFile(filepath.Join(docsDir, "examples", "weir.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if blocks := daemontest.Fenced(t, filepath.Join(docsDir, "server.md"), "yaml"); len(blocks) == 0 || blocks[0] != string(example) {
		t.Fatal("docs/server.md's configuration block is not docs/examples/weir.yaml")
	}
	edge, err := os.ReadFile(filepath.Join(docsDir, "examples", "ratelimit", "edge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(daemontest.Fenced(t, filepath.Join(docsDir, "envoy.md"), "yaml"), string(edge)) {
		t.Fatal("docs/examples/ratelimit/edge.yaml is not the edge.yaml block of docs/envoy.md")
	}

	dir := t.TempDir()
	copyTree(t, filepath.Join(docsDir, "examples"), dir)
	ca := testcert.NewCA(t, "clients CA")
	os.Mkdir(filepath.Join(dir, "tls"), 0o755)
	ca.Server(t, "127.0.0.1").Write(t, filepath.Join(dir, "tls"), "server")
	ca.Write(t, filepath.Join(dir, "tls"), "clients-ca")
	// The command as docs/server.md gives it: the tokens in the
	// environment, then `go run ./cmd/weir config check FILE`.
	d := readDocSection(t, "server.md", "## Policies (the configuration file)")
	command := d.block(t, "sh", "config check command", func(b string) bool { return strings.Contains(b, "config check docs/examples/weir.yaml") })
	words := shellWords(t, strings.ReplaceAll(strings.TrimSpace(command), "\\\n", " "), os.Getenv)
	for len(words) > 0 && strings.Contains(words[0], "=") {
		name, value, _ := strings.Cut(words[0], "=")
		t.Setenv(name, value)
		words = words[1:]
	}
	if want := []string{"go", "run", "./cmd/weir", "config", "check", "docs/examples/weir.yaml"}; !slices.Equal(words, want) {
		t.Fatalf("%s: the command is %q, want %q after the tokens", d.file, words, want)
	}
	cfg := filepath.Join(dir, "weir.yaml")
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"config", "check", cfg}, IO{Stdout: &out, Stderr: &out}); err != nil {
		t.Fatalf("config check of the documented configuration: %v\n%s", err, out.String())
	}
	// The output the section shows, but for the files' directory and the
	// certificate's name and expiry.
	shown := d.block(t, "", "config check output", func(b string) bool { return strings.Contains(b, ": ok (") })
	printed := strings.ReplaceAll(out.String(), dir, "docs/examples")
	cert := regexp.MustCompile(`CN=\S+, valid until \S+`)
	if cert.ReplaceAllString(printed, "CN, T") != cert.ReplaceAllString(shown, "CN, T") {
		t.Errorf("%s shows:\n%s\nconfig check printed:\n%s", d.file, shown, printed)
	}

	t.Setenv("WEIR_TOKEN", "short-123456789") // 15 characters
	out.Reset()
	err = Run(context.Background(), []string{"config", "check", cfg}, IO{Stdout: &out, Stderr: &out})
	if err == nil || !strings.Contains(err.Error(), "server tokens: [0]: a token must be at least 16 characters") {
		t.Errorf("a 15-character token: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("a failed check printed %q", out.String())
	}
}

// docsDir is the repository's docs directory.
const docsDir = "../../../../docs"

// copyTree copies src into dst with mode 0600 files.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
