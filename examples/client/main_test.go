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

func TestDemo(t *testing.T) {
	for _, tt := range []struct {
		name             string
		rate, serverRate int64
		jobs             int
		maxLimited       int64
		wantElapsed      time.Duration
	}{
		// The seed's run: 60 jobs at 4/s take 15 s (the first is at once).
		{"paced", 4, 4, 60, 0, 59 * 250 * time.Millisecond},
		// The pool is told 8/s but the API allows 4/s and says so: the
		// transport adapts after the first response, with a 429 at most.
		{"adapting", 8, 4, 60, 1, 59 * 250 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api, err := newAPI(tt.serverRate)
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				cfg := config{jobs: tt.jobs, workers: 40, rate: tt.rate, serverRate: tt.serverRate, report: time.Second}
				st, err := run(t.Context(), cfg, inProcess{api}, &out)
				if err != nil {
					t.Fatal(err)
				}
				t.Log("\n" + out.String())
				if st.Processed != int64(tt.jobs) || st.Failed != 0 || st.Limited > tt.maxLimited {
					t.Fatalf("stats %+v", st)
				}
				if st.Elapsed < tt.wantElapsed || st.Elapsed > tt.wantElapsed+time.Second {
					t.Fatalf("took %v, want about %v", st.Elapsed, tt.wantElapsed)
				}
				last := strings.TrimSpace(out.String())
				if !strings.Contains(last, "[60] requests processed in [") || !strings.Contains(out.String(), "progress: [") {
					t.Fatalf("output:\n%s", last)
				}
			})
		})
	}
}

func TestGracefulStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api, _ := newAPI(4)
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(2*time.Second, cancel)
		var out bytes.Buffer
		st, err := run(ctx, config{jobs: 60, workers: 40, rate: 4, serverRate: 4, report: time.Second}, inProcess{api}, &out)
		if err != context.Canceled {
			t.Fatalf("err %v", err)
		}
		// Jobs sent at 0, 0.25, …, 2.0 s finish; the others are returned
		// (taken by a worker or the dispatcher) or still queued.
		var limited, failed, undone, queued int
		last := out.String()[strings.LastIndex(out.String(), "429 responses:"):]
		if _, err := fmt.Sscanf(last, "429 responses: %d, failed: %d, undone: %d, still queued: %d", &limited, &failed, &undone, &queued); err != nil {
			t.Fatalf("%v in %q", err, last)
		}
		if st.Processed != 9 || int(st.Processed)+undone+queued != 60 || undone < 40 {
			t.Fatalf("processed %d, undone %d, queued %d; output:\n%s", st.Processed, undone, queued, out.String())
		}
	})
}

// The real thing over loopback, briefly: a network boundary is the point.
func TestDemoOverNetwork(t *testing.T) {
	var out bytes.Buffer
	st, err := run(t.Context(), config{jobs: 3, workers: 4, rate: 50, serverRate: 50, report: time.Second}, nil, &out)
	if err != nil || st.Processed != 3 || st.Limited != 0 {
		t.Fatalf("stats %+v, err %v\n%s", st, err, out.String())
	}
	http.DefaultClient.CloseIdleConnections()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
}
