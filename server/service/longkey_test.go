package service

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/weir-go/weir/server/config"
)

// TestLongKeyDecides (issue 19: no way around a limit through an error): a
// key longer than config.MaxKeyLength is decided under a fixed-size
// stand-in instead of refused, so a client that fails open on errors
// cannot pass a limit with a long key; long keys that differ anywhere
// count apart, and none shares a bucket with a key used as it is.
func TestLongKeyDecides(t *testing.T) {
	s, _, _ := newService(t, policies)
	ctx := context.Background()
	long := strings.Repeat("é", 200) // 400 bytes
	for _, key := range []string{long + "a", long + "b", "a" + long} {
		for i, want := range []bool{true, true, false} {
			r, err := s.Check(ctx, &Request{Policy: "err", Key: key, Cost: 1})
			if err != nil {
				t.Fatalf("key of %d bytes: %v", len(key), err)
			}
			if r.Allowed != want {
				t.Fatalf("key %q…: check %d allowed=%v, want %v", key[:8], i, r.Allowed, want)
			}
		}
	}
	// A field that makes the rendered key long is decided too.
	if _, err := s.Check(ctx, &Request{Policy: "tenant", Key: "k", Fields: map[string]string{"tenant": long}, Cost: 1}); err != nil {
		t.Fatal(err)
	}
}

func TestLongKeyInjective(t *testing.T) {
	short := strings.Repeat("x", config.MaxKeyLength)
	if got := longKey(short); got != short {
		t.Errorf("a key of MaxKeyLength bytes changed: %q", got)
	}
	seen := map[string]string{}
	for _, k := range []string{
		short + "x", short + "y", "y" + short, strings.Repeat("é", 129), strings.Repeat("é", 130), strings.Repeat("€", 100),
	} {
		got := longKey(k)
		if len(got) <= config.MaxKeyLength || len(got) > 190+8+64 || !utf8.ValidString(got) {
			t.Errorf("longKey(%d bytes) = %d bytes %q: want valid UTF-8 longer than %d and at most 262", len(k), len(got), got, config.MaxKeyLength)
		}
		if prev, ok := seen[got]; ok {
			t.Errorf("keys of %d and %d bytes share %q", len(prev), len(k), got)
		}
		seen[got] = k
	}
}
