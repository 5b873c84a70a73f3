package cli

// Commands shown in docs/ run against a real `weir serve`, so that a docs
// change that breaks them fails here.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

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

// normalizeJSON decodes a JSON object and normalizes its strings, at any
// depth; a duration such as "39s" (Envoy's time to the window's end)
// becomes "DURATION".
func normalizeJSON(t *testing.T, what, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%s: %q is not a JSON object: %v", what, s, err)
	}
	return normalizeValue(m).(map[string]any)
}

var docsDuration = regexp.MustCompile(`^\d+(\.\d+)?s$`)

func normalizeValue(v any) any {
	switch v := v.(type) {
	case string:
		if docsDuration.MatchString(v) {
			return "DURATION"
		}
		return normalize(v)
	case map[string]any:
		for k, x := range v {
			v[k] = normalizeValue(x)
		}
	case []any:
		for i, x := range v {
			v[i] = normalizeValue(x)
		}
	}
	return v
}

var (
	docsServeCmd = regexp.MustCompile("started as `weir serve ([^`]*)`")
	docsAdminCfg = regexp.MustCompile("`(server: \\{admin_tokens: \\[\"env:WEIR_ADMIN\"\\]\\})` added")
	docsLogLine  = regexp.MustCompile("The server logs each change:\n`(\\{[^`]*\\})`")
)

// TestDocsOverrideSession runs the overrides example of docs/server.md
// ("Plans and per-key overrides"): the server started as the text says,
// on the plans file shown with the admin token line it names added; the
// curl call that sets an override, then every `$ weir ...` line of the
// session, each answer compared with the one shown (times and callers'
// ports aside), and the log line of the first change.
func TestDocsOverrideSession(t *testing.T) {
	d := readDocSection(t, "server.md", "## Plans and per-key overrides")
	t.Setenv("WEIR_ADMIN", "docs-admin-token-0123456789")
	t.Setenv("USER", "admin") // the CLI's --by; the docs show "admin"
	s, local := d.startServer(t, d.overrideConfig(t))

	curls := 0
	for _, b := range d.blocks(t, "sh") {
		if strings.HasPrefix(b, "curl ") {
			d.runCurl(t, b, local)
			curls++
		}
	}
	if curls != 1 {
		t.Fatalf("%s: %d curl blocks in the overrides section, want 1", d.file, curls)
	}

	session := d.block(t, "", "`$ weir override` session", func(b string) bool { return strings.Contains(b, "$ weir override set") })
	ran := runSession(t, session, local)
	for _, c := range []string{"override set", "override list", "override get", "override delete", "check --server"} {
		if ran[c] == 0 {
			t.Errorf("the session of %s ran no `weir %s`", d.file, c)
		}
	}

	m := docsLogLine.FindStringSubmatch(d.text)
	if m == nil {
		t.Fatalf("%s: no log line after the session", d.file)
	}
	checkLogLine(t, s.Logs.String(), m[1])
}

// A docSection is one section of a file of docs/, from its heading to the
// next heading of the same level.
type docSection struct {
	file, text string
}

func readDocSection(t *testing.T, name, heading string) docSection {
	t.Helper()
	file := filepath.Join(docsDir, name)
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "\n"+heading+"\n")
	if start < 0 {
		t.Fatalf("%s: no heading %q", file, heading)
	}
	text := doc[start+1:]
	if end := strings.Index(text[len(heading):], "\n"+heading[:strings.IndexByte(heading, ' ')+1]); end >= 0 {
		text = text[:len(heading)+end+1]
	}
	return docSection{file, text}
}

// blocks returns the fenced blocks of lang in the section.
func (d docSection) blocks(t *testing.T, lang string) []string {
	t.Helper()
	var out []string
	for _, b := range daemontest.Fenced(t, d.file, lang) {
		if strings.Contains(d.text, "```"+lang+"\n"+b+"```") {
			out = append(out, b)
		}
	}
	return out
}

// block returns the last fenced block of lang in the section that match
// accepts; the test fails if there is none.
func (d docSection) block(t *testing.T, lang, what string, match func(string) bool) string {
	t.Helper()
	var found string
	for _, b := range d.blocks(t, lang) {
		if match(b) {
			found = b
		}
	}
	if found == "" {
		t.Fatalf("%s: no %s in the section", d.file, what)
	}
	return found
}

