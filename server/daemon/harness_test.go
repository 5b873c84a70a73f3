package daemon_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weir-go/weir/server/daemon/daemontest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// server is a `weir serve` running in-process on 127.0.0.1:0
// (daemontest.Start) and the test that started it.
type server struct {
	*daemontest.Server
	t *testing.T
}

// start runs `weir serve --http 127.0.0.1:0 --grpc 127.0.0.1:0 ARGS...`
// through Run and waits for its banner. The server is stopped when the
// test ends.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	return &server{daemontest.Start(t, runServe, args...), t}
}

// runServe is Run as a daemontest.RunFunc.
func runServe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return Run(ctx, args, IO{Stdin: stdin, Stdout: stdout, Stderr: stderr})
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
	req, err := http.NewRequest(method, s.HTTP+path, strings.NewReader(body))
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
	cc, err := grpc.NewClient(s.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
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
	return daemontest.Serve(ctx, args, stdio.Stdin, stdio.Stdout, stdio.Stderr)
}
