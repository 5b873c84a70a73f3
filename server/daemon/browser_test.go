package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/weir-go/weir/server/dashboard"
)

// chromiumPath returns the headless browser to drive, or skips the test
// when none is installed and WEIR_REQUIRE_BROWSER is unset (CI sets it, so
// there a missing browser fails the test).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("WEIR_REQUIRE_BROWSER") != "" {
		t.Fatal("no chromium on PATH and WEIR_REQUIRE_BROWSER is set (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH: skipping the browser test (set WEIR_REQUIRE_BROWSER=1 to make this a failure)")
	return ""
}

var decisionLine = regexp.MustCompile(`^weir_decisions_total\{outcome="([a-z_]+)",policy="([^"]+)"\} ([0-9.e+]+)$`)

var localLine = regexp.MustCompile(`^weir_local_(blocks|units_taken|units_returned|units_wasted)_total\{policy="([^"]+)"\} ([0-9.e+]+)$`)

// localTotals reads the weir_local_* counters from /metrics as policy →
// field (blocks, taken, returned, wasted) → count.
func localTotals(t *testing.T, s *server, token string) map[string]map[string]int64 {
	return metricTotals(t, s, token, localLine, func(f string) string { return strings.TrimPrefix(f, "units_") })
}

// decisionTotals reads weir_decisions_total from /metrics as
// policy → outcome → count.
func decisionTotals(t *testing.T, s *server, token string) map[string]map[string]int64 {
	return metricTotals(t, s, token, decisionLine, func(o string) string { return o })
}

// metricTotals reads the lines of /metrics that re matches (its groups:
// a name, the policy, the value) as policy → name(name) → value.
func metricTotals(t *testing.T, s *server, token string, re *regexp.Regexp, name func(string) string) map[string]map[string]int64 {
	t.Helper()
	r := s.do("GET", "/metrics", "", token)
	out := map[string]map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(string(r.Body)))
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		if out[m[2]] == nil {
			out[m[2]] = map[string]int64{}
		}
		out[m[2]][name(m[1])] = int64(v)
	}
	return out
}

// pageShows is a JavaScript expression that is true when, for every
// policy p of want and every field f of fields, the element the CSS
// selector template sel (a JavaScript template string of p and f) picks
// shows want[p][f].
func pageShows(sel string, want map[string]map[string]int64, fields ...string) string {
	var js strings.Builder
	js.WriteString("(() => { const v = (p, f) => (document.querySelector(`" + sel + "`) || {}).textContent; return true")
	for p, values := range want {
		for _, f := range fields {
			fmt.Fprintf(&js, ` && v(%q, %q) === "%d"`, p, f, values[f])
		}
	}
	js.WriteString(" })()")
	return js.String()
}

// openDashboard opens the dashboard page without a token, as a browser
// would, enters token in its prompt and waits for the live stream.
func openDashboard(t *testing.T, ctx context.Context, s *server, token, who string) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(s.HTTP+"/dashboard"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#connect")),
	); err != nil {
		t.Fatalf("opening the dashboard with the %s token: %v", who, err)
	}
	waitPage(t, ctx, "the live stream ("+who+" token)", `document.getElementById("status").textContent.startsWith("live")`)
}

// browserConfig is the built-in demo's policies used by the traffic below
// and one with a local: section, for the local-quota table.
const browserConfig = `
policies:
  api:
    limits: ["100/s burst=200", "5000/h algo=sliding-window name=hourly"]
  login:
    description: "5 attempts per minute per user"
    limits: ["5/m algo=sliding-log"]
    key: "login:{key}"
  search-shadow:
    limits: ["10/s"]
    shadow: true
  bulk:
    description: "decided from local blocks"
    limits: ["100000/h algo=fixed-window"]
    local: {hold: 1s}
`

