package daemon_test

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-go/weir/redisstore/redistest"
)

// Issue 16.1: with Redis stopped (SIGSTOP: connections open, nothing
// answers), /readyz answers 503 near the store's deadline instead of
// hanging until the client's read timeout. The URL sets that read timeout
// to 20 s, so with a client that ignores context deadlines the ping takes
// 20 s (the probe outlives the server's 10 s write timeout: EOF). The 5 s
// bound below is an upper bound on how long the answer may take, with room
// for a busy machine (measured 100-200 ms at load 30-40), never a lower
// bound on progress.
func TestReadyzRedisStalled(t *testing.T) {
	rs := redistest.Start(t)
	cfg := filepath.Join(t.TempDir(), "weir.yaml")
	os.WriteFile(cfg, []byte("policies:\n  p:\n    limits: [\"100/s\"]\n"), 0o600)
	s := start(t, "--config", cfg, "--store", "redis://"+rs.Addr+"/0?deadline=100ms&read_timeout=20s&write_timeout=20s")
	if r := s.do("GET", "/readyz", "", ""); r.Code != http.StatusOK {
		t.Fatalf("readyz with Redis running: %d %s", r.Code, r.Body)
	}
	rs.Pause()
	defer rs.Resume()
	for i := range 3 {
		begin := time.Now()
		r := s.do("GET", "/readyz", "", "")
		took := time.Since(begin)
		t.Logf("readyz %d with Redis stopped: %d in %v: %s", i, r.Code, took, strings.TrimSpace(string(r.Body)))
		if r.Code != http.StatusServiceUnavailable {
			t.Fatalf("readyz with Redis stopped: %d %s, want 503", r.Code, r.Body)
		}
		if strings.Contains(string(r.Body), rs.Addr) || strings.Contains(string(r.Body), "127.0.0.1") {
			t.Errorf("the open probe's answer names an address: %s", r.Body)
		}
		if took > 5*time.Second {
			t.Fatalf("readyz took %v with a 100ms store deadline: the client does not honour context deadlines", took)
		}
	}
	// Reset (admin) reaches Redis directly too: it must also end at the
	// store's deadline.
	begin := time.Now()
	r := s.post("/v1/reset", `{"policy":"p","key":"k"}`)
	if took := time.Since(begin); r.Code != http.StatusServiceUnavailable || took > 5*time.Second {
		t.Fatalf("reset with Redis stopped: %d in %v (%s), want 503 near the 100ms deadline (bound 5 s)", r.Code, took, r.Body)
	}
	rs.Resume()
	eventually(t, "readyz 200 after Redis resumed", func() bool { return s.do("GET", "/readyz", "", "").Code == http.StatusOK })
}

// Issue 16.6: during an outage the server logs the state change and
// summaries, not one line per failed request: 500 requests answered 503
// with Redis gone produce a handful of lines, and the recovery one line.
func TestOutageLogsAreBounded(t *testing.T) {
	rs := redistest.Start(t)
	cfg := filepath.Join(t.TempDir(), "weir.yaml")
	os.WriteFile(cfg, []byte("policies:\n  p:\n    limits: [\"100/s\"]\n    on_store_error: error\n"), 0o600)
	s := start(t, "--config", cfg, "--store", "redis://"+rs.Addr+"/0?deadline=100ms")
	if r := s.post("/v1/check", `{"policy":"p","key":"k"}`); r.Code != http.StatusOK {
		t.Fatalf("check with Redis up: %d %s", r.Code, r.Body)
	}
	before := len(strings.Split(s.Logs.String(), "\n"))
	rs.Kill()
	failed := 0
	for range 500 {
		r := s.post("/v1/check", `{"policy":"p","key":"k"}`)
		if r.Code == http.StatusServiceUnavailable {
			failed++
		}
	}
	if failed != 500 {
		t.Fatalf("%d of 500 checks failed with Redis gone, want 500", failed)
	}
	outage := strings.Split(s.Logs.String(), "\n")[before-1:]
	t.Logf("%d log lines during the outage:\n%s", len(outage), strings.Join(outage, "\n"))
	if len(outage) > 12 {
		t.Errorf("%d log lines for 500 failed requests: want a bounded number (state change, summaries)", len(outage))
	}
	if !strings.Contains(strings.Join(outage, "\n"), `"msg":"store failing"`) {
		t.Errorf("no \"store failing\" line")
	}
	rs.Restart()
	eventually(t, "a \"store recovered\" line", func() bool { return strings.Contains(s.Logs.String(), `"msg":"store recovered"`) })
	// Every failed request was counted, not dropped: the recovery line's
	// total covers the 500 (and the readiness pings that failed).
	m := regexp.MustCompile(`"msg":"store recovered","failures_total":(\d+)`).FindStringSubmatch(s.Logs.String())
	if n, _ := strconv.Atoi(m[1]); n < 500 {
		t.Errorf("store recovered after %d failures, want at least 500", n)
	}
}
