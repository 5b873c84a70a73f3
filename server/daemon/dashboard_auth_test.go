package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDashboardAuth drives the dashboard of a `weir serve --token` end to
// end: a browser opening /dashboard without a token gets the page with no
// server data (401), which asks for a token; every data request (the
// policies and the event stream) is 401 without a valid token and served
// with a decision or admin token; the token never appears in the logs.
func TestDashboardAuth(t *testing.T) {
	const user, admin = "dash-decision-token-0123456789", "dash-admin-token-0123456789ab"
	s := start(t, "--token", user, "--admin-token", admin)

	var list struct {
		Policies []struct{ Name, Description string }
	}
	if err := json.Unmarshal(s.do("GET", "/v1/policies", "", user).Body, &list); err != nil || len(list.Policies) == 0 {
		t.Fatalf("/v1/policies: %v %+v", err, list)
	}
	var names []string
	for _, p := range list.Policies {
		names = append(names, p.Name)
	}

	// The page without a token: 401, HTML, the token prompt, no data.
	for _, tok := range []string{"", "wrong-token-0123456789"} {
		for _, path := range []string{"/dashboard", "/dashboard/"} {
			r := s.do("GET", path, "", tok)
			page := string(r.Body)
			if r.Code != http.StatusUnauthorized || !strings.HasPrefix(r.Hdr.Get("Content-Type"), "text/html") ||
				r.Hdr.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s with token %q: %d %q", path, tok, r.Code, r.Hdr.Get("Content-Type"))
			}
			if !strings.Contains(page, `data-locked="1"`) || !strings.Contains(page, `id="token"`) ||
				!strings.Contains(page, `"Authorization": "Bearer " + token`) {
				t.Errorf("GET %s with token %q: not the locked page with the token prompt", path, tok)
			}
			for _, p := range list.Policies {
				if strings.Contains(page, `id="p-`+p.Name+`"`) || strings.Contains(page, p.Description) {
					t.Errorf("GET %s with token %q shows policy %s", path, tok, p.Name)
				}
			}
		}
	}

	// The page with a token: 200 with the policies.
	for _, tok := range []string{user, admin} {
		r := s.do("GET", "/dashboard", "", tok)
		if r.Code != 200 || !strings.Contains(string(r.Body), `id="p-`+names[0]+`"`) || strings.Contains(string(r.Body), `data-locked="1"`) {
			t.Errorf("GET /dashboard with a token: %d", r.Code)
		}
	}

	// The policies, as the page loads them.
	for _, tc := range []struct {
		token string
		code  int
	}{{"", 401}, {"wrong-token-0123456789", 401}, {user, 200}, {admin, 200}} {
		r := s.do("GET", "/dashboard/policies", "", tc.token)
		if r.Code != tc.code {
			t.Errorf("GET /dashboard/policies with token %q: %d, want %d", tc.token, r.Code, tc.code)
			continue
		}
		if tc.code != 200 {
			if r.json(t)["error"] == nil {
				t.Errorf("401 body %s", r.Body)
			}
			continue
		}
		var got struct{ Policies []struct{ Name string } }
		if err := json.Unmarshal(r.Body, &got); err != nil {
			t.Fatal(err)
		}
		var gotNames []string
		for _, p := range got.Policies {
			gotNames = append(gotNames, p.Name)
		}
		if !slices.Equal(gotNames, names) {
			t.Errorf("/dashboard/policies lists %v, /v1/policies %v", gotNames, names)
		}
	}

	// The event stream: 401 without a token; one event with one.
	for _, tc := range []struct {
		token string
		code  int
	}{{"", 401}, {"wrong-token-0123456789", 401}, {user, 200}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", s.HTTP+"/dashboard/events", nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if resp.StatusCode != tc.code {
			t.Errorf("GET /dashboard/events with token %q: %d, want %d", tc.token, resp.StatusCode, tc.code)
		} else if tc.code == 200 {
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, `data: {"time_ms":`) || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Errorf("first event: %q %v", line, err)
			}
		}
		resp.Body.Close()
		cancel()
	}

	for _, tok := range []string{user, admin} {
		if strings.Contains(s.Logs.String(), tok) || strings.Contains(s.Out.String(), tok) {
			t.Error("a token appears in the server's output")
		}
	}
}

