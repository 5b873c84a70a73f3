package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-go/weir/redisstore/redistest"
	"github.com/weir-go/weir/server/daemon/daemontest"
)

const (
	ovAdmin  = "override-admin-token-0123"
	ovDecide = "override-decide-token-0123"
)

// overrideConfig writes a configuration with plans and tokens.
func overrideConfig(t *testing.T) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "weir.yaml")
	os.WriteFile(cfg, []byte(`server:
  tokens: ["`+ovDecide+`"]
  admin_tokens: ["`+ovAdmin+`"]
plans:
  free: ["2/h"]
  pro: ["1000/h"]
policies:
  api:
    plans: {default: free}
`), 0o600)
	return cfg
}

// runWeir runs the CLI in-process and returns its output and exit status.
func runWeir(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb daemontest.Buffer
	err := Run(context.Background(), args, IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
	code := 0
	if err != nil {
		code = 1
		var ee *ExitError
		if errors.As(err, &ee) {
			code = ee.Code
		}
		return out.String() + err.Error(), code
	}
	return out.String(), code
}

// post sends a JSON body to path on s with a bearer token.
func (s *server) post(t *testing.T, path, body, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", s.HTTP+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// eventually polls cond every 10ms for up to 20s: only for conditions that
// cross a process or network boundary (a generous deadline: the test
// checks the mechanism, not how soon).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// quota peeks at key under policy api on s and returns the deciding
// limit's quota: 2 under free, 1000 under pro.
func (s *server) quota(t *testing.T, key string) float64 {
	t.Helper()
	code, body := s.post(t, "/v1/check", `{"policy":"api","key":"`+key+`","cost":0}`, ovDecide)
	var r struct{ Limit float64 }
	if code != 200 || json.Unmarshal(body, &r) != nil {
		t.Fatalf("peek: %d %s", code, body)
	}
	return r.Limit
}

// TestOverridesAcrossServers sets overrides with the CLI on one of two
// servers sharing a real Redis; the other applies them through its
// refresh (polled on progress with a generous deadline: the mechanism,
// not the 1 s interval, is what is checked), and an expiring boost ends.
func TestOverridesAcrossServers(t *testing.T) {
	addr := redistest.Start(t).Addr
	cfg := overrideConfig(t)
	a := start(t, "--config", cfg, "--store", "redis://"+addr+"/0?deadline=5s")
	b := start(t, "--config", cfg, "--store", "redis://"+addr+"/0?deadline=5s")
	if q := b.quota(t, "acme"); q != 2 {
		t.Fatalf("before: quota %v, want 2 (free)", q)
	}
	out, code := runWeir(t, "override", "set", "--server", a.HTTP, "--token", ovAdmin, "--policy", "api", "--key", "acme", "--plan", "pro", "--reason", "launch", "--by", "test")
	if code != 0 || !strings.Contains(out, `api "acme": plan pro, no end, reason "launch", by test@`) {
		t.Fatalf("override set: %d %s", code, out)
	}
	if q := a.quota(t, "acme"); q != 1000 {
		t.Fatalf("the server that set it: quota %v, want 1000 at once", q)
	}
	eventually(t, "server b to apply the override", func() bool { return b.quota(t, "acme") == 1000 })
	if logs := a.Logs.String(); !strings.Contains(logs, `"msg":"override set","policy":"api","key":"acme","plan":"pro"`) || !strings.Contains(logs, `"reason":"launch","by":"test@127.0.0.1:`) {
		t.Errorf("the change was not logged:\n%s", a.Logs.String())
	}

	// list and get through the other server; delete; b goes back to free.
	out, code = runWeir(t, "override", "list", "--server", b.HTTP, "--token", ovAdmin)
	if code != 0 || !strings.Contains(out, `"acme"`) || !strings.Contains(out, "plan pro") {
		t.Fatalf("override list: %d %s", code, out)
	}
	out, code = runWeir(t, "override", "get", "--server", b.HTTP, "--token", ovAdmin, "--policy", "api", "--key", "acme", "--json")
	var o map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &o) != nil || o["plan"] != "pro" {
		t.Fatalf("override get --json: %d %s", code, out)
	}
	if out, code = runWeir(t, "override", "delete", "--server", b.HTTP, "--token", ovAdmin, "--policy", "api", "--key", "acme", "--reason", "over"); code != 0 {
		t.Fatalf("override delete: %d %s", code, out)
	}
	eventually(t, "server a to drop the override", func() bool { return a.quota(t, "acme") == 2 })

	// A boost with an end: explicit limits for 1s. It ends by itself on
	// both servers, and the store forgets it.
	if out, code = runWeir(t, "override", "set", "--server", a.HTTP, "--token", ovAdmin, "--policy", "api", "--key", "boosted", "--limit", "500/h", "--for", "1s"); code != 0 || !strings.Contains(out, "limits 500/h, until ") {
		t.Fatalf("override set --for: %d %s", code, out)
	}
	eventually(t, "the boost to end on a", func() bool { return a.quota(t, "boosted") == 2 })
	eventually(t, "the boost to end on b", func() bool { return b.quota(t, "boosted") == 2 })
	if out, code = runWeir(t, "override", "get", "--server", a.HTTP, "--token", ovAdmin, "--policy", "api", "--key", "boosted"); code != exitRefused || !strings.Contains(out, "404") {
		t.Fatalf("get after expiry: %d %s, want exit %d and 404", code, out, exitRefused)
	}

	// Refusals: exit 3 from the server, exit 2 for bad usage.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"set", "--token", ovDecide, "--policy", "api", "--key", "k", "--plan", "pro"}, exitRefused, "403"},
		{[]string{"set", "--token", ovAdmin, "--policy", "api", "--key", "k", "--plan", "gold"}, exitRefused, `plan: no plan "gold"`},
		{[]string{"set", "--token", ovAdmin, "--policy", "api", "--key", "k", "--limit", "0/s"}, exitRefused, "limits[0]"},
		{[]string{"set", "--token", ovAdmin, "--policy", "api", "--key", "k"}, exitUsage, "--plan NAME or --limit"},
		{[]string{"set", "--token", ovAdmin, "--policy", "api", "--key", "k", "--plan", "pro", "--limit", "1/s"}, exitUsage, "not both"},
		{[]string{"get", "--token", ovAdmin, "--policy", "api"}, exitUsage, `"key"`},
		{[]string{"list", "--token", ovAdmin, "--nope"}, exitUsage, "unknown flag"},
	} {
		args := append([]string{"override"}, tc.args...)
		args = append(args, "--server", a.HTTP)
		out, code := runWeir(t, args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("weir %s: exit %d %q, want %d containing %q", strings.Join(tc.args, " "), code, out, tc.code, tc.want)
		}
	}
}

// TestOverridesSurviveRestart: with the SQLite store, an override set
// before a restart applies after it.
func TestOverridesSurviveRestart(t *testing.T) {
	cfg := overrideConfig(t)
	store := "sqlite:" + filepath.Join(t.TempDir(), "weir.db")
	s := start(t, "--config", cfg, "--store", store)
	if out, code := runWeir(t, "override", "set", "--server", s.HTTP, "--token", ovAdmin, "--policy", "api", "--key", "acme", "--plan", "pro", "--reason", "kept"); code != 0 {
		t.Fatalf("override set: %d %s", code, out)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s2 := start(t, "--config", cfg, "--store", store)
	if q := s2.quota(t, "acme"); q != 1000 {
		t.Fatalf("after restart: quota %v, want 1000 (pro)", q)
	}
	if out, code := runWeir(t, "override", "list", "--server", s2.HTTP, "--token", ovAdmin, "--policy", "api"); code != 0 || !strings.Contains(out, `reason`) && !strings.Contains(out, "kept") {
		t.Fatalf("override list after restart: %d %s", code, out)
	}
}
