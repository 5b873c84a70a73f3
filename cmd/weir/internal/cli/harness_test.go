package cli

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
