package daemon_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-go/weir/redisstore/redistest"
)

// firstEvent reads the first event of GET /dashboard/events.
func firstEvent(t *testing.T, s *server) map[string]json.RawMessage {
	t.Helper()
	resp, err := http.Get(s.HTTP + "/dashboard/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]json.RawMessage
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
		t.Fatalf("event %q: %v", line, err)
	}
	return ev
}

type pingJSON struct {
	Store       string  `json:"store"`
	OK          bool    `json:"ok"`
	AtMS        int64   `json:"at_ms"`
	LatencyMS   float64 `json:"latency_ms"`
	LastError   string  `json:"last_error"`
	LastErrorMS int64   `json:"last_error_ms"`
}

// TestDashboardRedisPing: the dashboard's store section shows Redis
// reachability from the daemon's own probe (every /readyz pings, so the
// test steps on its answers, not on the clock): ok while Redis runs, the
// failure and its error once it is killed, ok again after a restart with
// the last error kept.
func TestDashboardRedisPing(t *testing.T) {
	rs := redistest.Start(t)
	cfg := filepath.Join(t.TempDir(), "weir.yaml")
	os.WriteFile(cfg, []byte("policies:\n  p:\n    limits: [\"100/s\"]\n"), 0o600)
	s := start(t, "--config", cfg, "--store", "redis://"+rs.Addr+"/0?deadline=200ms")
	ping := func() pingJSON {
		t.Helper()
		var p pingJSON
		if err := json.Unmarshal(firstEvent(t, s)["ping"], &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if r := s.do("GET", "/readyz", "", ""); r.Code != http.StatusOK {
		t.Fatalf("readyz: %d %s", r.Code, r.Body)
	}
	if p := ping(); p.Store != "redis" || !p.OK || p.AtMS == 0 || p.LastError != "" {
		t.Fatalf("ping with Redis up: %+v", p)
	}

	rs.Kill()
	if r := s.do("GET", "/readyz", "", ""); r.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with Redis killed: %d %s", r.Code, r.Body)
	}
	down := ping()
	// The probe may have pinged again since /readyz: either way the last
	// ping failed, and the error is the store's.
	if down.OK || down.LastError == "" || down.LastErrorMS == 0 {
		t.Fatalf("ping with Redis killed: %+v", down)
	}
	t.Logf("with Redis killed: %+v", down)

	rs.Restart()
	deadline := time.Now().Add(time.Minute) // only against a hang
	for s.do("GET", "/readyz", "", "").Code != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("readyz never recovered after Redis restarted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	up := ping()
	if !up.OK || up.LastError == "" || up.LastErrorMS < down.LastErrorMS || up.AtMS < up.LastErrorMS {
		t.Fatalf("ping after the restart: %+v (down: %+v)", up, down)
	}
}
