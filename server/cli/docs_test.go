package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/weir-go/weir/internal/testcert"
)

// docsDir is the repository's docs directory.
const docsDir = "../../docs"

// fenced returns the contents of the fenced blocks of lang in a markdown
// file.
func fenced(t *testing.T, file, lang string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, part := range strings.Split(string(b), "```"+lang+"\n")[1:] {
		end := strings.Index(part, "```")
		if end < 0 {
			t.Fatalf("%s: unterminated %s block", file, lang)
		}
		out = append(out, part[:end])
	}
	return out
}

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
	if blocks := fenced(t, filepath.Join(docsDir, "server.md"), "yaml"); len(blocks) == 0 || blocks[0] != string(example) {
		t.Fatal("docs/server.md's configuration block is not docs/examples/weir.yaml")
	}
	edge, err := os.ReadFile(filepath.Join(docsDir, "examples", "ratelimit", "edge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !slicesContain(fenced(t, filepath.Join(docsDir, "envoy.md"), "yaml"), string(edge)) {
		t.Fatal("docs/examples/ratelimit/edge.yaml is not the edge.yaml block of docs/envoy.md")
	}

	dir := t.TempDir()
	copyTree(t, filepath.Join(docsDir, "examples"), dir)
	ca := testcert.NewCA(t, "clients CA")
	os.Mkdir(filepath.Join(dir, "tls"), 0o755)
	ca.Server(t, "127.0.0.1").Write(t, filepath.Join(dir, "tls"), "server")
	ca.Write(t, filepath.Join(dir, "tls"), "clients-ca")
	t.Setenv("WEIR_TOKEN", "decide-0123456789")
	t.Setenv("WEIR_ADMIN", "admin-0123456789")
	t.Setenv("WEIR_METRICS", "metrics-0123456789")
	cfg := filepath.Join(dir, "weir.yaml")
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"config", "check", cfg}, IO{Stdout: &out, Stderr: &out}); err != nil {
		t.Fatalf("config check of the documented configuration: %v\n%s", err, out.String())
	}
	if !strings.HasPrefix(out.String(), cfg+": ok (4 policies, 1 envoy domains)\n") || !strings.Contains(out.String(), "client certificates required") {
		t.Errorf("config check printed:\n%s", out.String())
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

func slicesContain(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

var curlLine = regexp.MustCompile(`^curl -s localhost:8080(\S+) -d '([^']*)'$`)

// Every `curl -s localhost:8080PATH -d 'BODY'` line of docs/server.md
// followed by its answer gets that answer from the built-in demo server
// (same JSON values, and the body ends with a newline).
func TestDocsCurlAnswers(t *testing.T) {
	s := start(t)
	n := 0
	for _, block := range fenced(t, filepath.Join(docsDir, "server.md"), "sh") {
		lines := strings.Split(block, "\n")
		for i := 0; i+1 < len(lines); i++ {
			m := curlLine.FindStringSubmatch(lines[i])
			if m == nil || !strings.HasPrefix(lines[i+1], "{") {
				continue
			}
			n++
			r := s.post(m[1], m[2])
			var got, want any
			if err := json.Unmarshal(r.Body, &got); err != nil {
				t.Fatalf("%s: answer %q: %v", lines[i], r.Body, err)
			}
			if err := json.Unmarshal([]byte(lines[i+1]), &want); err != nil {
				t.Fatalf("docs answer %q: %v", lines[i+1], err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s\n got %s\nwant %s", lines[i], bytes.TrimSpace(r.Body), lines[i+1])
			}
			if !bytes.HasSuffix(r.Body, []byte("\n")) {
				t.Errorf("%s: the answer does not end with a newline", lines[i])
			}
		}
	}
	if n < 2 {
		t.Fatalf("found %d documented curl answers in docs/server.md, want at least 2", n)
	}
}
