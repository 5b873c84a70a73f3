// Package docrun runs an example as the repository's docs tell readers to:
// it finds every `go run ./examples/NAME ARGS` in README.md and docs/*.md
// with the curl calls after it (in the same code block, table row or
// paragraph), starts the example's run function with those ARGS, sends
// each curl's request with net/http and compares the answer with the
// output the doc shows. The examples' TestDocs tests use it; nothing else
// does.
//
// The output a doc shows for a curl is read from its code block in one of
// two forms: in a block whose commands are prompted (`$ curl ...`), the
// lines after the curl up to the next prompt (the status line, the header
// fields, a blank line and the body, as `curl -i` prints them); in a block
// without prompts, the comment lines right after the curl (`# Name:
// value`, header fields; text after three spaces and a parenthesis is a
// remark, not part of the value).
package docrun

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weir-go/weir/internal/doccmd"
)

// Root is the repository root, from an example's package directory (the
// directory `go test` runs its tests in).
const Root = "../.."

// An Example is one `go run ./examples/NAME ARGS` of the docs.
type Example struct {
	// Where is the file and line of the command.
	Where string
	// Args are the command's arguments after the package.
	Args []string
	// Curls are the curl calls after it.
	Curls []Curl
}

// A Curl is one curl call of the docs.
type Curl struct {
	// Where is the file and line of the call.
	Where string
	// Args are curl's arguments.
	Args []string
	// Head is N for a call piped into `head -c N`, else 0.
	Head int
	// Shown is the output the doc shows for it: nil when it shows none.
	Shown *Shown
}

// Shown is the output a doc shows for a curl call.
type Shown struct {
	// Status is the status line ("HTTP/1.1 200 OK"); empty when the doc
	// shows header fields only.
	Status string
	// Header are the header fields shown, in order.
	Header [][2]string
	// Body is the body shown (lines joined with "\n", with a final
	// newline), when HasBody.
	Body    string
	HasBody bool
}

