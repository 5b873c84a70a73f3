package httplimit

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir"
)

// Pool.Report receives the statistics every ReportEvery while Run works
// and once when it returns, in order, the last with every job done; a
// negative period is a *FieldError.
func TestPoolReport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{quota: 4, window: time.Second, latency: 200 * time.Millisecond}
		tr := &Transport{Base: &handlerTransport{h: up}, Limit: weir.PerSecond(4), Timeout: 30 * time.Second}
		var got []Stats
		p := &Pool{Transport: tr, Workers: 10, ReportEvery: 10 * time.Second, Report: func(s Stats) { got = append(got, s) }}
		if _, err := p.Run(t.Context(), makeJobs(t, 100)); err != nil {
			t.Fatal(err)
		}
		// 100 jobs at 4/s take about 25 s: reports at 10 s, 20 s, and the end.
		if len(got) != 3 {
			t.Fatalf("%d reports, want 3: %v", len(got), got)
		}
		for i, s := range got {
			t.Logf("report %d: %v", i, s)
			if i > 0 && (s.Done < got[i-1].Done || s.Elapsed <= got[i-1].Elapsed) {
				t.Fatalf("report %d went back: %v after %v", i, s, got[i-1])
			}
		}
		if last := got[2]; last.Done != 100 || last.OK != 100 || last.InFlight != 0 || last.Queued != 0 || last.Limit != 4 || last.Rate <= 0 {
			t.Fatalf("last report %+v", last)
		}
		if got[0].Done == 0 || got[0].Done == 100 {
			t.Fatalf("first report at 10 s: %v", got[0])
		}
		bad := &Pool{Transport: tr, ReportEvery: -time.Second, Report: func(Stats) {}}
		var fe *weir.FieldError
		if _, err := bad.Run(t.Context(), makeJobs(t, 1)); !errors.As(err, &fe) || fe.Field != "Pool.ReportEvery" {
			t.Fatalf("negative ReportEvery: %v", err)
		}
	})
}