// pageHarness runs the dashboard page's script under Node.js with a small
// stand-in for the DOM and sessionStorage, against a real server: fetch is
// Node's own, only prefixed with the server's address. It plays a user who
// opens the locked page, enters a wrong token, then the right one, and then
// forgets it, and prints "ok" when every step did what it should.
const pageHarness = `
const fs = require("node:fs"), vm = require("node:vm"), assert = require("node:assert/strict");
const base = process.env.WEIR_URL, good = process.env.WEIR_TOKEN;
const seen = [];
const realFetch = globalThis.fetch;
globalThis.fetch = (url, opts) => {
  seen.push({ url, auth: (opts && opts.headers && opts.headers.Authorization) || "" });
  return realFetch(base + url, opts);
};
const kv = new Map();
globalThis.sessionStorage = {
  getItem: (k) => kv.has(k) ? kv.get(k) : null,
  setItem: (k, v) => kv.set(k, String(v)),
  removeItem: (k) => kv.delete(k),
};
class El {
  constructor(tag) { Object.assign(this, { tagName: tag, textContent: "", hidden: false, value: "", className: "", id: "", dataset: {}, children: [], rows: [], cells: [], on: {} }); }
  addEventListener(t, f) { (this.on[t] = this.on[t] || []).push(f); }
  fire(t, e) { for (const f of this.on[t] || []) f(e || {}); }
  focus() {}
  appendChild(c) { this.children.push(c); return c; }
  append(s) { this.children.push(s); }
  replaceChildren() { this.children = []; }
  setAttribute(k, v) { this.attrs = this.attrs || {}; this.attrs[k] = String(v); }
  getAttribute(k) { return (this.attrs || {})[k]; }
  insertRow() { const r = new El("tr"); this.rows.push(r); return r; }
  deleteRow(i) { this.rows.splice(i, 1); }
  insertCell() { const c = new El("td"); this.cells.push(c); return c; }
  *walk() { for (const c of [...this.rows, ...this.cells, ...this.children]) if (c instanceof El) { yield c; yield* c.walk(); } }
  querySelectorAll(sel) {
    const m = { "td[data-o]": (e) => e.tagName === "td" && e.dataset.o !== undefined, "span[data-t]": (e) => e.tagName === "span" && e.dataset.t !== undefined,
      "polyline": (e) => e.tagName === "polyline" }[sel];
    assert.ok(m, "selector " + sel);
    return [...this.walk()].filter(m);
  }
  querySelector(tag) { assert.ok(/^[a-z]+$/.test(tag), "selector " + tag); return [...this.walk()].find((e) => e.tagName === tag); }
}
const els = {};
for (const id of ["auth", "auth-msg", "token", "connect", "forget", "status", "policies", "envoy", "charts", "store-p50", "store-p99", "store-count", "failures",
  "ping-store", "ping-state", "ping-latency", "ping-at", "ping-error", "ping-error-at", "local", "topkeys", "topkeys-note", "topkeys-window"]) els[id] = new El("x");
els.failures.rows.push(new El("tr"));
els.local.rows.push(new El("tr"));
els.policies.rows.push(new El("tr")); // header rows
els.envoy.rows.push(new El("tr"));
globalThis.document = {
  body: { dataset: { locked: process.env.WEIR_LOCKED } },
  getElementById: (id) => els[id] || [...els.charts.walk()].find((e) => e.id === id),
  createElement: (tag) => new El(tag),
  createElementNS: (ns, tag) => new El(tag),
  querySelectorAll: (sel) => { assert.equal(sel, "tr[id^=p-]"); return els.policies.rows.filter((r) => r.id.startsWith("p-")); },
};
const until = async (what, cond) => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(cond(), "timed out waiting for " + what + "; status: " + els.status.textContent + "; auth: " + els["auth-msg"].textContent);
};
(async () => {
  vm.runInThisContext(fs.readFileSync(process.env.WEIR_SCRIPT, "utf8"));
  // Locked page, no token: the prompt, and no request sent.
  assert.equal(els.auth.hidden, false);
  assert.equal(els.status.textContent, "waiting for a token");
  assert.equal(seen.length, 0);
  // A wrong token: rejected, prompt again.
  els.token.value = "wrong-token-0123456789";
  els.connect.fire("click");
  await until("the rejection", () => els["auth-msg"].textContent === "The server rejected this token.");
  assert.equal(els.auth.hidden, false);
  // The right token: policies, then live counters.
  els.token.value = good;
  els.connect.fire("click");
  await until("live counters", () => els.status.textContent.startsWith("live, updated"));
  assert.equal(els.token.value, "", "the token stays in the input");
  assert.equal(els.auth.hidden, true);
  assert.equal(sessionStorage.getItem("weir-dashboard-token"), good);
  const names = els.policies.rows.filter((r) => r.id).map((r) => r.id.slice(2));
  assert.deepEqual(names, JSON.parse(process.env.WEIR_POLICIES));
  const after = seen.slice(0, 5);
  assert.deepEqual(after.map((s) => s.url), ["/dashboard/policies", "/dashboard/policies", "/dashboard/history", "/dashboard/events", "/dashboard/topkeys"]);
  assert.deepEqual(after.map((s) => s.auth), ["Bearer wrong-token-0123456789", "Bearer " + good, "Bearer " + good, "Bearer " + good, "Bearer " + good]);
  for (const s of seen.slice(5)) assert.ok(s.url === "/dashboard/topkeys" && s.auth === "Bearer " + good, "then only top keys: " + s.url);
  // A decision token gets no keys: the page says they need an admin token.
  await until("the top keys refused", () => els["topkeys-note"].textContent.includes("admin tokens only"));
  assert.equal(els.topkeys.children.length, 0);
  // The store's last ping shows.
  await until("the store ping", () => els["ping-state"].textContent === "ok" && els["ping-store"].textContent === "memory");
  for (const s of seen) assert.ok(!s.url.includes(good) && !s.url.includes("token"), "a token in a URL: " + s.url);
  // A second event fills in the rates.
  await until("a rate", () => els.policies.rows[1].cells.some((c) => c.dataset.o === "allowed" && c.textContent !== "–"));
  // The rates feed a chart per policy, a line per outcome.
  await until("the charts", () => names.every((n) => { const b = document.getElementById("c-p-" + n); return b && b.querySelectorAll("polyline").length === 4; }));
  // Forget: the stream stops and the token is gone.
  els.forget.fire("click");
  assert.equal(sessionStorage.getItem("weir-dashboard-token"), null);
  assert.equal(els["auth-msg"].textContent, "Token forgotten.");
  const n = seen.length;
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(seen.length, n, "requests after the token was forgotten: " + JSON.stringify(seen.slice(n)));
  console.log("ok");
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
`

