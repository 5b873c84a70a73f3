package sqlitestore

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/weir-go/weir/internal/algo"
)

func TestCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		st   algo.State
		size int // encoded length, 0 for NULL
	}{
		{"empty", algo.State{}, 0},
		{"log", algo.State{Log: []algo.Event{{At: 1_700_000_000_000_000_000, Cost: 1}, {At: 1_700_000_000_000_001_000, Cost: 3}}}, 1 + 1 + 9 + 1 + 2 + 1 + 1},
		{"log-same-instant-and-negative", algo.State{Log: []algo.Event{{At: -5, Cost: 0}, {At: -5, Cost: math.MaxInt64 >> 1}}}, 15},
		{"leases", algo.State{Leases: []algo.Lease{{ID: "a", Expires: 10, Cost: 1}, {ID: "", Expires: math.MinInt64, Cost: 2}}}, 1 + 1 + 1 + 1 + 1 + 1 + 1 + 10 + 1 + 1},
		{"both", algo.State{Log: []algo.Event{{At: 1, Cost: 1}}, Leases: []algo.Lease{{ID: "x\x00y", Expires: math.MaxInt64, Cost: 7}}}, 0},
		{"waiters", algo.State{Leases: []algo.Lease{{ID: "a", Expires: 10, Cost: 1}}, Waiters: []algo.Waiter{{ID: "b", Since: 3, Expires: 12, Cost: 2}, {ID: "", Since: -1, Expires: math.MaxInt64, Cost: 1}}},
			1 + 1 + 1 + 4 + 1 + (1 + 1 + 1 + 1 + 1) + (1 + 1 + 10 + 1)},
		{"waiters-only", algo.State{Waiters: []algo.Waiter{{ID: "w", Since: 1, Expires: 2, Cost: 1}}}, 1 + 1 + 1 + 1 + 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeExtra(nil, &tt.st)
			if tt.size != 0 && len(b) != tt.size {
				t.Errorf("encoded in %d bytes, want %d", len(b), tt.size)
			}
			if len(tt.st.Log)+len(tt.st.Leases)+len(tt.st.Waiters) == 0 && b != nil {
				t.Fatalf("empty state encoded as %x, want nil (NULL)", b)
			}
			got := algo.State{A: 1, Log: []algo.Event{{At: 9}}}
			if err := decodeExtra(b, &got); err != nil {
				t.Fatal(err)
			}
			want := algo.State{A: 1, Log: tt.st.Log, Leases: tt.st.Leases, Waiters: tt.st.Waiters}
			if len(tt.st.Waiters) == 0 && len(b) > 0 && b[0] != codecVersion {
				t.Errorf("a state without waiters encoded as version %d, want %d", b[0], codecVersion)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %+v, want %+v", got, want)
			}
		})
	}
}

func TestCodecCorrupt(t *testing.T) {
	valid := encodeExtra(nil, &algo.State{
		Log:    []algo.Event{{At: 100, Cost: 1}, {At: 200, Cost: 2}},
		Leases: []algo.Lease{{ID: "lease", Expires: 300, Cost: 1}},
	})
	tests := []struct {
		name string
		b    []byte
	}{
		{"version", []byte{3, 0, 0}},
		{"waiters-truncated", []byte{2, 0, 0}},
		{"truncated", valid[:len(valid)-1]},
		{"trailing", append(append([]byte{}, valid...), 0)},
		{"huge-count", []byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"out-of-order", []byte{1, 2, 20, 1, 1, 1, 0}}, // second delta -1
		{"huge-id", []byte{1, 0, 1, 0xff, 0x01, 0, 1}},
		{"bad-varint", []byte{1, 0x80}},
		{"cost-range", []byte{1, 1, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st algo.State
			err := decodeExtra(tt.b, &st)
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("decode %x: error %v, want errCorrupt", tt.b, err)
			}
			if st.Log != nil || st.Leases != nil {
				t.Fatalf("a failed decode left %+v", st)
			}
		})
	}
}

// FuzzDecodeExtra checks that no input makes the decoder panic or
// over-allocate, and that whatever it accepts encodes back to a value it
// decodes to the same state.
func FuzzDecodeExtra(f *testing.F) {
	f.Add([]byte{})
	f.Add(encodeExtra(nil, &algo.State{Log: []algo.Event{{At: 1, Cost: 2}, {At: 5, Cost: 1}}}))
	f.Add(encodeExtra(nil, &algo.State{Leases: []algo.Lease{{ID: "id", Expires: 9, Cost: 1}}}))
	f.Add(encodeExtra(nil, &algo.State{Waiters: []algo.Waiter{{ID: "w", Since: 4, Expires: 9, Cost: 1}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var st algo.State
		if err := decodeExtra(b, &st); err != nil {
			return
		}
		if len(st.Log) > len(b) || len(st.Leases) > len(b) || len(st.Waiters) > len(b) {
			t.Fatalf("%d bytes decoded to %d events, %d leases and %d waiters", len(b), len(st.Log), len(st.Leases), len(st.Waiters))
		}
		var again algo.State
		if err := decodeExtra(encodeExtra(nil, &st), &again); err != nil {
			t.Fatalf("re-encoding of an accepted value: %v", err)
		}
		if !reflect.DeepEqual(st, again) {
			t.Fatalf("round trip changed %+v into %+v", st, again)
		}
	})
}
