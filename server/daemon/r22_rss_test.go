package daemon_test

// R22 (shared/reliability-tests.md) against the real program: `weir serve`
// is built with `go build` from cmd/weir and run as a separate OS process,
// so the memory measured is the resident set of the server alone
// (/proc/PID/status VmRSS and VmHWM), not the Go heap of the test binary.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weir-go/weir/server/daemon/daemontest"
)

// rssPerKeyBudget is the documented resident memory per key of the memory
// store inside `weir serve`: docs/server.md measured 87–89 B of RSS per
// key at 1,000,000 keys (VmHWM, GC tuner on) against a target of ≤ 100 B.
// The test's cap allowance is the cap in keys times this budget.
const rssPerKeyBudget = 100

// buildWeir builds cmd/weir into a temporary directory and returns the
// binary's path. The race detector is off: the point is the memory of the
// program as shipped.
func buildWeir(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/PID/status: Linux only")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build cmd/weir")
	}
	bin := filepath.Join(t.TempDir(), "weir")
	cmd := exec.CommandContext(t.Context(), gobin, "build", "-o", bin, "../../cmd/weir")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ../../cmd/weir: %v\n%s", err, out)
	}
	return bin
}

// weirProc is a `weir serve` running as its own OS process.
type weirProc struct {
	cmd    *exec.Cmd
	http   string // base URL
	grpc   string // host:port
	logs   *daemontest.Buffer
	waited chan error
}

// startProc runs `BIN serve --http 127.0.0.1:0 --grpc 127.0.0.1:0 ARGS...`
// with env added to the environment, waits for its banner, and stops it
// with SIGTERM when the test ends.
func startProc(t *testing.T, bin string, env []string, args ...string) *weirProc {
	t.Helper()
	argv := append([]string{"serve", "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--reload-interval", "-1s", "--log-level", "warn"}, args...)
	p := &weirProc{cmd: exec.Command(bin, argv...), logs: &daemontest.Buffer{}, waited: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p.logs
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	banner := make(chan [2]string, 1)
	go func() {
		var httpAddr, grpcAddr string
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 2 && f[0] == "HTTP" {
				httpAddr = f[1]
			}
			if len(f) >= 2 && f[0] == "gRPC" {
				grpcAddr = f[1]
			}
			if httpAddr != "" && grpcAddr != "" {
				banner <- [2]string{httpAddr, grpcAddr}
				httpAddr = ""
			}
		}
		io.Copy(io.Discard, out)
		p.waited <- p.cmd.Wait()
	}()
	stop := func() error {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.waited:
			return err
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			<-p.waited
			return errors.New("no exit 30s after SIGTERM")
		}
	}
	select {
	case a := <-banner:
		p.http, p.grpc = a[0], a[1]
	case err := <-p.waited:
		t.Fatalf("weir serve exited before its banner: %v\nlogs:\n%s", err, p.logs.String())
	case <-time.After(30 * time.Second):
		stop()
		t.Fatalf("no banner after 30s; logs:\n%s", p.logs.String())
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("weir serve: %v\nlogs:\n%s", err, p.logs.String())
		}
	})
	return p
}

// memory returns the process's VmRSS and VmHWM in bytes.
func (p *weirProc) memory() (rss, hwm uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	field := func(name string) (uint64, error) {
		_, rest, ok := bytes.Cut(b, []byte("\n"+name+":"))
		if !ok {
			return 0, fmt.Errorf("/proc/%d/status: no %s", p.cmd.Process.Pid, name)
		}
		line, _, _ := bytes.Cut(rest, []byte("\n"))
		f := strings.Fields(string(line)) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc/%d/status: %s %q", p.cmd.Process.Pid, name, line)
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		return n << 10, err
	}
	if rss, err = field("VmRSS"); err != nil {
		return 0, 0, err
	}
	hwm, err = field("VmHWM")
	return rss, hwm, err
}

// scrape returns the process's /metrics: the number of series (lines that
// are neither comments nor blank), the value of each unlabelled sample by
// name, and the body.
func (p *weirProc) scrape() (int, map[string]float64, string, error) {
	resp, err := http.Get(p.http + "/metrics")
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		return 0, nil, "", fmt.Errorf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	n, vals := 0, map[string]float64{}
	for l := range strings.Lines(string(b)) {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		n++
		if name, v, ok := strings.Cut(l, " "); ok && !strings.Contains(name, "{") {
			if x, err := strconv.ParseFloat(v, 64); err == nil {
				vals[name] = x
			}
		}
	}
	return n, vals, string(b), nil
}