// TestDashboardInBrowser opens the dashboard of a `weir serve --token
// --admin-token` in headless Chromium, enters the admin token in the
// page's prompt, sends traffic (with the decision token), and checks that
// the totals the page shows equal /metrics, that every policy's chart drew
// its lines (and the login policy's a non-zero rate), that the store
// section shows decision latency and the store's last ping, that the
// local-quota table equals /metrics, that the top-keys tables show the
// hot key with the counts of /metrics, and that the page logged no error
// (a CSP violation is one). Then it opens the page in a second tab with
// the decision token: there the top keys are refused and no key appears
// anywhere in the page. It saves a screenshot of the admin's page in
// $WEIR_ARTIFACTS (default: the test's temporary directory).
func TestDashboardInBrowser(t *testing.T) {
	browser := chromiumPath(t)
	const token = "browser-test-token-0123456789"
	const admin = "browser-test-admin-0123456789"
	cfg := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(cfg, []byte(browserConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, "--config", cfg, "--token", token, "--admin-token", admin)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 1000), chromedp.Flag("disable-gpu", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// Up to 5 minutes: checkTopKeys may wait for the top-keys window to
	// empty and try again once (see there).
	ctx, cancelTimeout := context.WithTimeout(ctx, 8*time.Minute)
	defer cancelTimeout()

	// Collect what the page writes to its console (exceptions, console
	// calls, browser log entries such as CSP violations) until the end.
	var mu sync.Mutex
	var pageErrors []string
	var wg sync.WaitGroup
	consoleCtx, stopConsole := context.WithCancel(ctx)
	messages := chromedp.Console(consoleCtx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m, err := range messages {
			if err != nil {
				return
			}
			// The locked page itself is served with status 401 on purpose.
			if m.Source == "network" && m.URL == s.HTTP+"/dashboard" && strings.Contains(m.Text, "401") {
				continue
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				mu.Lock()
				pageErrors = append(pageErrors, fmt.Sprintf("%s (%s %s)", m, m.Source, m.URL))
				mu.Unlock()
			}
		}
	}()
	defer wg.Wait()
	defer stopConsole()

	openDashboard(t, ctx, s, admin, "admin")

	// Traffic: search-shadow counts over-limit decisions as shadow_limited
	// and allows them. login's traffic (5 a minute per user) is sent by
	// checkTopKeys, right before it checks the top keys.
	for i := range 40 {
		for _, body := range []string{`{"policy":"api","key":"k` + strconv.Itoa(i%3) + `"}`, `{"policy":"search-shadow","key":"s"}`, `{"policy":"bulk","key":"b"}`} {
			if r := s.do("POST", "/v1/check", body, token); r.Code != 200 {
				t.Fatalf("check %s: %d %s", body, r.Code, r.Body)
			}
		}
	}
	attempts := checkTopKeys(t, ctx, s, token, admin)
	want := decisionTotals(t, s, token)
	if want["login"]["allowed"] != 5*int64(attempts) || want["login"]["limited"] != 35*int64(attempts) || want["api"]["allowed"] != 40 {
		t.Fatalf("metrics after the traffic (%d attempts at the top keys): %v", attempts, want)
	}

	// The page shows the totals of /metrics, and the charts drew.
	waitPage(t, ctx, "the totals of /metrics", pageShows("#p-${p} span[data-t=${f}]", want, "allowed", "limited", "shadow_limited", "error"))
	waitPage(t, ctx, "a non-zero rate on the login chart",
		`(() => { const b = document.getElementById("c-p-login"); return !!b && !b.querySelector("text").textContent.startsWith("max 0.0") &&
			b.querySelector("polyline[data-o=limited]").getAttribute("points").split(" ").length >= 1 })()`)
	// The local-quota table shows the counters of /metrics. They move
	// after the traffic (a block is given back when its hold ends), so
	// /metrics is read again until the page and it agree.
	deadline := time.Now().Add(time.Minute)
	for {
		local := localTotals(t, s, token)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](pageShows("#l-${p} td[data-l=${f}]", local, "blocks", "taken", "returned", "wasted")))
		if err != nil {
			t.Fatal(err)
		}
		if ok && local["bulk"]["blocks"] >= 1 {
			break
		}
		if time.Now().After(deadline) {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("local").innerText`))
			t.Fatalf("the local-quota table never showed /metrics' %v; it shows:\n%s", local, text)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitPage(t, ctx, "the store's last ping", `document.getElementById("ping-state").textContent === "ok" &&
		/^[0-9.]+ ms$/.test(document.getElementById("ping-latency").textContent) && document.getElementById("ping-store").textContent === "memory"`)
	// The store section shows the latency of the decisions just made.
	waitPage(t, ctx, "the store latency", `/^[0-9.]+ ms$/.test(document.getElementById("store-p50").textContent) &&
		/^[0-9.]+ ms$/.test(document.getElementById("store-p99").textContent) && document.getElementById("store-count").textContent !== "0"`)
	empty, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("tr[id^=p-]")].map(r => r.id.slice(2)).filter(p => {
		const b = document.getElementById("c-p-" + p);
		return !b || [...b.querySelectorAll("polyline")].some(l => !l.getAttribute("points"));
	})`))
	if err != nil {
		t.Fatal(err)
	}
	if len(empty) > 0 {
		t.Errorf("policies without a drawn chart: %v", empty)
	}

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("WEIR_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, "dashboard.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Errorf("the screenshot is not a PNG")
	}

	// A decision token sees the dashboard but no key.
	dctx, cancelTab := chromedp.NewContext(ctx)
	defer cancelTab()
	openDashboard(t, dctx, s, token, "decision")
	waitPage(t, dctx, "the top keys refused (decision token)", `document.getElementById("topkeys-note").textContent.includes("admin tokens only")`)
	waitPage(t, dctx, "the totals (decision token)", `document.querySelector("#p-login span[data-t=limited]").textContent !== "–"`)
	html, err := chromedp.Run(dctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "alice") || strings.Contains(html, "k-login-") {
		t.Errorf("the page of a decision token shows keys:\n%s", html)
	}

	stopConsole()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(pageErrors) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(pageErrors, "\n"))
	}
}

