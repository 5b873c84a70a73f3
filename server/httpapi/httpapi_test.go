package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/service"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type downStore struct{ weir.Store }

func (downStore) Take(context.Context, *weir.Request) (weir.Decision, error) {
	return weir.Decision{}, weir.ErrUnavailable
}

// blockingStore signals entered and waits for release on every Take.
type blockingStore struct {
	weir.Store
	entered, release chan struct{}
}

func (b blockingStore) Take(ctx context.Context, r *weir.Request) (weir.Decision, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Store.Take(ctx, r)
}

// R23: when the gate is full, requests are shed at once with 503 instead
// of queueing, and service resumes as soon as a place frees.
func TestShedWhenFull(t *testing.T) {
	ms := memstore.New()
	defer ms.Close()
	bs := blockingStore{Store: ms, entered: make(chan struct{}), release: make(chan struct{})}
	h := newHandlerOpts(t, bs, service.NewGate(1))
	first := make(chan int)
	go func() { first <- serve(h, "POST", "/v1/check", `{"policy":"api","key":"k"}`).Code }()
	<-bs.entered
	w := serve(h, "POST", "/v1/check", `{"policy":"api","key":"k"}`)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "overloaded") {
		t.Errorf("second request while full: %d %s", w.Code, w.Body)
	}
	close(bs.release)
	if c := <-first; c != 200 {
		t.Errorf("first request: %d", c)
	}
	go func() { <-bs.entered }()
	if w := serve(h, "POST", "/v1/check", `{"policy":"api","key":"k"}`); w.Code != 200 {
		t.Errorf("after the gate freed: %d %s", w.Code, w.Body)
	}
}

func newHandler(tb testing.TB, store weir.Store) http.Handler {
	return newHandlerOpts(tb, store, nil)
}

