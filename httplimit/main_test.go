package httplimit

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newStore returns a fresh memory store. It reads time.Now, which is
// fake inside synctest bubbles.
func newStore() weir.Store { return memstore.New() }

// faultStore wraps a store with failure hooks: err is returned by Take
// when set; source overrides the decision's Source, and failOpen makes an
// unavailable store admit (a store's own failure policy).
type faultStore struct {
	weir.Store
	err      atomic.Pointer[error]
	failOpen bool
	sources  [4]atomic.Int64
}

func (f *faultStore) Take(ctx context.Context, req *weir.Request) (weir.Decision, error) {
	if p := f.err.Load(); p != nil {
		if f.failOpen && errors.Is(*p, weir.ErrUnavailable) {
			f.sources[weir.SourceFailOpen].Add(1)
			return weir.Decision{Allowed: true, Source: weir.SourceFailOpen, Limit: req.Checks[0].Limit}, nil
		}
		return weir.Decision{}, *p
	}
	d, err := f.Store.Take(ctx, req)
	if err == nil {
		f.sources[d.Source].Add(1)
	}
	return d, err
}

func (f *faultStore) fail(err error) { f.err.Store(&err) }

// handlerTransport sends requests to a handler in process: no sockets, so
// it works inside synctest bubbles. Requests come from RemoteAddr.
type handlerTransport struct {
	h          http.Handler
	remoteAddr string
	sent       atomic.Int64
}

func (t *handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	t.sent.Add(1)
	r := req.Clone(req.Context())
	r.RemoteAddr = t.remoteAddr
	if r.RemoteAddr == "" {
		r.RemoteAddr = "192.0.2.1:1234"
	}
	r.RequestURI = req.URL.RequestURI()
	if r.Body == nil {
		r.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	if req.Body != nil {
		req.Body.Close()
	}
	if err := req.Context().Err(); err != nil {
		return nil, err // the caller gave up before the answer
	}
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

func mustLimiter(t testing.TB, s weir.Store, limits ...weir.Option) *weir.Limiter {
	t.Helper()
	l, err := weir.NewLimiter(s, limits...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustNew(t testing.TB, opts ...Option) *Middleware {
	t.Helper()
	m, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok"))
})

// do serves one request from remote through h and returns the recorder.
func do(h http.Handler, method, target, remote string, hdr http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = remote
	for k, vs := range hdr {
		r.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}
