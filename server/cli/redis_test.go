package cli

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
// admits at most 100 + 100·T in T seconds. T is 2 s by default and 20 s
// with WEIR_SOAK=1.
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
	for c := range 8 {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			url := servers[c%3].http + "/v1/check"
			body := []byte(`{"policy":"shared","key":"global"}`)
			for time.Since(begin) < dur {
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
	if denied.Load() == 0 {
		t.Error("nothing was denied: the load did not exceed the limit, so the test proves nothing")
	}
	// The limit was shared, not per server: far more than one server's
	// burst was denied, and admissions track the rate.
	if float64(admitted.Load()) < 100*dur.Seconds()*0.8 {
		t.Errorf("admitted %d, want about %.0f", admitted.Load(), 100*elapsed)
	}
}