// rssSample is one reading of the server's resident set.
type rssSample struct {
	at   time.Duration // since the flood started
	keys int64         // new keys sent by then
	rss  uint64
}

// R22 with the server's resident set: a flood of new distinct keys in
// 1000-key HTTP batches (40k/s for 12 s, 480k keys, in the short version;
// 10k/s for 60 s, 600k keys, with WEIR_SOAK=1, as R22 says), with 100 hot
// keys (5/s, burst 5) offered 20/s each throughout, against
// `--store memory:?max_keys=CAP` with CAP = 100k flood keys (+100 hot,
// +1000 warm). A flood key's bucket is fresh (so evictable) 10 s (20 s)
// after its one request, so more keys are in use than the cap: the store
// fills (2.5 s; 10 s), refuses new keys with 503 (nothing charged), and
// from 10 s (20 s) on evicts fresh ones to admit more.
//
// GC. The server runs with GOGC=100, which turns the daemon's GC tuner
// (server/daemon/gc.go) off. With the tuner, a server whose live heap is a
// few MiB gets GOGC up to 1000: its heap goal swings between about 20 and
// 40 MiB from one collection to the next (the live heap it divides by
// moves with the requests in flight), and its RSS between about 42 and
// 62 MiB with 1000 keys stored, under this test's warm-up traffic. A full
// 100k-key store is about 6 MiB of RSS (60–66 B per key measured here),
// so under the tuner RSS says little about the store: with the cap
// removed, short runs under the tuner exceeded the bound by 0–6 MiB, or
// not at all (60.6 MiB against 69.9 MiB, flood keys fresh after 8 s).
// With GOGC=100 the RSS follows the live heap, and the short version
// fails clearly without the cap (73 MiB against a 44 MiB bound). The soak also runs the tuner ("gc=tuner"), with the
// baseline taken as the highest warm-up sample (the envelope the tuner
// allows a server with no keys) instead of the median; its flat check
// failed in one soak run of two (45.1 MiB once full, 52.3 MiB at the end,
// after 51.1 MiB in the flood's first seconds): the tuner's swing, which
// the tolerance is not widened to hide (docs/server.md, R22).
//
// Baseline. The flood starts after a warm-up at the flood's request rate
// (the same 1000 warm keys over and over, with the hot traffic): at least
// 2 s and three collections, so the start-up allocations are behind, then
// 2 s more whose samples (every 250 ms) give the baseline: their median.
// VmHWM is then reset (/proc/PID/clear_refs), so that it is the flood's
// peak.
//
// Pass:
//   - bound: every RSS sample, the RSS at the end and the peak (VmHWM,
//     which also covers the instants between samples) ≤ (baseline +
//     cap × 100 B) × 1.2, where cap × 100 B is the cap's allowance:
//     100 B is the RSS per key budget of the memory store in the server
//     (docs/server.md measured 87–89 B per key at 1,000,000 keys;
//     rssPerKeyBudget) and 1.2 the "+20%" of R22;
//   - flat: the samples from the moment the store was first full, or
//     from the first third of the flood (the first 10 s in the soak) if
//     later, are split in two halves by time; the highest sample of the
//     second half is within 10% + 2 MiB + the collector's headroom (its
//     goal minus the heap in use, at the end) of the highest of the first half
//     (2 MiB: the runtime returns freed pages to the OS in the
//     background, so RSS moves by a few MiB without any change in the
//     live heap). A reference taken in one second just after the store
//     filled was too early on a machine at load 20: the GC had not yet
//     run at the full live heap, and RSS then rose 6.5 MiB to its plateau
//     and stayed there. Growth with the keys would show as the second
//     half rising above the first;
//   - the store was full (some batch refused) and evicted (some batch
//     admitted after the first refusal);
//   - each hot key admitted ≤ burst + rate·elapsed + 1 (R01's bound; a
//     reset would add a whole burst) and every hot batch answered 200 (soak only);
//   - the number of metric series does not grow with the keys (≤ +5 from
//     the first scrape after the store was full) and no key is in /metrics.
func TestKeyFloodRSS(t *testing.T) {
	bin := buildWeir(t)
	modes := []struct {
		name     string
		env      []string
		envelope bool
	}{{"gc=GOGC100", []string{"GOGC=100"}, false}}
	if soak() {
		modes = append(modes, struct {
			name     string
			env      []string
			envelope bool
		}{"gc=tuner", nil, true})
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { keyFloodRSS(t, bin, m.env, m.envelope) })
	}
}

