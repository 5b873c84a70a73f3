package httplimit

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir"
)

// A limit learnt by one transport is posted in the store as a note and
// read back by another transport on the store (another process), which
// then paces to it from its first request instead of probing; from 429s
// alone as from the fields; a store that keeps no notes simply shares
// nothing.
func TestTransportSharesLearntLimit(t *testing.T) {
	for _, c := range []struct {
		name     string
		noFields bool
		noter    bool
		source   string
		quota    int64
	}{
		{"fields", false, true, HeaderRateLimitPolicy, 4},
		{"429s", true, true, "429s", 4},
		{"store without notes", false, false, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := &upstream{quota: 4, window: time.Second, latency: 10 * time.Millisecond, noFields: c.noFields}
				var store weir.Store = newStore()
				if !c.noter {
					store = struct{ weir.Store }{store} // hides SetNote and Note
				}
				first := &Transport{Base: &handlerTransport{h: up}, Store: store}
				for i := range 12 {
					resp, err := first.RoundTrip(newGet(t))
					if err != nil {
						t.Fatalf("request %d: %v", i, err)
					}
					drain(resp)
				}
				if got := first.Pace("api.example"); c.noter && got.Source != c.source {
					t.Fatalf("first transport paces %+v, want %s", got, c.source)
				}
				second := &Transport{Base: &handlerTransport{h: up}, Store: store}
				ready, err := second.Wait(newGet(t))
				if err != nil {
					t.Fatal(err)
				}
				got := second.Pace("api.example")
				if got.Source != c.source || got.Quota != c.quota {
					t.Fatalf("second transport, before any answer, paces %+v; want %q, quota %d", got, c.source, c.quota)
				}
				resp, err := second.RoundTrip(ready)
				if err != nil {
					t.Fatal(err)
				}
				drain(resp)
			})
		})
	}
}

func newGet(t *testing.T) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "GET", "http://api.example/item", nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// The note's text form, read back; anything else is ignored.
func TestSharedLimitEncoding(t *testing.T) {
	s := sharedLimit{Source: "429s", Quota: 100, Window: time.Minute, Gen: 7}
	if got, ok := decodeShared(s.encode()); !ok || got != s {
		t.Fatalf("decode(encode(%+v)) = %+v, %v", s, got, ok)
	}
	for _, bad := range []string{"", "1 429s 4 1000000000", "2 429s 4 1000000000 1", "1 told 4 1000000000 1",
		"1 429s 0 1000000000 1", "1 429s 4 -1 1", "1 429s x 1000000000 1", "1 RateLimit-Policy 4 1000000000 -1",
		"1 429s 4 9223372036854775807 1"} {
		if got, ok := decodeShared([]byte(bad)); ok {
			t.Errorf("decode(%q) = %+v, want ignored", bad, got)
		}
	}
	if n := noteName(string(make([]byte, 2*weir.MaxNoteName))); len(n) > weir.MaxNoteName {
		t.Errorf("note name of a long key is %d bytes", len(n))
	}
}
