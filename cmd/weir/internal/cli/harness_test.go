package cli

import (
	"context"
	"io"
	"testing"

	"github.com/weir-go/weir/server/daemon/daemontest"
)

// syncBuffer is a goroutine-safe bytes.Buffer.
type syncBuffer = daemontest.Buffer

// server is a `weir serve` running in-process (package daemontest), on
// 127.0.0.1:0.
type server struct {
	t    *testing.T
	http string // base URL
	grpc string // host:port
	logs *syncBuffer
	out  *syncBuffer
	srv  *daemontest.Server
}

// start runs `weir serve --http 127.0.0.1:0 --grpc 127.0.0.1:0 ARGS...`
// and waits for its banner. The server is stopped when the test ends.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	srv := daemontest.Start(t, func(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
		return Run(ctx, argv, IO{Stdin: stdin, Stdout: stdout, Stderr: stderr})
	}, args...)
	return &server{t: t, http: srv.HTTP, grpc: srv.GRPC, logs: srv.Logs, out: srv.Out, srv: srv}
}

// stop cancels the server's context (what SIGTERM does) and returns Run's
// error.
func (s *server) stop() error { return s.srv.Stop() }
