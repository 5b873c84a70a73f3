// Package daemontest runs a `weir serve` in-process for end-to-end tests:
// the daemon's own (package daemon) and the command line's (cmd/weir),
// which start it through different entry points but wait for it, read its
// banner and stop it the same way.
package daemontest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// A RunFunc runs `weir serve` with args (args[0] is "serve") until ctx
// ends, reading stdin and writing the banner to stdout and logs to stderr:
// the command line's Run, or the daemon's flags and daemon.Run.
type RunFunc func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error

// BannerTimeout is how long Start waits for the banner: generous, since a
// busy machine (a CI runner beside other jobs) can take many seconds to
// start a server under the race detector.
const BannerTimeout = 2 * time.Minute

// A Buffer is a goroutine-safe bytes.Buffer.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A Server is a `weir serve` running in-process on 127.0.0.1:0.
type Server struct {
	// HTTP is the HTTP listener's base URL and GRPC the gRPC listener's
	// host:port, as the banner printed them.
	HTTP, GRPC string
	// Logs is what the server wrote to stderr, Out to stdout.
	Logs, Out *Buffer

	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// Start runs `weir serve --http 127.0.0.1:0 --grpc 127.0.0.1:0
// --reload-interval -1s ARGS...` through run and waits for its banner.
// The server is stopped when the test ends, and the test fails if run
// returned an error.
func Start(t testing.TB, run RunFunc, args ...string) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &Server{cancel: cancel, done: make(chan error, 1), Logs: &Buffer{}, Out: &Buffer{}}
	argv := append([]string{"serve", "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--reload-interval", "-1s"}, args...)
	go func() {
		err := run(ctx, argv, strings.NewReader(""), pw, s.Logs)
		pw.Close()
		s.done <- err
	}()
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.Out.Write([]byte(sc.Text() + "\n"))
			select {
			case lines <- sc.Text():
			default:
			}
		}
		io.Copy(io.Discard, pr)
	}()
	timeout := time.NewTimer(BannerTimeout)
	defer timeout.Stop()
	for s.HTTP == "" || s.GRPC == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				err := <-s.done
				t.Fatalf("weir serve exited before its banner: %v\nlogs:\n%s", err, s.Logs.String())
			}
			f := strings.Fields(l)
			if len(f) >= 2 && f[0] == "HTTP" {
				s.HTTP = f[1]
			}
			if len(f) >= 2 && f[0] == "gRPC" {
				s.GRPC = f[1]
			}
		case <-timeout.C:
			cancel()
			t.Fatalf("no banner after %v; logs:\n%s", BannerTimeout, s.Logs.String())
		}
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("weir serve: %v\nlogs:\n%s", err, s.Logs.String())
		}
	})
	return s
}

// Stop cancels the server's context (what SIGTERM does) and returns what
// run returned; io.ErrNoProgress if it did not return within a minute.
func (s *Server) Stop() error {
	s.once.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(time.Minute):
			s.err = io.ErrNoProgress
		}
	})
	return s.err
}
