package cli

// Commands shown in docs/ run against a real `weir serve`, so that a docs
// change that breaks them fails here.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/weir-go/weir/server/daemon/daemontest"
)

// weirAsMain runs the command line in-process as cmd/weir's main does:
// standard output and error together, an error printed as "weir: ERR",
// and the exit status.
func weirAsMain(args []string) (string, int) {
	var out daemontest.Buffer
	err := Run(context.Background(), args, IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out})
	if err == nil {
		return out.String(), 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			out.Write([]byte("weir: " + ee.Err.Error() + "\n"))
		}
		return out.String(), ee.Code
	}
	out.Write([]byte("weir: " + err.Error() + "\n"))
	return out.String(), 1
}

// shellWords splits a command line as sh would for the simple lines docs
// show: words separated by blanks, '...' taken literally, "..." and bare
// words with $NAME expanded by vars.
func shellWords(t *testing.T, line string, vars func(string) string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				t.Fatalf("unterminated ' in %q", line)
			}
			w.WriteString(line[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			end := strings.IndexByte(line[i+1:], '"')
			if end < 0 {
				t.Fatalf("unterminated \" in %q", line)
			}
			w.WriteString(expandVars(line[i+1:i+1+end], vars))
			i += end + 1
			inWord = true
		default:
			j := i
			for j < len(line) && !strings.ContainsRune(" \t'\"", rune(line[j])) {
				j++
			}
			w.WriteString(expandVars(line[i:j], vars))
			i = j - 1
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

var shellVar = regexp.MustCompile(`\$([A-Za-z_][A-Za-z0-9_]*)`)

func expandVars(s string, vars func(string) string) string {
	return shellVar.ReplaceAllStringFunc(s, func(v string) string { return vars(v[1:]) })
}

// The parts of a documented answer that differ from run to run: times and
// the caller's port.
var (
	docsTime = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	docsPort = regexp.MustCompile(`@127\.0\.0\.1:\d+`)
)

// normalize replaces times and callers' ports by placeholders and folds
// runs of blanks (a table's columns widen with the times' digits).
func normalize(s string) string {
	s = docsPort.ReplaceAllString(docsTime.ReplaceAllString(s, "TIME"), "@127.0.0.1:PORT")
	var lines []string
	for l := range strings.Lines(strings.TrimRight(s, "\n")) {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "\n")
}

// normalizeJSON decodes a JSON object and normalizes its string values.
func normalizeJSON(t *testing.T, what, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%s: %q is not a JSON object: %v", what, s, err)
	}
	for k, v := range m {
		if str, ok := v.(string); ok {
			m[k] = normalize(str)
		}
	}
	return m
}

var (
	docsServeCmd = regexp.MustCompile("started as `weir serve ([^`]*)`")
	docsAdminCfg = regexp.MustCompile("`(server: \\{admin_tokens: \\[\"env:WEIR_ADMIN\"\\]\\})` added")
)

// TestDocsOverrideSession runs the overrides example of docs/server.md
// ("Plans and per-key overrides"): the server started as the text says,
// on the plans file shown with the admin token line it names added; the
// curl call that sets an override, then every `$ weir ...` line of the
// session, each answer compared with the one shown (times and callers'
// ports aside), and the log line of the first change.
func TestDocsOverrideSession(t *testing.T) {
	docFile := filepath.Join(docsDir, "server.md")
	raw, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	section := doc[strings.Index(doc, "## Plans and per-key overrides"):]
	section = section[:strings.Index(section[3:], "\n## ")+3]

	// The configuration: the section's plans block, and the line the text
	// says is added.
	var plansFile string
	for _, b := range daemontest.Fenced(t, docFile, "yaml") {
		if strings.HasPrefix(b, "plans:\n") && strings.Contains(section, b) {
			plansFile = b
		}
	}
	add := docsAdminCfg.FindStringSubmatch(section)
	if plansFile == "" || add == nil {
		t.Fatalf("docs/server.md: no plans block (%t) or no admin token line (%v) in the overrides section", plansFile != "", add)
	}
	cfg := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(cfg, []byte(plansFile+add[1]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const admin = "docs-admin-token-0123456789"
	t.Setenv("WEIR_ADMIN", admin)
	t.Setenv("USER", "admin") // the CLI's --by; the docs show "admin"

	// The server, as the text starts it, on ports of its own.
	serve := docsServeCmd.FindStringSubmatch(section)
	if serve == nil {
		t.Fatal("docs/server.md: the overrides section does not say how the server is started")
	}
	var args []string
	docsAddr := ""
	for f := strings.Fields(serve[1]); len(f) > 0; f = f[1:] {
		switch {
		case f[0] == "--http" && len(f) > 1:
			docsAddr, f = f[1], f[1:]
		case f[0] == "--grpc" && len(f) > 1:
			f = f[1:]
		case f[0] == "weir.yaml":
			args = append(args, cfg)
		default:
			args = append(args, f[0])
		}
	}
	if docsAddr == "" {
		t.Fatalf("docs/server.md: no --http in `weir serve %s`", serve[1])
	}
	s := start(t, args...)
	addr := strings.TrimPrefix(s.HTTP, "http://")
	local := func(line string) string {
		return strings.NewReplacer(docsAddr, addr, "localhost:"+strings.Split(docsAddr, ":")[1], addr).Replace(line)
	}

	// The curl call before the session sets the override of initech.
	curls := 0
	for _, b := range daemontest.Fenced(t, docFile, "sh") {
		if !strings.Contains(section, b) || !strings.HasPrefix(b, "curl ") {
			continue
		}
		lines := strings.Split(strings.ReplaceAll(b, " \\\n", " "), "\n")
		words := shellWords(t, local(lines[0]), os.Getenv)
		var url, body string
		hdr := http.Header{}
		for i := 1; i < len(words); i++ {
			switch words[i] {
			case "-s":
			case "-H":
				k, v, _ := strings.Cut(words[i+1], ": ")
				hdr.Set(k, v)
				i++
			case "-d":
				body = words[i+1]
				i++
			default:
				url = "http://" + words[i]
			}
		}
		req, err := http.NewRequest("POST", url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = hdr
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", lines[0], err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if g, w := normalizeJSON(t, "the answer", string(got)), normalizeJSON(t, "docs/server.md's answer", lines[1]); !reflect.DeepEqual(g, w) {
			t.Errorf("%s\n got %s\nwant %s", lines[0], got, lines[1])
		}
		curls++
	}
	if curls != 1 {
		t.Fatalf("docs/server.md: %d curl blocks in the overrides section, want 1", curls)
	}

	// The session: `$ ` lines and their answers.
	var session string
	for _, b := range daemontest.Fenced(t, docFile, "") {
		if strings.Contains(b, "$ weir override set") && strings.Contains(section, b) {
			session = b
		}
	}
	if session == "" {
		t.Fatal("docs/server.md: no `$ weir override` session in the overrides section")
	}
	vars := map[string]string{}
	env := func(name string) string {
		if v, ok := vars[name]; ok {
			return v
		}
		return os.Getenv(name)
	}
	var cmd string
	var want []string
	ran := map[string]int{}
	flush := func() {
		if cmd == "" {
			return
		}
		defer func() { cmd, want = "", nil }()
		if name, value, ok := strings.Cut(cmd, "="); ok && !strings.Contains(name, " ") {
			vars[name] = local(value)
			return
		}
		line, echoStatus := strings.CutSuffix(cmd, `; echo "exit $?"`)
		words := shellWords(t, line, env)
		if len(words) < 2 || words[0] != "weir" {
			t.Fatalf("docs/server.md: %q is not a weir command", cmd)
		}
		out, code := weirAsMain(words[1:])
		if echoStatus {
			out += "exit " + strconv.Itoa(code) + "\n"
		} else if code != 0 {
			t.Errorf("$ %s: exit status %d\n%s", cmd, code, out)
		}
		if got, w := normalize(out), normalize(strings.Join(want, "\n")); got != w {
			t.Errorf("$ %s\n got:\n%s\nwant:\n%s", cmd, got, w)
		}
		ran[words[1]+" "+words[2]]++
	}
	for _, l := range strings.Split(strings.TrimRight(session, "\n"), "\n") {
		if c, ok := strings.CutPrefix(l, "$ "); ok {
			flush()
			cmd = c
			continue
		}
		want = append(want, l)
	}
	flush()
	for _, c := range []string{"override set", "override list", "override get", "override delete", "check --server"} {
		if ran[c] == 0 {
			t.Errorf("the session of docs/server.md ran no `weir %s`", c)
		}
	}

	// The log line of the first change.
	m := regexp.MustCompile("The server logs each change:\n`(\\{[^`]*\\})`").FindStringSubmatch(section)
	if m == nil {
		t.Fatal("docs/server.md: no log line after the session")
	}
	docLog := normalizeJSON(t, "docs/server.md's log line", m[1])
	found := false
	for l := range strings.Lines(s.Logs.String()) {
		var entry map[string]any
		if json.Unmarshal([]byte(l), &entry) != nil || entry["msg"] != docLog["msg"] || entry["key"] != docLog["key"] {
			continue
		}
		got := normalizeJSON(t, "the log line", l)
		for k := range got {
			if _, ok := docLog[k]; !ok {
				delete(got, k) // time and the like, which the docs leave out
			}
		}
		found = reflect.DeepEqual(got, docLog)
		if !found {
			t.Errorf("log line\n got %s\nwant %s", l, m[1])
		}
		break
	}
	if !found && !t.Failed() {
		t.Errorf("no log line like %s in:\n%s", m[1], s.Logs.String())
	}
}
