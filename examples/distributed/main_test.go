package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/weir-go/weir/redisstore/redistest"

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

// TestRun runs the example end to end: 3 worker processes share the job
// rate and the partner-API semaphore; run itself checks the bounds.
func TestRun(t *testing.T) {
	addr := redistest.Start(t).Addr
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
