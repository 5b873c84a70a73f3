package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/httpapi"
	"github.com/weir-go/weir/server/metrics"
	"github.com/weir-go/weir/server/service"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDashboard(t *testing.T) {
	svc, m := newService(t, "policies:\n  api: {limits: [\"1/m\"], description: \"<b>bold</b>\"}\n")
	for range 3 {
		svc.Check(context.Background(), &service.Request{Policy: "api", Key: "secret-key", Cost: 1})
	}
	d := New(svc, m, Options{})

	w := httptest.NewRecorder()
	d.ServeHTTP(w, httptest.NewRequest("GET", "/dashboard", nil))
	page := w.Body.String()
	if w.Code != 200 || !strings.Contains(page, `id="p-api"`) || !strings.Contains(page, "&lt;b&gt;bold") {
		t.Errorf("page: %d, escaped description missing:\n%s", w.Code, page)
	}

	// A closed dashboard sends one event and ends the stream.
	d.Close()
	w = httptest.NewRecorder()
	d.ServeHTTP(w, httptest.NewRequest("GET", "/dashboard/events", nil))
	ev := w.Body.String()
	if w.Header().Get("Content-Type") != "text/event-stream" || !strings.HasPrefix(ev, "data: {") ||
		!strings.Contains(ev, `"api":{`) || !strings.Contains(ev, `"allowed":1`) || !strings.Contains(ev, `"limited":2`) {
		t.Errorf("event: %q", ev)
	}
	if strings.Contains(ev, "secret-key") || strings.Contains(page, "secret-key") {
		t.Error("the dashboard shows a caller's key")
	}
}

