package iolimit_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir/iolimit"
)

func TestResponseWriterFlush(t *testing.T) {
	lim := mustLimit(t, iolimit.MaxRate, 0)
	rec := httptest.NewRecorder()
	w := iolimit.NewResponseWriter(t.Context(), rec, lim)
	if _, err := w.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	f, ok := w.(http.Flusher)
	if !ok {
		t.Fatal("the throttled writer is not an http.Flusher")
	}
	f.Flush()
	if !rec.Flushed {
		t.Error("Flush did not reach the recorder")
	}
	rec.Flushed = false
	if err := http.NewResponseController(w).Flush(); err != nil || !rec.Flushed {
		t.Errorf("ResponseController.Flush = %v, flushed %v", err, rec.Flushed)
	}
	if got := rec.Body.String(); got != "hello" {
		t.Errorf("body %q", got)
	}
}

// TestHandler: a handler's body is throttled, split at the burst, and
// flushed as it goes.
func TestHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := mustLimit(t, 1*mib, 0)
		h := iolimit.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for range 10 {
				if _, err := w.Write(make([]byte, 10*kib)); err != nil {
					t.Error(err)
					return
				}
				http.NewResponseController(w).Flush()
			}
		}), func(*http.Request) (iolimit.Budget, error) {
			own, err := iolimit.NewLimit(10*kib, 1*kib)
			return iolimit.All(own, shared), err
		})
		rec := &flushCounter{ResponseRecorder: httptest.NewRecorder()}
		start := time.Now()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if d := time.Since(start); d != 9900*time.Millisecond {
			t.Errorf("100 KiB at 10 KiB/s (burst 1 KiB) took %v, want 9.9s", d)
		}
		if rec.Body.Len() != 100*kib || rec.maxWrite > kib || rec.flushes != 10 {
			t.Errorf("body %d bytes, largest write %d, %d flushes", rec.Body.Len(), rec.maxWrite, rec.flushes)
		}
	})
}

type flushCounter struct {
	*httptest.ResponseRecorder
	flushes, maxWrite int
}

func (f *flushCounter) Write(p []byte) (int, error) {
	f.maxWrite = max(f.maxWrite, len(p))
	return f.ResponseRecorder.Write(p)
}

func (f *flushCounter) Flush() { f.flushes++; f.ResponseRecorder.Flush() }

func TestHandlerBadBudget(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("secret")) })
	tests := []struct {
		name   string
		budget func(*http.Request) (iolimit.Budget, error)
	}{
		{"nil func", nil},
		{"error", func(*http.Request) (iolimit.Budget, error) { return nil, errors.New("no budget") }},
		{"nil budget", func(*http.Request) (iolimit.Budget, error) { return nil, nil }},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		iolimit.Handler(ok, tt.budget).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "secret") {
			t.Errorf("%s: status %d, body %q", tt.name, rec.Code, rec.Body.String())
		}
	}
}