func newHandlerOpts(tb testing.TB, store weir.Store, gate *service.Gate) http.Handler {
	tb.Helper()
	cfg, err := config.Parse("t.yaml", []byte(`
policies:
  api: {limits: ["100/s burst=200"]}
  t: {limits: ["10/s"], key: "{tenant}:{key}"}
  jobs: {limits: ["2/m algo=concurrency"]}
`))
	if err != nil {
		tb.Fatal(err)
	}
	ms := memstore.New()
	tb.Cleanup(func() { ms.Close() })
	if store == nil {
		store = ms
	}
	svc, err := service.New(store, nil, cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return New(Options{Service: svc, Gate: gate})
}

func serve(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
	return w
}

func TestStatusMapping(t *testing.T) {
	h := newHandler(t, nil)
	down := newHandler(t, downStore{})
	tests := []struct {
		h            http.Handler
		method, path string
		body         string
		code         int
	}{
		{h, "POST", "/v1/check", `{"policy":"api","key":"k"}`, 200},
		{h, "GET", "/v1/check", ``, 405},
		{h, "POST", "/v1/nope", `{}`, 404},
		{h, "POST", "/v1/check", `{"policy":"api","key":"k","cost":500}`, 400},
		{h, "POST", "/v1/reload", ``, 501},
		{down, "POST", "/v1/check", `{"policy":"api","key":"k"}`, 503},
		{h, "GET", "/", ``, 200},
	}
	for _, tt := range tests {
		if w := serve(tt.h, tt.method, tt.path, tt.body); w.Code != tt.code {
			t.Errorf("%s %s %s: %d %s, want %d", tt.method, tt.path, tt.body, w.Code, w.Body, tt.code)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"plain", `q"uote\back`, "ctl\x01\n\t", "<script>&", "ünï"} {
		var back string
		if err := json.Unmarshal(appendString(nil, s), &back); err != nil || back != s {
			t.Errorf("%q: %q %v", s, back, err)
		}
	}
}

// FuzzCheck (R21) drives the HTTP JSON decoder and the decision path
// with arbitrary bodies: never a panic or a 5xx; every 400 is a JSON error
// naming a field.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		`{"policy":"api","key":"k"}`, `{"policy":"api","key":"k","cost":0}`, `{"policy":"t","key":"k","fields":{"tenant":"a"}}`,
		`[{"policy":"api","key":"a"},{"policy":"api","key":"b","cost":2}]`, `{"policy":"api","key":"k","limit":1e9}`,
		`{"policy":"api","key":"k","cost":1e300}`, `{"policy":"jobs","key":"k","lease":"x"}`, `[`, `null`, `"s"`, `{"cost":-1}`,
		`{"policy":"api","key":"\ud800"}`, `[` + strings.Repeat(`{"policy":"api","key":"k"},`, 3) + `{}]`,
	} {
		f.Add(s, uint8(0))
	}
	h := newHandler(f, nil)
	paths := []string{"/v1/check", "/v1/acquire", "/v1/release", "/v1/reset"}
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		path := paths[int(which)%len(paths)]
		w := serve(h, "POST", path, body)
		switch {
		case w.Code == 200:
		case w.Code == 400 || w.Code == 413:
			var e struct {
				Error struct{ Code, Field, Message string } `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Message == "" {
				t.Fatalf("%s %q: %d with body %q", path, body, w.Code, w.Body)
			}
			if w.Code == 400 && e.Error.Field == "" {
				t.Fatalf("%s %q: 400 without a field: %s", path, body, w.Body)
			}
		default:
			t.Fatalf("%s %q: status %d %s", path, body, w.Code, w.Body)
		}
	})
}

func TestDecodeCheckErrorsAreFieldErrors(t *testing.T) {
	for _, body := range []string{``, `{`, `{"x":1}`, `[]`, `{"cost":"a"}`, `{} x`} {
		_, _, err := DecodeCheck([]byte(body), false)
		var fe *weir.FieldError
		if !errors.As(err, &fe) || fe.Field == "" {
			t.Errorf("%q: %v", body, err)
		}
	}
}

// FuzzDecodeFast: whenever the fast decoder accepts a body, encoding/json
// decodes it to the same value.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range []string{
		`{"policy":"api","key":"k"}`, `{"policy":"api","key":"k","cost":0}`, ` { "cost" : -12 , "lease":"x" } `,
		`{"cost":01}`, `{"cost":1e3}`, `{"key":"a\"b"}`, `{"key":"ü"}`, `{}`, `{"policy":"a","policy":"b"}`,
		`{"cost":-0}`, `{"cost":123456789012345678}`, "{\"key\":\"\xff\"}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var fast checkBody
		if !decodeFast([]byte(body), &fast) {
			return
		}
		var slow checkBody
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&slow); err != nil {
			t.Fatalf("%q: fast path accepted, encoding/json: %v", body, err)
		}
		if dec.More() {
			t.Fatalf("%q: fast path accepted trailing data", body)
		}
		fc, sc := int64(-1<<63), int64(-1<<63)
		if fast.Cost != nil {
			fc = *fast.Cost
		}
		if slow.Cost != nil {
			sc = *slow.Cost
		}
		if fast.Policy != slow.Policy || fast.Key != slow.Key || fast.Lease != slow.Lease || fc != sc || (fast.Cost == nil) != (slow.Cost == nil) {
			t.Fatalf("%q: fast %+v (cost %d), encoding/json %+v (cost %d)", body, fast, fc, slow, sc)
		}
	})
}

// TestAcquireWaitField: wait_ms is taken by /v1/acquire only, within its
// range; errors name the field. (The waiting itself is tested in service.)
func TestAcquireWaitField(t *testing.T) {
	h := newHandler(t, nil)
	if w := serve(h, "POST", "/v1/acquire", `{"policy":"jobs","key":"k","wait_ms":100}`); w.Code != 200 || !strings.Contains(w.Body.String(), `"lease"`) {
		t.Fatalf("acquire with wait_ms while free: %d %s", w.Code, w.Body)
	}
	for _, tt := range []struct{ path, body string }{
		{"/v1/acquire", `{"policy":"jobs","key":"k","wait_ms":5001}`},
		{"/v1/acquire", `{"policy":"jobs","key":"k","wait_ms":-1}`},
		{"/v1/acquire", `{"policy":"jobs","key":"k","wait_ms":99999999999999999}`},
		{"/v1/check", `{"policy":"api","key":"k","wait_ms":100}`},
		{"/v1/release", `{"policy":"jobs","key":"k","lease":"x","wait_ms":100}`},
	} {
		w := serve(h, "POST", tt.path, tt.body)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"field":"wait_ms"`) {
			t.Errorf("%s %s: %d %s, want 400 naming wait_ms", tt.path, tt.body, w.Code, w.Body)
		}
	}
}
