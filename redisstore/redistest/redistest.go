// Package redistest starts real redis-server processes for tests: a single
// server on a free loopback port, or a local Redis Cluster of several
// masters, with the faults tests need (stop, SIGSTOP, SIGKILL, restart).
//
// When redis-server is not installed, Start skips the test with a clear
// message, unless WEIR_REQUIRE_REDIS=1, in which case it fails it: CI sets
// that variable so a missing server can never pass silently.
//
// Weir's own tests use it (the Redis store, the server, the examples), and
// so can the tests of programs built on the Redis store, as they would use
// net/http/httptest.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/weir-go/weir/internal/testcert"
)

// Require reports whether a missing redis-server must fail the tests.
func Require() bool { return os.Getenv("WEIR_REQUIRE_REDIS") == "1" }

// NeedServer skips t (or fails it, when WEIR_REQUIRE_REDIS=1) if the
// redis-server binary is missing, and returns its path.
func NeedServer(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		if Require() {
			t.Fatalf("redis-server not found in PATH and WEIR_REQUIRE_REDIS=1: install it (Debian: apt-get install redis-server)")
		}
		t.Skip("redis-server not found in PATH: skipping the real-Redis tests (install redis-server; CI sets WEIR_REQUIRE_REDIS=1 to make this a failure)")
	}
	return p
}

// A Server is one redis-server child process.
type Server struct {
	Addr string // host:port
	Port int

	t    testing.TB
	bin  string
	dir  string
	args []string

	// TLS, when set, is the client configuration of a server started with
	// StartTLS; Addr is then its TLS port.
	TLS *tls.Config

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
}

// Start starts a redis-server on a free loopback port with no persistence,
// plus the extra config arguments ("--requirepass", "x", ...). It stops
// the server when the test ends.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin := NeedServer(t)
	port := FreePort(t, false)
	return start(t, bin, port, extra)
}

func start(t testing.TB, bin string, port int, extra []string) *Server {
	t.Helper()
	return startWith(t, bin, port, extra, nil)
}

func startWith(t testing.TB, bin string, port int, extra []string, tc *tls.Config) *Server {
	t.Helper()
	s := &Server{
		TLS:  tc,
		Addr: "127.0.0.1:" + strconv.Itoa(port),
		Port: port,
		t:    t,
		bin:  bin,
		dir:  t.TempDir(),
	}
	s.args = append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--daemonize", "no", "--logfile", filepath.Join(s.dir, "redis.log"),
		"--protected-mode", "no",
	}, extra...)
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Restart starts the server again after Kill or Stop (state is lost: there
// is no persistence).
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatalf("redistest: %s is already running", s.Addr)
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: starting redis-server: %v", err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	s.paused = false
	go func(ch chan struct{}) { _ = cmd.Wait(); close(ch) }(s.exited)
	if err := waitReady(s.Addr, s.TLS, s.exited, 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
		s.t.Fatalf("redistest: redis-server on %s did not come up: %v\n%s", s.Addr, err, log)
	}
}

// waitReady polls until the port accepts connections and answers a PING
// (any reply, NOAUTH included, counts), or the process exits.
func waitReady(addr string, tc *tls.Config, exited chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-exited:
			return fmt.Errorf("process exited")
		default:
		}
		var conn net.Conn
		var err error
		if tc != nil {
			conn, err = tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, tc)
		} else {
			conn, err = net.DialTimeout("tcp", addr, 100*time.Millisecond)
		}
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(time.Second))
			_, err = conn.Write([]byte("PING\r\n"))
			if err == nil {
				line, err2 := bufio.NewReader(conn).ReadString('\n')
				conn.Close()
				if err2 == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH") || strings.HasPrefix(line, "-")) && !strings.HasPrefix(line, "-LOADING") {
					return nil
				}
			} else {
				conn.Close()
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *Server) signal(sig syscall.Signal) {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// Pause stops the process with SIGSTOP: connections stay open but nothing
// answers.
//
// It returns once the kernel reports the process stopped (on Linux; for
// up to a second), so that nothing sent after Pause returns is answered
// before Resume.
func (s *Server) Pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signal(syscall.SIGSTOP)
	s.paused = true
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	stat := fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid)
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err != nil {
			return // not Linux, or gone
		}
		// pid (comm) state ...: the state follows the last ')'.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
			return
		}
	}
}