// waitPage polls a JavaScript condition until it holds, for up to a
// minute: the page updates once a second, and a busy machine may be slow.
func waitPage(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	if !pollPage(t, ctx, what, cond, time.Now().Add(time.Minute)) {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("timed out waiting for %s; the page shows:\n%s", what, text)
	}
}

// pollPage polls a JavaScript condition until it holds (true) or the
// deadline passes (false).
func pollPage(t *testing.T, ctx context.Context, what, cond string, deadline time.Time) bool {
	t.Helper()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkTopKeys sends 40 checks of the login policy (5 a minute per user)
// for one user, and checks that the page's top-keys tables show that user
// as login's hot key with every one of those decisions and all its
// denials, their number taken from /metrics (the sketch holds fewer keys
// than its counters, so its counts are exact). It returns the number of
// attempts it took.
//
// The window of the top keys covers the last one to two periods
// (dashboard.TopKeysPeriod), by the server's clock: a decision stays in it
// for at least one period after it is made. So the page must show the
// counts within a period of the first check sent. On a machine so slow
// that it did not, the window may have dropped some of the traffic and the
// counts to expect are unknown: checkTopKeys then waits until the window
// is empty (the server's own count of login's decisions in the window,
// from /dashboard/topkeys, is 0) and tries once more with another user.
// The counts checked are exact in every attempt.
func checkTopKeys(t *testing.T, ctx context.Context, s *server, token, admin string) int {
	t.Helper()
	const attempts = 2
	for attempt := 1; ; attempt++ {
		user := "alice"
		if attempt > 1 {
			user = "alice-" + strconv.Itoa(attempt)
		}
		before := decisionTotals(t, s, token)["login"]
		sent := time.Now()
		for range 40 {
			body := `{"policy":"login","key":"` + user + `"}`
			if r := s.do("POST", "/v1/check", body, token); r.Code != 200 {
				t.Fatalf("check %s: %d %s", body, r.Code, r.Body)
			}
		}
		after := decisionTotals(t, s, token)["login"]
		decisions := after["allowed"] + after["limited"] - before["allowed"] - before["limited"]
		denials := after["limited"] - before["limited"]
		if decisions != 40 || denials != 35 {
			t.Fatalf("login's 40 checks for a new user counted %d decisions and %d denials in /metrics, want 40 and 35", decisions, denials)
		}
		what := fmt.Sprintf("%s as login's top key (%d decisions, %d denials)", user, decisions, denials)
		if pollPage(t, ctx, what, fmt.Sprintf(`(() => {
			const row = (id) => document.querySelector("#" + id + " tr:nth-child(2)");
			const d = row("k-login-decisions"), l = row("k-login-denials");
			return !!d && !!l && d.querySelector("code").textContent === "login:%s" && d.querySelector("[data-k=count]").textContent === "%d" &&
				l.querySelector("code").textContent === "login:%s" && l.querySelector("[data-k=count]").textContent === "%d";
		})()`, user, decisions, user, denials), sent.Add(dashboard.TopKeysPeriod)) {
			return attempt
		}
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("topkeys").innerText`))
		if attempt == attempts {
			t.Fatalf("the page did not show %s within a period of the traffic, %d times; it shows:\n%s", what, attempts, text)
		}
		t.Logf("the page did not show %s within a period of the traffic (a slow machine?); it shows:\n%s\nwaiting for the window to empty to try again", what, text)
		emptyBy := time.Now().Add(3 * dashboard.TopKeysPeriod)
		for {
			var k dashboard.TopKeysJSON
			if r := s.do("GET", "/dashboard/topkeys", "", admin); r.Code != 200 || json.Unmarshal(r.Body, &k) != nil {
				t.Fatalf("GET /dashboard/topkeys: %d %s", r.Code, r.Body)
			}
			if k.Policies["login"].Total == 0 {
				break
			}
			if time.Now().After(emptyBy) {
				t.Fatalf("the top-keys window still counts %d decisions of login 3 periods after them", k.Policies["login"].Total)
			}
			time.Sleep(time.Second)
		}
	}
}
