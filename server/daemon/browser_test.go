package daemon_test

import (
	"bufio"
	"context"
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

// decisionTotals reads weir_decisions_total from /metrics as
// policy → outcome → count.
func decisionTotals(t *testing.T, s *server, token string) map[string]map[string]int64 {
	t.Helper()
	r := s.do("GET", "/metrics", "", token)
	out := map[string]map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(string(r.Body)))
	for sc.Scan() {
		m := decisionLine.FindStringSubmatch(sc.Text())
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
		out[m[2]][m[1]] = int64(v)
	}
	return out
}

// TestDashboardInBrowser opens the dashboard of a `weir serve --token` in
// headless Chromium, enters the token in the page's prompt, sends traffic,
// and checks that the totals the page shows equal /metrics, that every
// policy's chart drew its lines (and the login policy's a non-zero rate),
// that the store section shows decision latency, and that the page
// logged no error (a CSP violation is one). It saves a
// screenshot in $WEIR_ARTIFACTS (default: the test's temporary directory).
func TestDashboardInBrowser(t *testing.T) {
	browser := chromiumPath(t)
	const token = "browser-test-token-0123456789"
	s := start(t, "--token", token)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 1000), chromedp.Flag("disable-gpu", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
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
			if m.Source == "network" && m.URL == s.http+"/dashboard" && strings.Contains(m.Text, "401") {
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

	// Open the page without a token, as a browser would, and enter it.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(s.http+"/dashboard"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#connect")),
	); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	waitPage(t, ctx, "the live stream", `document.getElementById("status").textContent.startsWith("live")`)

	// Traffic: login allows 5 a minute per user, search-shadow counts
	// over-limit decisions as shadow_limited and allows them.
	for i := range 40 {
		for _, body := range []string{`{"policy":"login","key":"alice"}`, `{"policy":"api","key":"k` + strconv.Itoa(i%3) + `"}`, `{"policy":"search-shadow","key":"s"}`} {
			if r := s.do("POST", "/v1/check", body, token); r.Code != 200 {
				t.Fatalf("check %s: %d %s", body, r.Code, r.Body)
			}
		}
	}
	want := decisionTotals(t, s, token)
	if want["login"]["allowed"] != 5 || want["login"]["limited"] != 35 || want["api"]["allowed"] != 40 {
		t.Fatalf("metrics after the traffic: %v", want)
	}

	// The page shows the totals of /metrics, and the charts drew.
	var js strings.Builder
	js.WriteString("(() => { const v = (p, o) => (document.querySelector(`#p-${p} span[data-t=${o}]`) || {}).textContent; return true")
	for p, outs := range want {
		for _, o := range []string{"allowed", "limited", "shadow_limited", "error"} {
			fmt.Fprintf(&js, ` && v(%q, %q) === "%d"`, p, o, outs[o])
		}
	}
	js.WriteString(" })()")
	waitPage(t, ctx, "the totals of /metrics", js.String())
	waitPage(t, ctx, "a non-zero rate on the login chart",
		`(() => { const b = document.getElementById("c-p-login"); return !!b && !b.querySelector("text").textContent.startsWith("max 0.0") &&
			b.querySelector("polyline[data-o=limited]").getAttribute("points").split(" ").length >= 1 })()`)
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
	deadline := time.Now().Add(time.Minute)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("timed out waiting for %s; the page shows:\n%s", what, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