// Resume continues a paused process with SIGCONT.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signal(syscall.SIGCONT)
	s.paused = false
}

// Kill ends the process with SIGKILL and waits for it.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
}

func (s *Server) kill() {
	if s.cmd == nil {
		return
	}
	s.signal(syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

// Stop ends the process (a paused one too). Tests need not call it: Start
// registers it as a cleanup.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	if s.paused {
		s.signal(syscall.SIGCONT)
	}
	s.signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		s.cmd = nil
	case <-time.After(5 * time.Second):
		s.kill()
	}
}

// Options returns client options for the server with the settings the
// store's tests use: no retries (a retry could apply a decision twice),
// context deadlines honoured, short dial and I/O timeouts.
func (s *Server) Options() *redis.Options {
	return &redis.Options{
		Addr:                  s.Addr,
		TLSConfig:             s.TLS,
		MaxRetries:            -1,
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
		PoolSize:              16,
	}
}

// Client returns a client for the server, closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(s.Options())
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Do runs one command on a fresh connection (useful while other clients
// are busy) and returns its result.
func (s *Server) Do(args ...any) (any, error) {
	o := s.Options()
	o.PoolSize = 1
	c := redis.NewClient(o)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Do(ctx, args...).Result()
}

// StartTLS starts a redis-server that accepts only TLS connections, with
// a fresh CA and a certificate for 127.0.0.1, and returns it with TLS set
// to a client configuration that trusts that CA (hostname verification
// on).
func StartTLS(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin := NeedServer(t)
	dir := t.TempDir()
	ca := testcert.NewCA(t, "weir test CA")
	certFile, keyFile := ca.Server(t, "127.0.0.1").Write(t, dir, "server")
	caFile := ca.Write(t, dir, "ca")
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	port := FreePort(t, false)
	args := append([]string{
		"--port", "0", "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", certFile,
		"--tls-key-file", keyFile,
		"--tls-ca-cert-file", caFile,
		"--tls-auth-clients", "no",
	}, extra...)
	return startWith(t, bin, port, args, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
}

// FreePort returns a loopback TCP port that is free now; with bus, one
// whose port+10000 (the cluster bus) is free too.
func FreePort(t testing.TB, bus bool) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !bus {
			return port
		}
		if port+10000 > 65535 {
			continue
		}
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		l2.Close()
		return port
	}
	t.Fatal("redistest: no free port")
	return 0
}

// A Cluster is a local Redis Cluster of masters without replicas.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts n (at least 3) cluster-enabled servers and joins
// them with redis-cli --cluster create, waiting until every node reports
// cluster_state:ok.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := NeedServer(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if Require() {
			t.Fatal("redis-cli not found in PATH and WEIR_REQUIRE_REDIS=1")
		}
		t.Skip("redis-cli not found in PATH: skipping the cluster tests")
	}
	c := &Cluster{}
	var addrs []string
	for range n {
		port := FreePort(t, true)
		s := start(t, bin, port, []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000",
		})
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range c.Nodes {
		for {
			info, err := s.Do("CLUSTER", "INFO")
			if str, ok := info.(string); err == nil && ok && strings.Contains(str, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster not ok on %s: %v %v", s.Addr, info, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// Addrs returns the nodes' addresses.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, s := range c.Nodes {
		a = append(a, s.Addr)
	}
	return a
}

// Client returns a cluster client, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	cl := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 c.Addrs(),
		MaxRetries:            -1,
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
		PoolSize:              8,
	})
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}
