package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		// Re-executed by run as a worker: the test binary plays the
		// command.
		args := []string{}
		for _, a := range os.Args[1:] {
			if !strings.HasPrefix(a, "-test.") {
				args = append(args, a)
			}
		}
		if err := worker(context.Background(), args, os.Stdout); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// startRedis starts a redis-server on a free port for the test, skipping
// the test when redis-server is missing (failing it when
// WEIR_REQUIRE_REDIS=1).
func startRedis(t *testing.T) string {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("WEIR_REQUIRE_REDIS") == "1" {
			t.Fatal("redis-server not found and WEIR_REQUIRE_REDIS=1")
		}
		t.Skip("redis-server not found: skipping (install redis-server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for range 500 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("redis-server did not start")
	return ""
}

// TestRun runs the example end to end: 3 worker processes share the job
// rate and the partner-API semaphore; run itself checks the bounds.
func TestRun(t *testing.T) {
	addr := startRedis(t)
	var out bytes.Buffer
	err := run(context.Background(), []string{"-redis", addr, "-procs", "3", "-duration", "2s"}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "total:") {
		t.Fatalf("no totals in %q", out.String())
	}
}

func TestBadFlags(t *testing.T) {
	if err := run(context.Background(), []string{"-procs", "0"}, &bytes.Buffer{}); err == nil {
		t.Fatal("-procs 0 accepted")
	}
}
