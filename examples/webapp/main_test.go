package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir/redisstore/redistest"

	"go.uber.org/goleak"

	"github.com/weir-go/weir/httplimit"
	"github.com/weir-go/weir/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(h http.Handler, path, user, pass string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", path, nil)
	if user != "" {
		r.SetBasicAuth(user, pass)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestApp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		app, err := newApp(memstore.New())
		if err != nil {
			t.Fatal(err)
		}
		if w := get(app, "/pizza", "", ""); w.Code != 401 {
			t.Fatalf("anonymous: %d", w.Code)
		}
		if w := get(app, "/pizza", "alice", "wrong"); w.Code != 401 {
			t.Fatalf("bad password: %d", w.Code)
		}
		// /pizza: 2 per second (burst 2) and 20 per minute, per user.
		for i := range 2 {
			w := get(app, "/pizza", "alice", "pizza")
			if w.Code != 200 || !strings.Contains(w.Body.String(), "Hello alice. Here is your pizza.") {
				t.Fatalf("pizza %d: %d %q", i, w.Code, w.Body)
			}
			if got := w.Header().Get("RateLimit-Policy"); got != `"pizza-second";q=2;w=1, "pizza-minute";q=20;w=60` {
				t.Fatalf("RateLimit-Policy %q", got)
			}
		}
		w := get(app, "/pizza", "alice", "pizza")
		if w.Code != 429 || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("third pizza: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
		}
		ss, err := httplimit.ParseRateLimit(w.Result().Header)
		if err != nil || len(ss) != 1 || ss[0].Name != "pizza-second" || ss[0].Remaining != 0 {
			t.Fatalf("RateLimit on 429: %+v, %v", ss, err)
		}
		// Each user and each endpoint has its own budget.
		if w := get(app, "/pizza", "bob", "pasta"); w.Code != 200 {
			t.Fatalf("bob's pizza: %d", w.Code)
		}
		if w := get(app, "/pasta", "alice", "pizza"); w.Code != 200 {
			t.Fatalf("alice's pasta: %d", w.Code)
		}
		if w := get(app, "/pasta", "alice", "pizza"); w.Code != 429 {
			t.Fatalf("alice's second pasta in the same second: %d", w.Code)
		}
		if w := get(app, "/", "alice", "pizza"); w.Code != 200 {
			t.Fatalf("index: %d", w.Code)
		}
		// The per-minute limit: 20 pizzas a minute even at 2 per second.
		time.Sleep(time.Second)
		served := 2
		for range 60 {
			if get(app, "/pizza", "alice", "pizza").Code == 200 {
				served++
			}
			time.Sleep(500 * time.Millisecond)
		}
		// 30 s of 2/s would be 60; the minute limit allows 20 plus what
		// refilled in the ~31 s since the first pizza (about 10).
		if served < 29 || served > 31 {
			t.Fatalf("%d pizzas in 31 s, want about 30 (20/min + refill)", served)
		}
	})
}

// lineWriter passes the first line written to it on a channel.
type lineWriter struct {
	w    *io.PipeWriter
	line chan string
}

func newLineWriter() *lineWriter {
	r, w := io.Pipe()
	lw := &lineWriter{w: w, line: make(chan string, 1)}
	go func() {
		s := bufio.NewScanner(r)
		if s.Scan() {
			lw.line <- s.Text()
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	return lw
}

func (l *lineWriter) Write(p []byte) (int, error) { return l.w.Write(p) }

// TestRun starts the real server on a free port, over the network.
func TestRun(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			args := []string{"-addr", "127.0.0.1:0", "-store", store}
			if store == "redis" {
				// A long deadline: this test checks decisions, and a busy
				// machine can delay a round trip past the 50 ms default.
				args = append(args, "-redis", redistest.Start(t).Addr, "-redis-deadline", "10s")
			}
			ctx, cancel := context.WithCancel(t.Context())
			out := newLineWriter()
			defer out.w.Close()
			done := make(chan error, 1)
			go func() { done <- run(ctx, args, out, io.Discard) }()
			var line string
			select {
			case line = <-out.line:
			case err := <-done:
				t.Fatalf("run: %v", err)
			}
			url := line[strings.Index(line, "http://"):strings.Index(line, " (store")]
			req, _ := http.NewRequest("GET", url+"/pasta", nil)
			req.SetBasicAuth("bob", "pasta")
			var codes []int
			for range 2 {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				codes = append(codes, resp.StatusCode)
				if resp.Header.Get("RateLimit") == "" {
					t.Errorf("no RateLimit field")
				}
			}
			if codes[0] != 200 || codes[1] != 429 {
				t.Fatalf("codes %v, want [200 429]", codes)
			}
			http.DefaultClient.CloseIdleConnections()
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("run returned %v", err)
			}
		})
	}
	if err := run(t.Context(), []string{"-store", "nosuch"}, io.Discard, io.Discard); err == nil {
		t.Fatal("unknown store accepted")
	}
}
