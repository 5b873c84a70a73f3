package daemon_test

import (
	"fmt"

	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"github.com/spf13/pflag"
	"github.com/weir-go/weir/server/daemon"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// syncBuffer is a goroutine-safe bytes.Buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is a `weir serve` running in-process through Run, exactly as
// main runs it, on 127.0.0.1:0.
type server struct {
	t      *testing.T
	http   string // base URL
	grpc   string // host:port
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
	out    *syncBuffer
	once   sync.Once
	err    error
}

// start runs `weir serve --http 127.0.0.1:0 --grpc 127.0.0.1:0 ARGS...`
// and waits for its banner. The server is stopped when the test ends.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &server{t: t, cancel: cancel, done: make(chan error, 1), logs: &syncBuffer{}, out: &syncBuffer{}}
	argv := append([]string{"serve", "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--reload-interval", "-1s"}, args...)
	go func() {
		err := Run(ctx, argv, IO{Stdin: strings.NewReader(""), Stdout: pw, Stderr: s.logs})
		pw.Close()
		s.done <- err
	}()
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.out.Write([]byte(sc.Text() + "\n"))
			select {
			case lines <- sc.Text():
			default:
			}
		}
		io.Copy(io.Discard, pr)
	}()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for s.http == "" || s.grpc == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				err := <-s.done
				t.Fatalf("weir serve exited before its banner: %v\nlogs:\n%s", err, s.logs.String())
			}
			f := strings.Fields(l)
			if len(f) >= 2 && f[0] == "HTTP" {
				s.http = f[1]
			}
			if len(f) >= 2 && f[0] == "gRPC" {
				s.grpc = f[1]
			}
		case <-timeout.C:
			t.Fatalf("no banner after 30s; logs:\n%s", s.logs.String())
		}
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("weir serve: %v\nlogs:\n%s", err, s.logs.String())
		}
	})
	return s
}

// stop cancels the server's context (what SIGTERM does) and returns Run's
// error.
func (s *server) stop() error {
	s.once.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(30 * time.Second):
			s.err = io.ErrNoProgress
		}
	})
	return s.err
}

type response struct {
	Code int
	Body []byte
	Hdr  http.Header
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.Body, err)
	}
	return m
}

// do sends a request with an optional bearer token.
func (s *server) do(method, path, body, token string) response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.http+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, b, resp.Header}
}

func (s *server) post(path, body string) response { return s.do("POST", path, body, "") }

func (s *server) dial() *grpc.ClientConn {
	s.t.Helper()
	cc, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { cc.Close() })
	return cc
}

// eventually polls cond every 10ms for up to 10s: only for conditions that
// cross a real process or network boundary.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// IO is where Run reads and writes, as in the command line's cli.IO.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Run runs `weir serve ARGS...` in-process as the command line does: the
// same flags (daemon.Flags), then daemon.Run. args[0] must be "serve".
func Run(ctx context.Context, args []string, stdio IO) error {
	if len(args) == 0 || args[0] != "serve" {
		return fmt.Errorf("the daemon's tests run only serve, not %q", args)
	}
	var fl daemon.Flags
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fl.AddFlags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments: %q", fs.Args())
	}
	o, err := fl.ServeOptions(stdio.Stdout, stdio.Stderr)
	if err != nil {
		return err
	}
	return daemon.Run(ctx, o)
}
