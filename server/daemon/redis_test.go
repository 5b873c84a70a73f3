package daemon_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-go/weir/redisstore/redistest"
)

// Several `weir serve` processes sharing one Redis enforce one limit: a
// policy of 100/s with bursts of 100, driven by 8 clients across 3 servers,
// admits at most 100 + 100·T in T seconds. T is at least 2 s (20 s with
// WEIR_SOAK=1) and lasts until 100 requests were denied, so that the load
// exceeded the limit however slowly a busy machine served it. At least the
// burst is admitted; that admissions track the rate (>= 80% of 100·T) is a
// real-clock figure, checked under WEIR_SOAK=1 only.
func TestSharedRedis(t *testing.T) {
	addr := redistest.Start(t).Addr
	cfg := filepath.Join(t.TempDir(), "weir.yaml")
	os.WriteFile(cfg, []byte("policies:\n  shared:\n    limits: [\"100/s burst=100\"]\n"), 0o600)
	var servers []*server
	for range 3 {
		servers = append(servers, start(t, "--config", cfg, "--store", "redis://"+addr+"/0?deadline=5s"))
	}
	dur := 2 * time.Second
	if os.Getenv("WEIR_SOAK") == "1" {
		dur = 20 * time.Second
	}
	var admitted, denied atomic.Int64
	var wg sync.WaitGroup
	begin := time.Now()
	hang := begin.Add(2 * time.Minute) // only against a hang
	running := func() bool {
		return (time.Since(begin) < dur || denied.Load() < 100) && time.Now().Before(hang)
	}
	for c := range 8 {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			url := servers[c%3].HTTP + "/v1/check"
			body := []byte(`{"policy":"shared","key":"global"}`)
			for running() {
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case bytes.Contains(b, []byte(`"allowed":true`)):
					admitted.Add(1)
				case bytes.Contains(b, []byte(`"allowed":false`)):
					denied.Add(1)
				default:
					t.Errorf("answer %d %s", resp.StatusCode, b)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(begin).Seconds()
	bound := 100 + 100*elapsed
	t.Logf("%d admitted, %d denied in %.2fs across 3 servers (bound %.0f)", admitted.Load(), denied.Load(), elapsed, bound)
	if float64(admitted.Load()) > bound {
		t.Errorf("admitted %d > 100 + 100·%.2fs = %.0f", admitted.Load(), elapsed, bound)
	}
	if denied.Load() < 100 {
		t.Errorf("%d denied in 2 minutes: the load did not exceed the limit, so the test proves nothing", denied.Load())
	}
	// The bucket starts full: at least the burst goes through.
	if got := admitted.Load(); got < 100 {
		t.Errorf("admitted only %d, less than the burst of 100: the limiter is starving callers", got)
	}
	// Admissions track the rate: a real-clock figure.
	if os.Getenv("WEIR_SOAK") == "1" && float64(admitted.Load()) < 100*elapsed*0.8 {
		t.Errorf("admitted %d, want about %.0f", admitted.Load(), 100*elapsed)
	}
}
