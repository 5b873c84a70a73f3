package httpapi

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkCheck measures the handler alone (decode, decide on the memory
// store, encode), without sockets.
func BenchmarkCheck(b *testing.B) {
	h := newHandler(b, nil)
	bodies := make([]string, 1000)
	for i := range bodies {
		bodies[i] = `{"policy":"api","key":"user:` + strconv.Itoa(i) + `"}`
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("POST", "/v1/check", strings.NewReader(bodies[i%len(bodies)])))
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("POST", "/v1/check", strings.NewReader(bodies[i%len(bodies)])))
				i++
			}
		})
	})
}

// BenchmarkReport measures POST /v1/report (a settle: the excess of 3
// over a reserved 1 charged), handler alone, memory store.
func BenchmarkReport(b *testing.B) {
	h := newHandler(b, nil)
	bodies := make([]string, 1000)
	for i := range bodies {
		bodies[i] = `{"policy":"api","key":"user:` + strconv.Itoa(i) + `","cost":3,"reserved":1}`
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/v1/report", strings.NewReader(bodies[i%len(bodies)])))
		i++
	}
}
