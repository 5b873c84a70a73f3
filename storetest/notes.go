package storetest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weir-go/weir"
)

// testNotes checks the optional weir.Noter capability: a note is read
// back as set, replaced by the next SetNote, gone once its time to live
// has passed on the store's clock, untouched by Reset, and bad arguments
// are a *FieldError naming the field. A store without notes skips it.
func testNotes(t *testing.T, f Factory) {
	h := newHarness(t, f)
	n, ok := h.store.(weir.Noter)
	if !ok {
		t.Skip("the store keeps no notes (weir.Noter)")
	}
	ctx := context.Background()
	get := func(name string) []byte {
		t.Helper()
		v, err := n.Note(ctx, name)
		if err != nil {
			t.Fatalf("Note(%q) at +%v: %v", name, h.elapsed(), err)
		}
		return v
	}
	set := func(name, value string, ttl time.Duration) {
		t.Helper()
		if err := n.SetNote(ctx, name, []byte(value), ttl); err != nil {
			t.Fatalf("SetNote(%q) at +%v: %v", name, h.elapsed(), err)
		}
	}
	if v := get("a"); v != nil {
		t.Fatalf("Note of a name never set = %q, want nil", v)
	}
	set("a", "one", time.Minute)
	set("b", "two: with \x00 and {braces}", 10*time.Second)
	if v := get("a"); string(v) != "one" {
		t.Fatalf("Note(a) = %q, want one", v)
	}
	// Reset of limiter state leaves notes alone.
	if err := h.store.Reset(ctx, []weir.Check{{Key: "a", Limit: weir.Limit{Name: "a", Quota: 1, Period: time.Second}}}); err != nil {
		t.Fatal(err)
	}
	if v := get("b"); string(v) != "two: with \x00 and {braces}" {
		t.Fatalf("Note(b) = %q after Reset", v)
	}
	set("a", "uno", time.Minute)
	if v := get("a"); string(v) != "uno" {
		t.Fatalf("Note(a) = %q after a second SetNote, want uno", v)
	}
	// Expiry by the store's clock: b (10 s) ends, a (1 min) stays.
	h.clk.add(t, 10*time.Second)
	if v := get("b"); v != nil {
		t.Fatalf("Note(b) = %q 10 s after SetNote with a 10 s ttl, want nil", v)
	}
	if v := get("a"); string(v) != "uno" {
		t.Fatalf("Note(a) = %q before its ttl, want uno", v)
	}
	long := strings.Repeat("n", weir.MaxNoteName)
	big := bytes.Repeat([]byte{0xff}, weir.MaxNoteValue)
	if err := n.SetNote(ctx, long, big, time.Minute); err != nil {
		t.Fatalf("SetNote at the bounds: %v", err)
	}
	if v := get(long); !bytes.Equal(v, big) {
		t.Fatalf("Note at the bounds: %d bytes back", len(v))
	}
	for _, c := range []struct {
		field, name string
		value       []byte
		ttl         time.Duration
	}{
		{"note name", "", nil, time.Second},
		{"note name", long + "n", nil, time.Second},
		{"note value", "v", append(big, 0), time.Second},
		{"note ttl", "t", nil, 0},
		{"note ttl", "t", nil, -time.Second},
	} {
		err := n.SetNote(ctx, c.name, c.value, c.ttl)
		var fe *weir.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, weir.ErrInvalid) {
			t.Errorf("SetNote(%d-byte name, %d-byte value, %v) = %v, want a *FieldError naming %q", len(c.name), len(c.value), c.ttl, err, c.field)
		}
	}
	if _, err := n.Note(ctx, ""); !errors.Is(err, weir.ErrInvalid) {
		t.Errorf("Note(\"\") = %v, want ErrInvalid", err)
	}
}