// newService is a service over a new memory store (closed when the test
// ends) with the configuration yaml, and its metrics.
func newService(t *testing.T, yaml string) (*service.Service, *metrics.Metrics) {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	m := metrics.New()
	svc, err := service.New(store, nil, cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	return svc, m
}

// newTestDashboard returns a dashboard over one policy whose name and
// description must never reach a caller without a token.
func newTestDashboard(t *testing.T) (*Dashboard, *service.Service) {
	t.Helper()
	svc, m := newService(t, "policies:\n  secretpolicy: {limits: [\"2/m\"], description: \"private description\"}\n")
	d := New(svc, m, Options{})
	t.Cleanup(d.Close)
	return d, svc
}

func TestLockedPage(t *testing.T) {
	d, _ := newTestDashboard(t)
	w := httptest.NewRecorder()
	d.ServeLocked(w, httptest.NewRequest("GET", "/dashboard", nil))
	page := w.Body.String()
	if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != `Bearer realm="weir"` {
		t.Errorf("locked page: %d, WWW-Authenticate %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if strings.Contains(page, "secretpolicy") || strings.Contains(page, "private description") || strings.Contains(page, "2/m") {
		t.Errorf("the locked page shows server data:\n%s", page)
	}
	for _, want := range []string{`data-locked="1"`, `id="token"`, `type="password"`} {
		if !strings.Contains(page, want) {
			t.Errorf("locked page lacks %s", want)
		}
	}
	if h := w.Header().Get("Cache-Control"); h != "no-store" {
		t.Errorf("Cache-Control %q", h)
	}
}

// TestPageTokenHandling checks the served page's script for the token
// code path: fetch (EventSource cannot send headers) with an Authorization
// header, the token in sessionStorage only, and the 401 prompt.
func TestPageTokenHandling(t *testing.T) {
	d, _ := newTestDashboard(t)
	w := httptest.NewRecorder()
	d.ServeHTTP(w, httptest.NewRequest("GET", "/dashboard", nil))
	page := w.Body.String()
	if w.Code != 200 || !strings.Contains(page, `id="p-secretpolicy"`) || strings.Contains(page, `data-locked="1"`) {
		t.Fatalf("page: %d\n%s", w.Code, page)
	}
	for _, want := range []string{
		`"Authorization": "Bearer " + token`,
		`sessionStorage.getItem(tokenKey)`,
		`sessionStorage.setItem(tokenKey, token)`,
		`fetch("/dashboard/events", { headers: authHeaders(token)`,
		`fetch("/dashboard/policies", { headers: authHeaders(token)`,
		`r.status === 401`,
		`askToken(`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page script lacks %s", want)
		}
	}
	for _, bad := range []string{"EventSource(", "localStorage", "document.cookie", "?token", "location.search", "console.log", "<form"} {
		if strings.Contains(page, bad) {
			t.Errorf("page script contains %s", bad)
		}
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

func TestPoliciesJSON(t *testing.T) {
	d, _ := newTestDashboard(t)
	w := httptest.NewRecorder()
	d.ServeHTTP(w, httptest.NewRequest("GET", "/dashboard/policies", nil))
	var got struct{ Policies []Policy }
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
		t.Fatalf("%d %s: %v", w.Code, w.Body, err)
	}
	want := []Policy{{Name: "secretpolicy", Limits: []string{"2/m"}, Key: "{key}", OnError: "deny", Description: "private description"}}
	if len(got.Policies) != 1 || got.Policies[0].Name != want[0].Name || !slices.Equal(got.Policies[0].Limits, want[0].Limits) ||
		got.Policies[0].Description != want[0].Description {
		t.Errorf("policies %+v, want %+v", got.Policies, want)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

// TestBehindAuth serves the dashboard through the server's HTTP handler and
// its token check: without a token, the page is the locked one and every
// data request is 401; with one, all is served.
func TestBehindAuth(t *testing.T) {
	d, svc := newTestDashboard(t)
	d.Close() // event streams send one event and end
	for _, tc := range []struct {
		name   string
		tokens []string
		token  string
		page   int  // status of GET /dashboard
		data   int  // status of the data requests
		shows  bool // the page shows the policy
	}{
		{"no token", []string{"tok"}, "", 401, 401, false},
		{"wrong token", []string{"tok"}, "nope", 401, 401, false},
		{"token", []string{"tok"}, "tok", 200, 200, true},
		{"no auth configured", nil, "", 200, 200, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := httpapi.New(httpapi.Options{Service: svc, Auth: service.NewAuth(tc.tokens, nil), Dashboard: d})
			get := func(path string) *httptest.ResponseRecorder {
				r := httptest.NewRequest("GET", path, nil)
				if tc.token != "" {
					r.Header.Set("Authorization", "Bearer "+tc.token)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			for _, path := range []string{"/dashboard", "/dashboard/"} {
				w := get(path)
				if w.Code != tc.page || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") ||
					strings.Contains(w.Body.String(), "secretpolicy") != tc.shows {
					t.Errorf("GET %s: %d %s, shows policy %v, want %d, %v", path, w.Code, w.Header().Get("Content-Type"),
						!tc.shows, tc.page, tc.shows)
				}
			}
			for _, path := range []string{"/dashboard/policies", "/dashboard/events"} {
				w := get(path)
				if w.Code != tc.data {
					t.Errorf("GET %s: %d, want %d", path, w.Code, tc.data)
				}
				if tc.data != 200 && strings.Contains(w.Body.String(), "secretpolicy") {
					t.Errorf("GET %s without a valid token shows the policy", path)
				}
			}
			if tc.data == 200 {
				if w := get("/dashboard/events"); !strings.HasPrefix(w.Body.String(), "data: {") {
					t.Errorf("events: %q", w.Body)
				}
			}
		})
	}
}

// TestPageScript runs the page's script functions under Node.js when it is
// installed (skipped otherwise): splitting the event stream into events,
// including an event cut across reads, and the Authorization header.
func TestPageScript(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	src, err := files.ReadFile("dashboard.html")
	if err != nil {
		t.Fatal(err)
	}
	_, script, ok := strings.Cut(string(src), "<script>")
	script, _, ok2 := strings.Cut(script, "</script>")
	if !ok || !ok2 {
		t.Fatal("no script in dashboard.html")
	}
	check := `
const assert = require("node:assert/strict");
const f = sseFrames('data: {"a":1}\n\ndata: {"b":2}\n\ndata: {"c"');
assert.deepEqual(f.data, ['{"a":1}', '{"b":2}']);
assert.equal(f.rest, 'data: {"c"');
const g = sseFrames(f.rest + ':3}\r\n\r\n');
assert.deepEqual(g.data, ['{"c":3}']);
assert.equal(g.rest, "");
assert.deepEqual(sseFrames(": comment\n\n").data, []);
assert.deepEqual(authHeaders("t0k"), { Authorization: "Bearer t0k" });
assert.deepEqual(authHeaders(""), {});
assert.equal(rate({p: {allowed: 30}}, {p: {allowed: 10}}, 2, "p", "allowed"), "10.0");
console.log("ok");
`
	cmd := exec.CommandContext(t.Context(), node, "-e", script+check)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Errorf("node: %v\n%s", err, out)
	}
}

// TestNamedLimitsShown: a limit's own name is shown beside its numbers,
// in the page and in /dashboard/policies; an unnamed limit shows its
// numbers once.
func TestNamedLimitsShown(t *testing.T) {
	svc, m := newService(t, "policies:\n  api:\n    limits: [\"10/s\", {quota: 10000, period: 1d, algorithm: fixed-window, name: daily}]\n")
	d := New(svc, m, Options{})
	defer d.Close()
	want := []string{"10/s", "daily: 10000/d algo=fixed-window"}

	w := httptest.NewRecorder()
	d.ServeHTTP(w, httptest.NewRequest("GET", "/dashboard", nil))
	if page := w.Body.String(); !strings.Contains(page, "<td>"+want[0]+"<br>"+want[1]+"<br></td>") {
		t.Errorf("page %d lacks the limits %q:\n%s", w.Code, want, page)
	}
	w = httptest.NewRecorder()
	d.ServeHTTP(w, httptest.NewRequest("GET", "/dashboard/policies", nil))
	var got struct{ Policies []Policy }
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || len(got.Policies) != 1 || !slices.Equal(got.Policies[0].Limits, want) {
		t.Errorf("policies %s (%v), want limits %q", w.Body, err, want)
	}
}