// overrideConfig writes the section's plans block with the admin token
// line the text says is added, and returns the file's path.
func (d docSection) overrideConfig(t *testing.T) string {
	t.Helper()
	plans := d.block(t, "yaml", "plans block", func(b string) bool { return strings.HasPrefix(b, "plans:\n") })
	add := docsAdminCfg.FindStringSubmatch(d.text)
	if add == nil {
		t.Fatalf("%s: the overrides section names no admin token line to add", d.file)
	}
	cfg := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(cfg, []byte(plans+add[1]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startServer starts `weir serve` with the flags the section's text gives
// ("started as `weir serve ...`"), weir.yaml replaced by cfg and the
// listeners on ports of their own. local rewrites the documented address
// (as host:port or localhost:port) to the server's.
func (d docSection) startServer(t *testing.T, cfg string) (s *server, local func(string) string) {
	t.Helper()
	serve := docsServeCmd.FindStringSubmatch(d.text)
	if serve == nil {
		t.Fatalf("%s: the section does not say how the server is started", d.file)
	}
	args, docsAddr := docServeArgs(strings.Fields(serve[1]), func(w string) string {
		if w == "weir.yaml" {
			return cfg
		}
		return w
	})
	_, port, ok := strings.Cut(docsAddr, ":")
	if !ok {
		t.Fatalf("%s: no --http HOST:PORT in `weir serve %s`", d.file, serve[1])
	}
	s = start(t, args...)
	addr := strings.TrimPrefix(s.HTTP, "http://")
	return s, strings.NewReplacer(docsAddr, addr, "localhost:"+port, addr).Replace
}

// docServeArgs turns the words after `weir serve` into start's
// arguments: --http and --grpc dropped (start gives the server ports of
// its own), every other word passed through arg. It returns the
// documented --http address too.
func docServeArgs(words []string, arg func(string) string) (args []string, httpAddr string) {
	for ; len(words) > 0; words = words[1:] {
		if (words[0] == "--http" || words[0] == "--grpc") && len(words) > 1 {
			if words[0] == "--http" {
				httpAddr = words[1]
			}
			words = words[1:]
			continue
		}
		args = append(args, arg(words[0]))
	}
	return args, httpAddr
}

// pemIn maps a word naming a .pem file to that file in dir.
func pemIn(dir string) func(string) string {
	return func(w string) string {
		if strings.HasSuffix(w, ".pem") {
			return filepath.Join(dir, w)
		}
		return w
	}
}

// runCurl runs a block's curl command (lines joined at a trailing
// backslash) and compares the answer with the JSON line that follows it.
func (d docSection) runCurl(t *testing.T, block string, local func(string) string) {
	t.Helper()
	lines := strings.Split(strings.ReplaceAll(block, " \\\n", " "), "\n")
	_, got := curl(t, shellWords(t, local(lines[0]), os.Getenv), "")
	if g, w := normalizeJSON(t, "the answer", string(got)), normalizeJSON(t, d.file+"'s answer", lines[1]); !reflect.DeepEqual(g, w) {
		t.Errorf("%s\n got %s\nwant %s", lines[0], got, lines[1])
	}
}

// curl does what `curl ARGS` does for the options docs use: -s, -H
// HEADER, -d BODY (a POST), --cacert, --cert and --key (files relative to
// dir), and one URL (http:// when it has no scheme). It returns the
// status and the body.
func curl(t *testing.T, words []string, dir string) (int, []byte) {
	t.Helper()
	req, files := curlRequest(t, words, dir)
	client := http.DefaultClient
	if files["--cacert"] != "" {
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: curlTLS(t, files)}}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%q: %v", words, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// curlRequest is the request of a curl command, and its options' values
// as files in dir.
func curlRequest(t *testing.T, words []string, dir string) (*http.Request, map[string]string) {
	t.Helper()
	if len(words) == 0 || words[0] != "curl" {
		t.Fatalf("%q is not a curl command", words)
	}
	req, err := http.NewRequest("GET", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for i := 1; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-s":
		case strings.HasPrefix(w, "-") && i+1 < len(words):
			files[w] = filepath.Join(dir, words[i+1])
			if w == "-H" {
				k, v, _ := strings.Cut(words[i+1], ": ")
				req.Header.Set(k, v)
			}
			if w == "-d" {
				req.Method, req.Body = "POST", io.NopCloser(strings.NewReader(words[i+1]))
			}
			i++
		default:
			if !strings.Contains(w, "://") {
				w = "http://" + w
			}
			if req.URL, err = url.Parse(w); err != nil {
				t.Fatal(err)
			}
		}
	}
	return req, files
}

// curlTLS is the TLS configuration of curl's --cacert, --cert and --key.
func curlTLS(t *testing.T, files map[string]string) *tls.Config {
	t.Helper()
	ca, err := os.ReadFile(files["--cacert"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("%s: no certificate", files["--cacert"])
	}
	cfg := &tls.Config{RootCAs: pool}
	if files["--cert"] != "" {
		c, err := tls.LoadX509KeyPair(files["--cert"], files["--key"])
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}

// runSession runs a documented shell session: `$ NAME=VALUE` sets a
// variable, `$ weir ...` runs the command line as cmd/weir does (with
// `; echo "exit $?"`, its exit status is printed after its output; without,
// it must be 0), and the lines up to the next `$ ` are its answer. It
// returns how often each "command subcommand" ran.
func runSession(t *testing.T, session string, local func(string) string) map[string]int {
	t.Helper()
	vars := map[string]string{}
	env := func(name string) string {
		if v, ok := vars[name]; ok {
			return v
		}
		return os.Getenv(name)
	}
	ran := map[string]int{}
	var cmd string
	var want []string
	flush := func() {
		if cmd != "" {
			if name, value, ok := strings.Cut(cmd, "="); ok && !strings.Contains(name, " ") {
				vars[name] = local(value)
			} else if words := runSessionLine(t, cmd, want, env); len(words) > 2 {
				ran[words[1]+" "+words[2]]++
			}
		}
		cmd, want = "", nil
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
	return ran
}

// runSessionLine runs one `$ weir ...` line of a session and compares its
// output with want; it returns the command's words.
func runSessionLine(t *testing.T, cmd string, want []string, env func(string) string) []string {
	t.Helper()
	line, echoStatus := strings.CutSuffix(cmd, `; echo "exit $?"`)
	words := shellWords(t, line, env)
	if len(words) < 2 || words[0] != "weir" {
		t.Fatalf("%q is not a weir command", cmd)
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
	return words
}

// checkLogLine finds the JSON log line of logs with the msg and key of
// the documented line doc and compares the fields doc shows.
func checkLogLine(t *testing.T, logs, doc string) {
	t.Helper()
	want := normalizeJSON(t, "the documented log line", doc)
	for l := range strings.Lines(logs) {
		var entry map[string]any
		if json.Unmarshal([]byte(l), &entry) != nil || entry["msg"] != want["msg"] || entry["key"] != want["key"] {
			continue
		}
		got := normalizeJSON(t, "the log line", l)
		for k := range got {
			if _, ok := want[k]; !ok {
				delete(got, k) // time and the like, which the docs leave out
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("log line\n got %s\nwant %s", l, doc)
		}
		return
	}
	t.Errorf("no log line like %s in:\n%s", doc, logs)
}

// TestDocsBanner: `go run ./cmd/weir serve` prints the banner
// docs/server.md shows (its addresses aside).
func TestDocsBanner(t *testing.T) {
	var want string
	for _, b := range daemontest.Fenced(t, filepath.Join(docsDir, "server.md"), "") {
		if strings.HasPrefix(b, "weir serve: store memory, config <built-in demo>\n") {
			want = b
		}
	}
	if want == "" {
		t.Fatal("docs/server.md shows no banner of the built-in demo")
	}
	s := start(t)
	want = strings.NewReplacer("http://127.0.0.1:8080", s.HTTP, "127.0.0.1:8081", s.GRPC).Replace(want)
	lines := strings.Count(want, "\n")
	eventually(t, "the whole banner", func() bool { return strings.Count(s.Out.String(), "\n") >= lines })
	if got := s.Out.String(); got != want {
		t.Errorf("banner:\n%s\ndocs/server.md shows:\n%s", got, want)
	}
}

// TestDocsEnvoyTry runs the curl call of docs/envoy.md's "Trying it
// without Envoy" against the built-in demo (`weir serve &`) and compares
// the answer with the one shown (the time to the window's end aside).
func TestDocsEnvoyTry(t *testing.T) {
	d := readDocSection(t, "envoy.md", "## Trying it without Envoy")
	blocks := d.blocks(t, "sh")
	if len(blocks) != 1 || !strings.HasPrefix(blocks[0], "weir serve &") {
		t.Fatalf("%s: the section's block does not start the built-in demo: %q", d.file, blocks)
	}
	s := start(t)
	lines := strings.Split(blocks[0], "\n")
	n := 0
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "curl ") {
			continue
		}
		n++
		answer, ok := strings.CutPrefix(lines[i+1], "# ")
		if !ok {
			t.Fatalf("%s: no answer after %s", d.file, lines[i])
		}
		local := strings.ReplaceAll(lines[i], "localhost:8080", strings.TrimPrefix(s.HTTP, "http://"))
		_, got := curl(t, shellWords(t, local, os.Getenv), "")
		if g, w := normalizeJSON(t, "the answer", string(got)), normalizeJSON(t, d.file+"'s answer", answer); !reflect.DeepEqual(g, w) {
			t.Errorf("%s\n got %s\nwant %s", lines[i], got, answer)
		}
	}
	if n != 1 {
		t.Fatalf("%s: %d curl calls in the section, want 1", d.file, n)
	}
}

// TestDocsTLSCommands runs docs/server.md's "Making certificates" block as
// written: the openssl commands (with bash, in a temporary directory),
// then `weir serve` with the documented TLS flags (on ports of its own),
// and the `weir check` and curl calls with the client certificate: both
// must be answered and allowed.
func TestDocsTLSCommands(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("the documented certificates are made with openssl, which is not on PATH")
	}
	d := readDocSection(t, "server.md", "## TLS and mTLS")
	block := d.block(t, "sh", "certificate block", func(b string) bool { return strings.HasPrefix(b, "# A private CA\n") })
	shell, weirLines, _ := strings.Cut(block, "\nweir serve ")
	dir := t.TempDir()
	cmd := exec.Command("bash", "-e", "-c", shell)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the openssl commands: %v\n%s", err, out)
	}
	t.Setenv("WEIR_ADMIN", "docs-admin-token-0123456789")
	cmds := strings.Split(strings.ReplaceAll("weir serve "+weirLines, " \\\n", " "), "\n")
	args, _ := docServeArgs(shellWords(t, cmds[0], os.Getenv)[2:], pemIn(dir))
	s := start(t, args...)
	local := strings.NewReplacer("localhost:8443", "localhost:"+s.HTTP[strings.LastIndexByte(s.HTTP, ':')+1:]).Replace
	if !strings.HasPrefix(cmds[1], "weir check ") || !strings.HasPrefix(cmds[2], "curl ") {
		t.Fatalf("%s: after weir serve, want weir check and curl: %q", d.file, cmds[1:])
	}
	var words []string
	for _, w := range shellWords(t, local(cmds[1]), os.Getenv)[1:] {
		words = append(words, pemIn(dir)(w))
	}
	if out, code := weirAsMain(words); code != 0 || !strings.HasPrefix(out, "allowed: policy api") {
		t.Errorf("%s: exit status %d\n%s", cmds[1], code, out)
	}
	code, body := curl(t, shellWords(t, local(cmds[2]), os.Getenv), dir)
	if code != 200 || !strings.Contains(string(body), `"allowed":true`) {
		t.Errorf("%s: %d %s", cmds[2], code, body)
	}
}

// TestDocsCostsReport runs docs/costs.md's report example against `weir
// serve --config llm.yaml` with the policy its first comment gives. Each
// answer has the fields shown and the same decision, policy and limit;
// the numbers that move with the time between the calls (remaining, debt,
// the waits) may differ from the ones shown by what the limit's rate
// refills in the time this test took plus one second (the docs' own
// calls were made some milliseconds apart).
func TestDocsCostsReport(t *testing.T) {
	d := readDocSection(t, "costs.md", "## Server: the report call")
	block := d.block(t, "sh", "report example", func(b string) bool { return strings.Contains(b, "/v1/report") })
	lines := strings.Split(block, "\n")
	policy, ok := strings.CutPrefix(lines[0], "# policies: ")
	if !ok || !strings.Contains(d.text, "(Run against `weir serve --config llm.yaml` with the policy in the comment.)") {
		t.Fatalf("%s: the example does not start with its policy, or the text no longer says how the server runs", d.file)
	}
	cfg := filepath.Join(t.TempDir(), "llm.yaml")
	if err := os.WriteFile(cfg, []byte("policies: "+policy+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, "--config", cfg)
	addr := strings.TrimPrefix(s.HTTP, "http://")
	begin := time.Now()
	calls := 0
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "curl ") {
			continue
		}
		calls++
		_, body := curl(t, shellWords(t, strings.ReplaceAll(lines[i], "localhost:8080", addr), os.Getenv), "")
		got, want := normalizeJSON(t, "the answer", string(body)), normalizeJSON(t, d.file+"'s answer", lines[i+1])
		slackMS := float64(time.Since(begin).Milliseconds() + 1000)
		perMS := want["limit"].(float64) / float64(time.Minute.Milliseconds()) // the example's limit is per minute
		for k, w := range want {
			if slack, ok := answerClose(k, got[k], w, slackMS, perMS); !ok {
				t.Errorf("%s\n%s: got %v, want %v (±%.0f)\n got %s\nwant %s", lines[i], k, got[k], w, slack, body, lines[i+1])
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s\n got %s\nwant %s (other fields)", lines[i], body, lines[i+1])
		}
	}
	if calls != 4 {
		t.Fatalf("%s: %d curl calls in the report example, want 4", d.file, calls)
	}
}

// answerClose reports whether the field k of an answer is close enough to
// the documented value: remaining and debt within what perMS units a
// millisecond refill in slackMS, the waits within slackMS, the rest equal.
func answerClose(k string, got, want any, slackMS, perMS float64) (slack float64, ok bool) {
	switch k {
	case "remaining", "debt":
		slack = slackMS * perMS
	case "retry_after_ms", "reset_after_ms":
		slack = slackMS
	}
	g, gok := got.(float64)
	w, wok := want.(float64)
	if gok && wok {
		return slack, math.Abs(g-w) <= slack
	}
	return slack, got != nil && reflect.DeepEqual(got, want)
}
