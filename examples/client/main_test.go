package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// inProcess sends requests straight to a handler: no sockets, so the
// whole demo runs in a synctest bubble.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	r := req.Clone(req.Context())
	r.RemoteAddr = "192.0.2.1:1"
	if r.Body == nil {
		r.Body = http.NoBody
	}
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	resp := w.Result()
	resp.Request = req
	return resp, nil
}

// The recommended setup against the API (an exact sliding log of 4
// per second, 200 ms to answer), 40 workers, 200 jobs, told and not told:
// the API's limit is filled (98% told, 95% not), no 429 when told, at most
// 1% when not, no job failed or lost.
func TestDemo(t *testing.T) {
	for _, tt := range []struct {
		name    string
		rate    int64
		minUtil float64
	}{
		{"told", 4, 0.98},
		{"learnt", 0, 0.95},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api, err := newAPI(4, 200*time.Millisecond)
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				cfg := config{jobs: 200, workers: 40, rate: tt.rate, serverRate: 4, latency: 200 * time.Millisecond, report: 10 * time.Second}
				st, err := run(t.Context(), cfg, inProcess{api}, &out)
				if err != nil {
					t.Fatal(err)
				}
				t.Log("\n" + out.String())
				if st.Done != 200 || st.OK != 200 || st.Failed != 0 || (tt.rate > 0 && st.Limited != 0) || st.Limited*100 > st.Sent {
					t.Fatalf("stats %+v", st)
				}
				if u := st.Rate / 4; u < tt.minUtil {
					t.Fatalf("achieved %.2f/s = %.1f%% of 4/s, want >= %.0f%%", st.Rate, 100*u, 100*tt.minUtil)
				}
				if !strings.Contains(out.String(), "progress: done ") || !strings.Contains(out.String(), "jobs: 200 done, 0 failed, 0 undone, 0 still queued") {
					t.Fatalf("output:\n%s", out.String())
				}
			})
		})
	}
}

func TestGracefulStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api, _ := newAPI(4, 200*time.Millisecond)
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(2*time.Second, cancel)
		var out bytes.Buffer
		st, err := run(ctx, config{jobs: 60, workers: 40, rate: 4, serverRate: 4, latency: 200 * time.Millisecond, report: time.Second}, inProcess{api}, &out)
		if err != context.Canceled {
			t.Fatalf("err %v", err)
		}
		// Jobs sent every 250.25 ms from 0 to 1.75 s finish; the others
		// are returned (taken by a worker or the dispatcher) or still
		// queued.
		var done, failed, undone, queued int
		last := out.String()[strings.LastIndex(out.String(), "jobs:"):]
		if _, err := fmt.Sscanf(last, "jobs: %d done, %d failed, %d undone, %d still queued", &done, &failed, &undone, &queued); err != nil {
			t.Fatalf("%v in %q", err, last)
		}
		if st.Done != 8 || done != 8 || failed != 0 || done+undone+queued != 60 || undone < 40 {
			t.Fatalf("done %d, undone %d, queued %d; output:\n%s", st.Done, undone, queued, out.String())
		}
	})
}

// The real thing over loopback, briefly: a network boundary is the point.
func TestDemoOverNetwork(t *testing.T) {
	var out bytes.Buffer
	st, err := run(t.Context(), config{jobs: 3, workers: 4, rate: 50, serverRate: 50, report: time.Second}, nil, &out)
	if err != nil || st.Done != 3 || st.Limited != 0 {
		t.Fatalf("stats %+v, err %v\n%s", st, err, out.String())
	}
	http.DefaultClient.CloseIdleConnections()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
}
