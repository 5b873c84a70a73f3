package daemon_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/weir-go/weir/redisstore/redistest"
)

// TestFallbackShare (issue 16.4, R13 fail-to-local): N weir serve
// instances on one Redis count each other, and when Redis is killed each
// falls back to 1/N of the limit, so together they admit at most the
// shared limit. The policy is a token bucket of burst 60 refilling 6 per
// hour: each instance's share is burst ⌊60/N⌋ refilling ⌊6/N⌋ per hour, so
// during the test (far shorter than the 20 minutes one refill takes) the
// instances admit at most 60 together. Before the share, each admitted its
// full 60 (120 and 180 here).
func TestFallbackShare(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d servers", n), func(t *testing.T) {
			t.Cleanup(func() { awaitRedialExit(t) }) // runs after the servers stop
			srv := redistest.Start(t)
			cfg := filepath.Join(t.TempDir(), "weir.yaml")
			os.WriteFile(cfg, []byte("policies:\n  shared:\n    limits: [\"6/h burst=60\"]\n    on_store_error: fallback\n"), 0o600)
			var servers []*server
			for range n {
				servers = append(servers, start(t, "--config", cfg, "--store", "redis://"+srv.Addr+"/0?deadline=50ms"))
			}
			// Progress, not time: wait until every instance has counted all n.
			want := fmt.Sprintf("weir_fallback_share %d\n", n)
			deadline := time.Now().Add(60 * time.Second)
			for _, s := range servers {
				for !strings.Contains(string(s.do("GET", "/metrics", "", "").Body), want) {
					if time.Now().After(deadline) {
						t.Fatalf("no %q on %s after 60s", strings.TrimSpace(want), s.HTTP)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			srv.Kill()
			total := 0
			for i, s := range servers {
				admitted := 0
				for {
					r := s.post("/v1/check", `{"policy":"shared","key":"global"}`)
					m := r.json(t)
					if r.Code != 200 || m["source"] != "fallback" {
						t.Fatalf("server %d with Redis killed: %d %s, want a fallback decision", i, r.Code, r.Body)
					}
					if m["allowed"] != true {
						break
					}
					admitted++
					if admitted > 60 {
						t.Fatalf("server %d admitted more than the whole limit (60) alone", i)
					}
				}
				t.Logf("server %d admitted %d in the outage", i, admitted)
				total += admitted
			}
			if total > 60 {
				t.Errorf("%d servers admitted %d together in the outage, over the shared burst of 60", n, total)
			}
		})
	}
}

// awaitRedialExit waits for go-redis's redial goroutines to end: a pool
// whose dials all failed keeps one that sleeps a second between attempts
// and only sees its pool closed after waking, later than goleak looks.
func awaitRedialExit(t *testing.T) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		if !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "(*ConnPool).tryDial") {
			return
		}
		if time.Now().After(deadline) {
			t.Error("go-redis redial goroutines still running 10s after the clients closed")
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
