package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	sethhttplimit "github.com/sethvargo/go-limiter/httplimit"
	"github.com/sethvargo/go-limiter/memorystore"
	ululelimiter "github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/middleware/stdlib"
	ululememory "github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/httplimit"
	"github.com/weir-go/weir/memstore"
)

// The HTTP middleware benchmark: one handler, wrapped by each middleware
// with an in-memory store, keyed by client address, with a limit high
// enough that every request is admitted (so each one takes the full path:
// key, decision, headers, handler). impl=bare is the handler alone; the
// overhead of a middleware is its time minus bare's.
//
//	go test -run '^$' -bench 'BenchmarkHTTPMiddleware' -benchmem -count 10 ./bench > http.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl http.txt

// httpQuota per hour never limits a benchmark run. (go-limiter refills
// Interval/Tokens tokens per interval, which rounds to zero when Tokens
// exceeds the interval in nanoseconds: hence per hour, not per second.)
const httpQuota = 1 << 30

// discardWriter is a ResponseWriter that keeps nothing but its headers,
// cleared before each request.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

var httpHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok"))
})

type httpImpl struct {
	name string
	make func(b *testing.B) http.Handler
}

var httpImpls = []httpImpl{
	{"bare", func(b *testing.B) http.Handler { return httpHandler }},
	{"weir", func(b *testing.B) http.Handler {
		store := memstore.New()
		b.Cleanup(func() { _ = store.Close() })
		lim, err := weir.NewLimiter(store, weir.PerHour(httpQuota))
		if err != nil {
			b.Fatal(err)
		}
		mw, err := httplimit.New(httplimit.Policy{Limiter: lim})
		if err != nil {
			b.Fatal(err)
		}
		return mw.Handler(httpHandler)
	}},
	{"go-limiter", func(b *testing.B) http.Handler {
		store, err := memorystore.New(&memorystore.Config{Tokens: httpQuota, Interval: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = store.Close(context.Background()) })
		mw, err := sethhttplimit.NewMiddleware(store, sethhttplimit.IPKeyFunc())
		if err != nil {
			b.Fatal(err)
		}
		return mw.Handle(httpHandler)
	}},
	{"ulule", func(b *testing.B) http.Handler {
		lim := ululelimiter.New(ululememory.NewStore(), ululelimiter.Rate{Period: time.Hour, Limit: httpQuota})
		return stdlib.NewMiddleware(lim).Handler(httpHandler)
	}},
}

func serveBench(b *testing.B, h http.Handler, r *http.Request) {
	w := &discardWriter{h: http.Header{}}
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	if w.code != http.StatusOK {
		b.Fatalf("status %d", w.code)
	}
}

// BenchmarkHTTPMiddleware: one client, one goroutine.
func BenchmarkHTTPMiddleware(b *testing.B) {
	for _, impl := range httpImpls {
		b.Run("impl="+impl.name, func(b *testing.B) {
			h := impl.make(b)
			r := httptest.NewRequest("GET", "/pizza", nil)
			r.RemoteAddr = "203.0.113.7:41000"
			b.ReportAllocs()
			serveBench(b, h, r)
		})
	}
}

// BenchmarkHTTPMiddlewareParallel: GOMAXPROCS goroutines, each a client
// of its own address.
func BenchmarkHTTPMiddlewareParallel(b *testing.B) {
	for _, impl := range httpImpls {
		b.Run("impl="+impl.name, func(b *testing.B) {
			h := impl.make(b)
			var next atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				n := next.Add(1)
				r := httptest.NewRequest("GET", "/pizza", nil)
				r.RemoteAddr = "10.0." + strconv.FormatInt(n/256, 10) + "." + strconv.FormatInt(n%256, 10) + ":41000"
				w := &discardWriter{h: http.Header{}}
				served := false
				for pb.Next() {
					clear(w.h)
					h.ServeHTTP(w, r)
					served = true
				}
				if served && w.code != http.StatusOK {
					b.Errorf("status %d", w.code)
				}
			})
		})
	}
}
