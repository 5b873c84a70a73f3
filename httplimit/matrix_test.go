package httplimit

import (
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir"
)

// The acceptance matrix of the client (issue 17), in fake time: told the
// limit or not × upstream latency 0, 200 ms, 1 s × limits 4 per second
// (40 workers), 100 per second (400 workers) and 10 per minute (40
// workers), through a Pool with the recommended setup (Transport with a
// 30 s Timeout). In every cell the upstream, an exact sliding log, counts
// at least 98% of its limit when told and 95% when not, from its first to
// its last admitted request; no 429 when told, at most 1% when not; every
// job finished once with a 200, none failed by the client's own queue.
func TestClientMatrix(t *testing.T) {
	limits := []struct {
		name    string
		quota   int
		window  time.Duration
		workers int
		jobs    int
	}{
		{"4per1s", 4, time.Second, 40, 200},
		{"100per1s", 100, time.Second, 400, 2000},
		{"10per1m", 10, time.Minute, 40, 100},
	}
	for _, lim := range limits {
		for _, latency := range []time.Duration{0, 200 * time.Millisecond, time.Second} {
			for _, told := range []bool{true, false} {
				name := fmt.Sprintf("%s/latency=%v/told=%v", lim.name, latency, told)
				t.Run(name, func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						up := &upstream{quota: lim.quota, window: lim.window, latency: latency}
						tr := &Transport{Base: &handlerTransport{h: up}, Timeout: 30 * time.Second}
						if told {
							tr.Limit = weir.Per(int64(lim.quota), lim.window)
						}
						ledger := newLedger()
						p := &Pool{Transport: tr, Workers: lim.workers, Done: ledger.record}
						jobs := makeJobs(t, lim.jobs)
						undone, err := p.Run(t.Context(), jobs)
						if err != nil || len(undone) != 0 {
							t.Fatalf("Run: %d undone, %v", len(undone), err)
						}
						verifyNothingLost(t, lim.jobs, ledger, undone, jobs)
						st := p.Stats()
						admitted, limited, _ := up.counts()
						u := up.utilisation()
						t.Logf("utilisation %.2f%%, %d admitted, %d × 429; %v", 100*u, admitted, limited, st)
						if ledger.codes[200] != lim.jobs || st.Failed != 0 {
							t.Fatalf("codes %v, %d failed; want %d × 200", ledger.codes, st.Failed, lim.jobs)
						}
						want := 0.95
						if told {
							want = 0.98
						}
						if u < want {
							t.Errorf("upstream counted %.2f%% of its limit, want >= %.0f%%", 100*u, 100*want)
						}
						if told && limited != 0 {
							t.Errorf("%d × 429 although told the limit", limited)
						}
						if limited*100 > admitted+limited {
							t.Errorf("%d × 429 of %d requests (> 1%%)", limited, admitted+limited)
						}
					})
				})
			}
		}
	}
}

var _ http.Handler = (*upstream)(nil)