// keyFloodRSS runs TestKeyFloodRSS with env added to the server's
// environment. With envelope, the baseline is the highest warm-up sample
// rather than their median (see TestKeyFloodRSS).
func keyFloodRSS(t *testing.T, bin string, env []string, envelope bool) {
	const (
		hotKeys  = 100
		hotRate  = 5
		hotBurst = 5
		batch    = 1000
	)
	capKeys := 100_000
	perSecond := pick(40_000, 10_000)
	floodFor := pick(12*time.Second, 60*time.Second)
	fresh := pick("1/10s burst=1", "1/20s burst=1") // a flood key is fresh 10 s (20 s) after its request
	cfg := writeConfig(t, `
policies:
  hot:
    limits: ["5/s burst=5"]
  warm:
    limits: ["1000/s burst=1000"]
  flood:
    limits: ["`+fresh+`"]
`)
	p := startProc(t, bin, env, "--config", cfg, "--store", fmt.Sprintf("memory:?max_keys=%d", capKeys+hotKeys+batch))
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }

	// Hot traffic: one batch of the 100 hot keys every 50 ms.
	hc := newClient(1)
	defer hc.CloseIdleConnections()
	hot := startHotTraffic(t, hc, p.http, hotKeys)
	defer hot.stop()

	// Sampler: VmRSS every 250 ms from the warm-up to the end of the flood.
	var (
		sent, admitted, refused atomic.Int64
		admittedLate            atomic.Int64 // admitted after the first refusal
		firstRefusal            atomic.Int64 // ns since floodStart, +1; 0: none yet
		samples                 []rssSample  // at: since floodStart (negative in the warm-up)
		sampleErr               error
		sampleMu                sync.Mutex // guards samples
		sampleStop              = make(chan struct{})
		sampleDone              = make(chan struct{})
		floodStart              atomic.Int64 // unix ns; 0 during the warm-up
	)
	t0 := time.Now()
	go func() {
		defer close(sampleDone)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sampleStop:
				return
			case <-tick.C:
			}
			rss, _, err := p.memory()
			if err != nil {
				sampleErr = err
				return
			}
			at := time.Since(t0)
			if fs := floodStart.Load(); fs != 0 {
				at = time.Since(time.Unix(0, fs))
			} else {
				at = -at
			}
			sampleMu.Lock()
			samples = append(samples, rssSample{at, sent.Load(), rss})
			sampleMu.Unlock()
		}
	}()
	stopSampling := sync.OnceFunc(func() { close(sampleStop); <-sampleDone })
	defer stopSampling()

	// Warm-up: the same 1000 warm keys, over and over, at the flood's
	// request rate, until the server has collected garbage three times
	// and 2 s have passed (its start-up heap peak is behind it), then 2 s
	// more whose samples give the baseline (their median).
	wc := newClient(1)
	defer wc.CloseIdleConnections()
	warm := make([]string, batch)
	for i := range warm {
		warm[i] = fmt.Sprintf("warm-%d", i)
	}
	warmBody := batchBody("warm", warm)
	var gcs0 float64
	var steady time.Time
	every := time.Second * batch / time.Duration(perSecond)
	for i := 0; steady.IsZero() || time.Since(steady) < 2*time.Second; i++ {
		time.Sleep(time.Until(t0.Add(time.Duration(i) * every)))
		if r, err := postJSON(context.Background(), wc, p.http+"/v1/check", warmBody); err != nil || r.Code != 200 {
			t.Fatalf("warm batch: %v %d %.300s", err, r.Code, r.Body)
		}
		if !steady.IsZero() || i%10 != 0 {
			continue
		}
		_, vals, _, err := p.scrape()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			gcs0 = vals["go_gc_duration_seconds_count"]
		}
		if gcs := vals["go_gc_duration_seconds_count"]; gcs >= gcs0+3 && time.Since(t0) >= 2*time.Second || time.Since(t0) > 20*time.Second {
			steady = time.Now()
		}
	}
	warmed := time.Since(t0)
	fstart := time.Now()
	floodStart.Store(fstart.UnixNano())
	var base []uint64
	sampleMu.Lock()
	warmSamples := samples[:len(samples):len(samples)]
	sampleMu.Unlock()
	for _, s := range warmSamples {
		if s.at < 0 && -s.at >= steady.Sub(t0) {
			base = append(base, s.rss)
		}
	}
	if len(base) == 0 {
		t.Fatal("no RSS sample in the warm-up")
	}
	slices.Sort(base)
	rss0 := base[len(base)/2]
	if envelope {
		rss0 = base[len(base)-1]
	}
	// Reset VmHWM (Linux ≥ 4.0), so that it is the peak of the flood.
	hwmReset := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0) == nil
	_, vals0, _, _ := p.scrape()
	t.Logf("R22 RSS: baseline after %v warm-up (%v steady): VmRSS %.1f MiB from %d samples (%.1f..%.1f), heap in use %.1f MiB, next GC %.1f MiB, %v GCs",
		warmed.Round(time.Millisecond), time.Since(steady).Round(time.Millisecond), mib(rss0), len(base), mib(base[0]), mib(base[len(base)-1]),
		vals0["go_memstats_heap_inuse_bytes"]/(1<<20), vals0["go_memstats_next_gc_bytes"]/(1<<20), vals0["go_gc_duration_seconds_count"])

	// Flood: batches of new keys from two clients, paced to perSecond.
	fc := newClient(2)
	defer fc.CloseIdleConnections()
	total := int(floodFor.Seconds() * float64(perSecond))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for w := range 2 {
		wg.Go(func() {
			for {
				first := int(sent.Add(batch)) - batch
				if first >= total {
					sent.Add(-batch)
					return
				}
				time.Sleep(time.Until(fstart.Add(time.Duration(first) * time.Second / time.Duration(perSecond))))
				keys := make([]string, batch)
				for j := range keys {
					keys[j] = fmt.Sprintf("flood-%d", first+j)
				}
				r, err := postJSON(context.Background(), fc, p.http+"/v1/check", batchBody("flood", keys))
				switch {
				case err != nil:
				case r.Code == http.StatusServiceUnavailable && bytes.Contains(r.Body, []byte(`"unavailable"`)):
					refused.Add(1)
					firstRefusal.CompareAndSwap(0, int64(time.Since(fstart))+1)
				case r.Code != 200:
					err = fmt.Errorf("flood batch at key %d: %d %.300s", first, r.Code, r.Body)
				case bytes.Count(r.Body, []byte(`"allowed":true`)) != batch:
					err = fmt.Errorf("flood batch at key %d: a new key was not admitted: %.300s", first, r.Body)
				default:
					admitted.Add(1)
					if firstRefusal.Load() != 0 {
						admittedLate.Add(1)
					}
				}
				if err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	// A scrape once the store is full (and 503s have been counted) is the
	// reference for the series count. It waits on the flood's progress, not
	// on the clock: a busy machine sends the keys later than planned.
	var series0 int
	for series0 == 0 && sent.Load() < int64(total) {
		if firstRefusal.Load() != 0 {
			var err error
			if series0, _, _, err = p.scrape(); err != nil {
				t.Error(err)
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	floodTime := time.Since(fstart)
	stopSampling()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if sampleErr != nil {
		t.Fatal(sampleErr)
	}
	rss1, hwm1, err := p.memory()
	if err != nil {
		t.Fatal(err)
	}
	series1, vals1, body, err := p.scrape()
	if err != nil {
		t.Fatal(err)
	}
	hot.stop()
	if hot.err != nil {
		t.Fatalf("hot traffic: %v", hot.err)
	}

	// Store full and evicting.
	fr := time.Duration(firstRefusal.Load() - 1)
	t.Logf("R22 RSS: %d new keys in %v (%.0f/s), cap %d: %d batches admitted (%d after the first refusal), %d refused (store full; first at %v)",
		sent.Load(), floodTime.Round(time.Millisecond), float64(sent.Load())/floodTime.Seconds(), capKeys,
		admitted.Load(), admittedLate.Load(), refused.Load(), fr.Round(time.Millisecond))
	if refused.Load() == 0 {
		t.Fatalf("no flood batch refused: the store never reached its cap of %d keys", capKeys)
	}

	// Bound.
	allowance := uint64(capKeys) * rssPerKeyBudget
	bound := (rss0 + allowance) * 12 / 10
	// Flat: the highest sample of the first half of the samples after
	// the store was full (or after the first third of the flood, if
	// later) against the highest of the second half (one sample would be
	// whatever point of its cycle the GC was at).
	from := max(fr, pick(floodFor/3, 10*time.Second))
	var last time.Duration
	for _, s := range samples {
		last = max(last, s.at)
	}
	mid := from + (last-from)/2
	var ref, peak *rssSample // highest of the first half, of the second
	var line []string
	var most uint64
	for i := range samples {
		s := &samples[i]
		if s.at < 0 {
			continue
		}
		most = max(most, s.rss)
		if s.at > from && s.at <= mid && (ref == nil || s.rss > ref.rss) {
			ref = s
		}
		if s.at > mid && (peak == nil || s.rss > peak.rss) {
			peak = s
		}
		if i%2 == 1 {
			line = append(line, fmt.Sprintf("%.0fs/%dk:%.1f", s.at.Seconds(), s.keys/1000, mib(s.rss)))
		}
	}
	t.Logf("R22 RSS: samples (time/keys sent:MiB) %s", strings.Join(line, " "))
	t.Logf("R22 RSS: end VmRSS %.1f MiB, max sample %.1f MiB, VmHWM %.1f MiB, heap in use %.1f MiB, next GC %.1f MiB; bound (%.1f + %d keys × %d B) × 1.2 = %.1f MiB",
		mib(rss1), mib(most), mib(hwm1), vals1["go_memstats_heap_inuse_bytes"]/(1<<20), vals1["go_memstats_next_gc_bytes"]/(1<<20),
		mib(rss0), capKeys, rssPerKeyBudget, mib(bound))
	if !hwmReset {
		hwm1 = 0 // VmHWM still holds the start-up peak: not a flood figure
		t.Log("R22 RSS: could not reset VmHWM (/proc/PID/clear_refs); checking the samples only")
	}
	if most > bound || rss1 > bound || hwm1 > bound {
		t.Errorf("RSS exceeded (baseline + cap allowance) × 1.2 = %.1f MiB: max sample %.1f, end %.1f, VmHWM %.1f MiB",
			mib(bound), mib(most), mib(rss1), mib(hwm1))
	}

	// Flat.
	if ref == nil || peak == nil {
		t.Fatal("too few RSS samples after the store was full")
	}
	t.Logf("R22 RSS: reference %.1f MiB at %v (first half after full): %.0f B per capped key above the baseline; second half's highest %.1f MiB at %v",
		mib(ref.rss), ref.at.Round(time.Millisecond), (float64(ref.rss)-float64(rss0))/float64(capKeys), mib(peak.rss), peak.at.Round(time.Millisecond))
	// Garbage up to the collector's goal is not growth: a cycle that
	// runs late (a busy machine starves its background workers) lets the
	// heap, and so RSS, step up by as much as the goal is above what is
	// in use, once. Growth with the keys sent would exceed that too, and
	// the bound above holds whatever the slack.
	headroom := uint64(max(vals1["go_memstats_next_gc_bytes"]-vals1["go_memstats_heap_inuse_bytes"], 0))
	if flat := ref.rss + ref.rss/10 + 2<<20 + headroom; peak.rss > flat {
		t.Errorf("RSS not flat once the store was full: %.1f MiB at %v (%d keys sent), above the first half's highest %.1f MiB at %v by more than 10%% + 2 MiB + the collector's headroom (%.1f MiB)",
			mib(peak.rss), peak.at.Round(time.Millisecond), peak.keys, mib(ref.rss), ref.at.Round(time.Millisecond), mib(headroom))
	}
	if admittedLate.Load() == 0 {
		t.Error("no flood batch admitted after the first refusal: the store did not evict fresh keys")
	}

	// Hot keys never reset.
	elapsed, least, most2, hotBound := hot.check(t, hotBurst, hotRate)
	t.Logf("R22 RSS: hot keys: %d batches in %.2fs, admitted %d..%d per key (bound %d)", hot.sent, elapsed, least, most2, hotBound)

	// Metric series.
	t.Logf("R22 RSS: metric series %d once full, %d at the end", series0, series1)
	if series0 == 0 {
		t.Error("no /metrics scrape once the store was full")
	} else if series1 > series0+5 {
		t.Errorf("metric series grew from %d to %d with the keys", series0, series1)
	}
	if strings.Contains(body, "flood-") || strings.Contains(body, "hot-") || strings.Contains(body, "warm-") {
		t.Error("/metrics names a caller's key")
	}
}