// TestDashboardPageScript runs the script of the page that the server
// serves under Node.js (skipped when node is not installed) through the
// token flow against a `weir serve --token`: see pageHarness.
func TestDashboardPageScript(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	const user = "dash-script-token-0123456789"
	s := start(t, "--token", user)
	r := s.do("GET", "/dashboard", "", "")
	_, script, ok := strings.Cut(string(r.Body), "<script>")
	script, _, ok2 := strings.Cut(script, "</script>")
	if r.Code != 401 || !ok || !ok2 {
		t.Fatalf("locked page: %d, script found %v %v", r.Code, ok, ok2)
	}
	var list struct {
		Policies []struct{ Name string }
	}
	if err := json.Unmarshal(s.do("GET", "/v1/policies", "", user).Body, &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list.Policies {
		names = append(names, p.Name)
	}
	policies, _ := json.Marshal(names)
	dir := t.TempDir()
	path := filepath.Join(dir, "page.js")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "-e", pageHarness)
	cmd.Env = append(os.Environ(), "WEIR_URL="+s.HTTP, "WEIR_TOKEN="+user, "WEIR_LOCKED=1", "WEIR_SCRIPT="+path, "WEIR_POLICIES="+string(policies))
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Errorf("node: %v\n%s", err, out)
	}
}
