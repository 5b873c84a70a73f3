package httplimit

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-go/weir"
)

type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

// BenchmarkMiddleware is one admitted request through the middleware and
// the memory store (one limit, then two), against the bare handler.
func BenchmarkMiddleware(b *testing.B) {
	one := mustLimiter(b, newStore(), weir.PerHour(1<<40).WithName("a"))
	two := mustLimiter(b, newStore(), weir.PerHour(1<<40).WithName("a"), weir.PerDay(1<<40).WithName("b"))
	plans, err := weir.NewPlanTable(newStore(), weir.Plans{Scope: "b", Plans: []weir.Plan{{Name: "p", Limits: []weir.Limit{weir.PerHour(1 << 40).WithName("a")}}}, Default: "p"})
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name string
		h    http.Handler
	}{
		{"bare", okHandler},
		{"one-limit", mustNew(b, Policy{Limiter: one}).Handler(okHandler)},
		{"two-limits", mustNew(b, Policy{Limiter: two}).Handler(okHandler)},
		{"plans", mustNew(b, Policy{Plans: plans}).Handler(okHandler)},
		{"legacy-headers", mustNew(b, Policy{Limiter: one, Scope: "l:"}, WithHeaders(HeadersDraft|HeadersLegacy)).Handler(okHandler)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = "203.0.113.9:5000"
			w := &nopWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				c.h.ServeHTTP(w, r)
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			var n atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := httptest.NewRequest("GET", "/", nil)
				r.RemoteAddr = "10.0.0." + strconv.FormatInt(n.Add(1)%250, 10) + ":5000"
				w := &nopWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					c.h.ServeHTTP(w, r)
				}
			})
		})
	}
}

func BenchmarkClientIP(b *testing.B) {
	key, _ := ClientIP(IPConfig{TrustedProxies: []string{"10.0.0.0/8"}})
	for _, c := range []struct{ name, remote, xff string }{
		{"v4", "203.0.113.9:5000", ""},
		{"v6", "[2001:db8:1:2::9]:5000", ""},
		{"xff", "10.0.0.1:5000", "198.51.100.1, 10.1.1.1, 10.2.2.2"},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.remote
			if c.xff != "" {
				r.Header.Set("X-Forwarded-For", c.xff)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := key(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseRateLimit(b *testing.B) {
	h := http.Header{}
	h.Set(HeaderRateLimitPolicy, `"burst";q=100;w=60, "daily";q=1000;w=86400`)
	h.Set(HeaderRateLimit, `"burst";r=42;t=17`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePolicies(h); err != nil {
			b.Fatal(err)
		}
		if _, err := ParseRateLimit(h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTransport is one request through the transport (adapting, with
// a limiter) to an in-process handler, against the handler transport alone.
func BenchmarkTransport(b *testing.B) {
	base := &handlerTransport{h: okHandler}
	for _, c := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"base", base},
		{"transport", &Transport{Base: base, Limit: weir.PerHour(1 << 40), MaxPause: time.Minute}},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "http://api.example/", nil)
			req.RequestURI = ""
			b.ReportAllocs()
			for b.Loop() {
				resp, err := c.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}
