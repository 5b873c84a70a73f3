package daemon_test

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/weir-go/weir/redisstore/redistest"
)

var storeReadyRe = regexp.MustCompile(`(?m)^weir_store_ready (\S+)$`)

// storeReady returns the value of weir_store_ready from /metrics.
func (s *server) storeReady(token string) string {
	s.t.Helper()
	r := s.do("GET", "/metrics", "", token)
	if r.Code != http.StatusOK {
		s.t.Fatalf("/metrics: %d %s", r.Code, r.Body)
	}
	m := storeReadyRe.FindSubmatch(r.Body)
	if m == nil {
		s.t.Fatalf("/metrics has no weir_store_ready line")
	}
	return string(m[1])
}

// weir_store_ready follows the store: 1 while Redis answers, 0 once it is
// stopped (SIGSTOP) or gone (SIGKILL), back to 1 when it returns, while
// weir_ready stays 1 throughout. Phases wait on the metric (eventually), not
// on wall time.
func TestStoreReadyMetric(t *testing.T) {
	rs := redistest.Start(t)
	cfg := filepath.Join(t.TempDir(), "weir.yaml")
	os.WriteFile(cfg, []byte("policies:\n  p:\n    limits: [\"100/s\"]\n"), 0o600)
	s := start(t, "--config", cfg, "--store", "redis://"+rs.Addr+"/0?deadline=100ms")
	if got := s.storeReady(""); got != "1" {
		t.Fatalf("weir_store_ready = %s with Redis running, want 1", got)
	}
	rs.Pause()
	eventually(t, "weir_store_ready 0 with Redis stopped", func() bool { return s.storeReady("") == "0" })
	if r := s.do("GET", "/metrics", "", ""); !strings.Contains(string(r.Body), "\nweir_ready 1\n") {
		t.Errorf("weir_ready is not 1 while the server runs with its store down")
	}
	rs.Resume()
	eventually(t, "weir_store_ready 1 after Redis resumed", func() bool { return s.storeReady("") == "1" })
	rs.Kill()
	eventually(t, "weir_store_ready 0 with Redis killed", func() bool { return s.storeReady("") == "0" })
	rs.Restart()
	eventually(t, "weir_store_ready 1 after Redis restarted", func() bool { return s.storeReady("") == "1" })
}

// --metrics-token protects /metrics: a metrics or admin token reads it; no
// token, a wrong one or a decision token get 401 in the API's error shape.
// Without metrics tokens /metrics stays open even when the API has tokens.
func TestMetricsToken(t *testing.T) {
	const decide, admin, scrape = "decide-token-0123456789", "admin-token-0123456789", "scrape-token-0123456789"
	s := start(t, "--token", decide, "--admin-token", admin, "--metrics-token", scrape)
	for _, c := range []struct {
		token string
		want  int
	}{
		{"", http.StatusUnauthorized},
		{"wrong-token-0123456789", http.StatusUnauthorized},
		{decide, http.StatusUnauthorized},
		{scrape, http.StatusOK},
		{admin, http.StatusOK},
	} {
		r := s.do("GET", "/metrics", "", c.token)
		if r.Code != c.want {
			t.Errorf("/metrics with token %q: %d, want %d", c.token, r.Code, c.want)
		}
		if c.want == http.StatusUnauthorized {
			if m := r.json(t); m["error"] == nil || !strings.HasSuffix(string(r.Body), "\n") {
				t.Errorf("401 body %q: want the {\"error\":{...}} shape ending in a newline", r.Body)
			}
			if strings.Contains(string(r.Body), "weir_decisions_total") {
				t.Errorf("401 body leaks metrics")
			}
		}
	}
	// The scrape token does not open the decision API.
	if r := s.do("POST", "/v1/check", `{"policy":"api","key":"k"}`, scrape); r.Code != http.StatusUnauthorized {
		t.Errorf("check with the metrics token: %d, want 401", r.Code)
	}

	open := start(t, "--token", decide)
	if r := open.do("GET", "/metrics", "", ""); r.Code != http.StatusOK {
		t.Errorf("/metrics without metrics tokens: %d, want 200 (open by default)", r.Code)
	}
}

// Every JSON answer of the HTTP listener ends with a newline, errors and
// the dashboard's data included.
func TestJSONBodiesEndWithNewline(t *testing.T) {
	s := start(t)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/policies", ""},
		{"GET", "/dashboard/policies", ""},
		{"POST", "/v1/check", `{"policy":"api","key":"k"}`},
		{"POST", "/v1/check", `{"policy":"api","key":"k","key":"j"}`},
		{"GET", "/v1/nope", ""},
		{"PUT", "/v1/check", ""},
	} {
		r := s.do(c.method, c.path, c.body, "")
		if !strings.HasSuffix(string(r.Body), "}\n") {
			t.Errorf("%s %s: %d %q does not end with }\\n", c.method, c.path, r.Code, r.Body)
		}
	}
}
