package cli

import (
	"context"
	"io"
	"testing"

	"github.com/weir-go/weir/server/daemon/daemontest"
)

// server is a `weir serve` running in-process on 127.0.0.1:0
// (daemontest.Start).
type server struct{ *daemontest.Server }

// start runs `weir serve --http 127.0.0.1:0 --grpc 127.0.0.1:0 ARGS...`
// through Run and waits for its banner. The server is stopped when the
// test ends.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	return &server{daemontest.Start(t, runServe, args...)}
}

// runServe is Run as a daemontest.RunFunc.
func runServe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return Run(ctx, args, IO{Stdin: stdin, Stdout: stdout, Stderr: stderr})
}