// Find returns the examples of the docs that run ./examples/name, and
// fails the test when there are none.
func Find(t *testing.T, name string) []Example {
	t.Helper()
	files, err := doccmd.Read(Root)
	if err != nil {
		t.Fatal(err)
	}
	var out []Example
	for _, file := range files {
		for _, unit := range file.Units {
			out = append(out, findIn(t, file.Name, unit, name)...)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no `go run ./examples/%s` in README.md or docs/", name)
	}
	return out
}

// ForEach runs test, as a subtest named by the command's place, for each
// `go run ./examples/name ARGS` of the docs, with the config that parse
// (the example's flag parser) makes of ARGS; a command whose ARGS parse
// rejects fails its subtest.
func ForEach[C any](t *testing.T, name string, parse func(args []string, stderr io.Writer) (C, error), test func(t *testing.T, ex Example, cfg C)) {
	t.Helper()
	for _, ex := range Find(t, name) {
		t.Run(ex.Where, func(t *testing.T) {
			cfg, err := parse(ex.Args, io.Discard)
			if err != nil {
				t.Fatalf("%s: go run ./examples/%s %q: %v", ex.Where, name, ex.Args, err)
			}
			test(t, ex, cfg)
		})
	}
}

// findIn returns the examples of one unit of a file.
func findIn(t *testing.T, file string, unit []doccmd.Line, name string) []Example {
	t.Helper()
	prompted := false
	for _, l := range unit {
		prompted = prompted || l.Block && strings.HasPrefix(l.Text, "$ ")
	}
	var out []Example
	var last *Curl // the last curl call, to which output lines belong
	for _, l := range unit {
		text := l.Text
		if prompted {
			var isCmd bool
			if text, isCmd = strings.CutPrefix(text, "$ "); !isCmd {
				if last != nil {
					addShown(last, l.Text, false)
				}
				continue
			}
		} else if c, ok := strings.CutPrefix(strings.TrimSpace(text), "# "); ok && l.Block {
			if last != nil {
				addShown(last, c, true)
			}
			continue
		}
		last = nil
		cmds := doccmd.Split(text)
		for i, c := range cmds {
			where := file + ":" + strconv.Itoa(l.N)
			switch {
			case len(c.Args) >= 3 && c.Args[0] == "go" && c.Args[1] == "run" && c.Args[2] == "./examples/"+name:
				out = append(out, Example{Where: where, Args: c.Args[3:]})
			case len(c.Args) >= 1 && c.Args[0] == "curl" && len(out) > 0:
				curl := Curl{Where: where, Args: c.Args[1:]}
				if c.Pipe {
					p := cmds[i+1].Args
					n, err := strconv.Atoi(strings.Join(p[min(2, len(p)):], ""))
					if len(p) != 3 || p[0] != "head" || p[1] != "-c" || err != nil {
						t.Fatalf("%s: curl piped into %q: only `head -c N` is understood", where, p)
					}
					curl.Head = n
				}
				ex := &out[len(out)-1]
				ex.Curls = append(ex.Curls, curl)
				last = &ex.Curls[len(ex.Curls)-1]
			}
		}
	}
	return out
}

// addShown adds a line of shown output to c: a `curl -i` output line, or
// a header field of a comment (remark cut off).
func addShown(c *Curl, line string, comment bool) {
	if c.Shown == nil {
		c.Shown = &Shown{}
	}
	s := c.Shown
	switch {
	case comment:
		if i := strings.Index(line, "   ("); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		name, value, _ := strings.Cut(line, ":")
		s.Header = append(s.Header, [2]string{name, strings.TrimSpace(value)})
	case s.HasBody:
		s.Body += line + "\n"
	case s.Status == "" && len(s.Header) == 0 && strings.HasPrefix(line, "HTTP/"):
		s.Status = line
	case line == "":
		s.HasBody = true
	default:
		name, value, _ := strings.Cut(line, ":")
		s.Header = append(s.Header, [2]string{name, strings.TrimSpace(value)})
	}
}

// A RunFunc is an example's main without its signal handling: it serves
// until ctx ends.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// listening is the line in which an example says where it serves.
var listening = regexp.MustCompile(`(?:listening on|serving) http://([^\s/]+)`)

// Start runs the example with the doc's arguments and returns the address
// it serves on. addr is where those arguments make it listen (the
// example's -addr flag or its default): when another process holds that
// port, the example is started with `-addr 127.0.0.1:0` added instead, and
// the test logs it. The example stops when the test ends.
func Start(t *testing.T, run RunFunc, ex Example, addr string) string {
	t.Helper()
	args, moved := ex.Args, false
	if ln, err := net.Listen("tcp", addr); err != nil {
		t.Logf("%s: %s is taken (%v): the example runs on a free port instead", ex.Where, addr, err)
		args, moved = onFreePort(args), true
	} else {
		ln.Close()
	}
	at, err := start(t, run, ex, args)
	if errors.Is(err, syscall.EADDRINUSE) && !moved {
		t.Logf("%s: %s was taken between the check and the example's listen (%v): the example runs on a free port instead", ex.Where, addr, err)
		at, err = start(t, run, ex, onFreePort(args))
	}
	if err != nil {
		t.Fatalf("%s: go run %s: %v", ex.Where, strings.Join(ex.Args, " "), err)
	}
	return at
}

// onFreePort returns args with `-addr 127.0.0.1:0` added (the last -addr
// flag wins).
func onFreePort(args []string) []string {
	return append(append([]string(nil), args...), "-addr", "127.0.0.1:0")
}

// start runs the example with args until the test ends and returns the
// address it says it serves on, or the error it returned before that
// (with its output).
func start(t *testing.T, run RunFunc, ex Example, args []string) (string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, pw, pw)
		pw.CloseWithError(fmt.Errorf("the example returned %v", err))
		done <- err
	}()
	var mu sync.Mutex
	var output strings.Builder
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			mu.Lock()
			output.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-found:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: the example returned %v", ex.Where, err)
			}
		})
		return a, nil
	case err := <-done:
		cancel()
		mu.Lock()
		defer mu.Unlock()
		return "", fmt.Errorf("%w before it served; output:\n%s", err, output.String())
	case <-time.After(time.Minute):
		cancel()
		<-done
		return "", errors.New("the example did not say where it serves within a minute")
	}
}

// Request returns the request of a curl call, sent to addr instead of the
// URL's host when the example runs elsewhere than the doc says (the doc's
// host must then be docAddr, where the doc's command makes it listen).
func (c Curl) Request(t *testing.T, docAddr, addr string) *http.Request {
	t.Helper()
	var target, body, user string
	hdr := http.Header{}
	method := "GET"
	for i := 0; i < len(c.Args); i++ {
		a := c.Args[i]
		value := func() string {
			if i+1 >= len(c.Args) {
				t.Fatalf("%s: curl %s without a value", c.Where, a)
			}
			i++
			return c.Args[i]
		}
		switch a {
		case "-i", "-s", "-si", "-is", "--silent", "--include":
		case "-u", "--user":
			user = value()
		case "-H", "--header":
			name, v, ok := strings.Cut(value(), ":")
			if !ok {
				t.Fatalf("%s: curl -H %q: not a header field", c.Where, c.Args[i])
			}
			hdr.Add(name, strings.TrimSpace(v))
		case "-d", "--data":
			body, method = value(), "POST"
			if hdr.Get("Content-Type") == "" {
				hdr.Set("Content-Type", "application/x-www-form-urlencoded") // as curl sends -d
			}
		default:
			if strings.HasPrefix(a, "-") || target != "" {
				t.Fatalf("%s: curl %s: an argument this test does not understand", c.Where, a)
			}
			target = a
		}
	}
	if !strings.Contains(target, "://") {
		target = "http://" + target
	}
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", c.Where, err)
	}
	if port(req.URL.Host) != port(docAddr) || !loopback(req.URL.Hostname()) {
		t.Fatalf("%s: curl calls %s, but the doc's command serves on %s", c.Where, req.URL.Host, docAddr)
	}
	req.URL.Host = addr
	req.Host = addr
	req.Header = hdr
	req.Header.Set("User-Agent", "curl/8")
	if user != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user)))
	}
	return req
}

func port(hostport string) string {
	_, p, _ := net.SplitHostPort(hostport)
	return p
}

func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// Do sends the curl call's request to the example at addr (see Request)
// and returns the answer, its body cut as `head -c N` cuts it.
func (c Curl) Do(t *testing.T, docAddr, addr string) (*http.Response, []byte) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Do(c.Request(t, docAddr, addr))
	if err != nil {
		t.Fatalf("%s: %v", c.Where, err)
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if c.Head > 0 {
		r = io.LimitReader(r, int64(c.Head))
	}
	body, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: reading the body: %v", c.Where, err)
	}
	return resp, body
}

// A Vary compares the value of a header field the doc shows with the one
// received, for a field that moves with time; nil means equal.
type Vary func(shown, got string) error

// Check compares an answer with the output the doc shows for c: the status
// line; each header field shown (names compared as HTTP compares them),
// its value equal, Date any valid date, and a field of vary by that
// function; when the doc shows the status line, no field it does not
// show; the body, when shown, equal. It fails the test on the first
// difference; a call whose doc shows nothing must answer 200.
func (c Curl) Check(t *testing.T, resp *http.Response, body []byte, vary map[string]Vary) {
	t.Helper()
	s := c.Shown
	if s == nil {
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: answer %s, want 200 (the doc shows no output)", c.Where, resp.Status)
		}
		return
	}
	if got := resp.Proto + " " + resp.Status; s.Status != "" && got != s.Status {
		t.Fatalf("%s: status line %q, the doc shows %q", c.Where, got, s.Status)
	}
	var errs []error
	shown := map[string]bool{}
	for _, h := range s.Header {
		name := http.CanonicalHeaderKey(h[0])
		shown[name] = true
		got := resp.Header.Values(name)
		if len(got) != 1 {
			errs = append(errs, fmt.Errorf("%s: %q values, the doc shows one (%q)", name, got, h[1]))
			continue
		}
		switch {
		case name == "Date":
			if _, err := http.ParseTime(got[0]); err != nil {
				errs = append(errs, fmt.Errorf("the Date field: %v", err))
			}
		case vary[name] != nil:
			if err := vary[name](h[1], got[0]); err != nil {
				errs = append(errs, fmt.Errorf("%s: %q, the doc shows %q: %v", name, got[0], h[1], err))
			}
		case got[0] != h[1]:
			errs = append(errs, fmt.Errorf("%s: %q, the doc shows %q", name, got[0], h[1]))
		}
	}
	if s.Status != "" {
		for name := range resp.Header {
			if !shown[name] {
				errs = append(errs, fmt.Errorf("%s: %q, which the doc does not show", name, resp.Header.Get(name)))
			}
		}
	}
	if s.HasBody && string(body) != s.Body {
		errs = append(errs, fmt.Errorf("body %q, the doc shows %q", body, s.Body))
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("%s: the answer differs from the doc's:\n%v", c.Where, err)
	}
}
