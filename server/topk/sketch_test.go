package topk

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// checkGuarantee checks the space-saving guarantee of s against the exact
// counts of the stream that fed it: every counter brackets its key's true
// count, errors stay under the minimum, the counts sum to N, and every key
// above N/k (indeed above Min) is held.
func checkGuarantee(t *testing.T, s *Sketch, exact map[string]uint64) {
	t.Helper()
	var sum, n uint64
	for _, v := range exact {
		n += v
	}
	if s.N() != n {
		t.Fatalf("N = %d, stream weight %d", s.N(), n)
	}
	if s.Len() > s.k {
		t.Fatalf("%d counters held, k = %d", s.Len(), s.k)
	}
	for _, c := range s.Top(s.k) {
		sum += c.Count
		f := exact[c.Key]
		if c.Count < f || c.Count-c.Err > f {
			t.Errorf("key %q: count %d err %d, true %d", c.Key, c.Count, c.Err, f)
		}
		if c.Err > s.Min() {
			t.Errorf("key %q: err %d above the minimum %d", c.Key, c.Err, s.Min())
		}
	}
	if sum != n {
		t.Errorf("counts sum to %d, want N = %d", sum, n)
	}
	if s.Min()*uint64(s.k) > n {
		t.Errorf("min %d above N/k = %d/%d", s.Min(), n, s.k)
	}
	for key, f := range exact {
		if _, ok := s.Get(key); !ok && (f > s.Min() || f*uint64(s.k) > n) {
			t.Errorf("key %q with count %d (N/k = %d, min %d) is not held", key, f, n/uint64(s.k), s.Min())
		}
	}
}

// stream is a test stream: keys drawn from a distribution.
type stream struct {
	name string
	keys int     // distinct keys
	zipf float64 // Zipf exponent; 0: uniform
	hot  float64 // share of one extra hot key ("hot"); 0: none
}

func (st stream) gen(r *rand.Rand, n int) []string {
	var z *rand.Zipf
	if st.zipf > 1 {
		z = rand.NewZipf(r, st.zipf, 1, uint64(st.keys-1))
	}
	out := make([]string, n)
	for i := range out {
		switch {
		case st.hot > 0 && r.Float64() < st.hot:
			out[i] = "hot"
		case z != nil:
			out[i] = "k" + strconv.FormatUint(z.Uint64(), 10)
		default:
			out[i] = "k" + strconv.Itoa(r.IntN(st.keys))
		}
	}
	return out
}

func TestSketchGuarantee(t *testing.T) {
	for _, tc := range []struct {
		st stream
		k  int
		n  int
	}{
		{stream{"few keys, exact", 5, 0, 0}, 10, 1000},
		{stream{"uniform", 1000, 0, 0}, 20, 20000},
		{stream{"zipf 1.1", 10000, 1.1, 0}, 32, 50000},
		{stream{"zipf 2", 10000, 2, 0}, 8, 50000},
		{stream{"one hot key in noise", 100000, 0, 0.05}, 32, 50000},
		{stream{"k = 1", 50, 1.5, 0}, 1, 5000},
	} {
		t.Run(tc.st.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(tc.k)))
			s := NewSketch(tc.k)
			exact := map[string]uint64{}
			for i, key := range tc.st.gen(r, tc.n) {
				w := uint64(1 + i%3)
				s.Add(key, w)
				exact[key] += w
				if i%997 == 0 {
					checkGuarantee(t, s, exact)
				}
			}
			checkGuarantee(t, s, exact)
			if tc.st.hot > 0 {
				if top := s.Top(1); len(top) == 0 || top[0].Key != "hot" {
					t.Errorf("top key %v, want hot", top)
				}
			}
		})
	}
}

// FuzzSketch feeds the sketch a stream read from the input (each byte a
// key among 16, its high bits a weight) and checks the guarantee.
func FuzzSketch(f *testing.F) {
	f.Add(uint8(3), []byte("aaaabbbcdefghaaaa"))
	f.Add(uint8(1), []byte{0, 1, 2, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, k uint8, data []byte) {
		s := NewSketch(int(k%8) + 1)
		exact := map[string]uint64{}
		for _, b := range data {
			key, w := string(rune('a'+b%16)), uint64(b>>4)
			s.Add(key, w)
			exact[key] += w
		}
		checkGuarantee(t, s, exact)
	})
}

func TestSketchLongKey(t *testing.T) {
	s := NewSketch(2)
	long := strings.Repeat("x", MaxKeyBytes+10)
	s.Add(long, 1)
	s.Add(long[:MaxKeyBytes], 1)
	c, ok := s.Get(long)
	if !ok || c.Count != 2 || len(c.Key) != MaxKeyBytes {
		t.Fatalf("got %+v %v, want one counter of 2 with a key cut to %d bytes", c, ok, MaxKeyBytes)
	}
}

func TestSketchReset(t *testing.T) {
	s := NewSketch(3)
	for _, k := range []string{"a", "b", "c", "d"} {
		s.Add(k, 1)
	}
	s.Reset()
	if s.Len() != 0 || s.N() != 0 || s.Min() != 0 || len(s.Top(5)) != 0 {
		t.Fatalf("after Reset: len %d N %d min %d", s.Len(), s.N(), s.Min())
	}
	s.Add("e", 2)
	if c, _ := s.Get("e"); c.Count != 2 || c.Err != 0 {
		t.Fatalf("after Reset, e = %+v", c)
	}
}

// TestSketchBoundedMemory feeds a tracker ten times more distinct keys in
// a second round than in the first: the heap it holds must not grow with
// the number of keys.
func TestSketchBoundedMemory(t *testing.T) {
	tr := NewTracker(64, 60_000, 0)
	feed := func(from, to int) uint64 {
		var b [64]byte
		for i := from; i < to; i++ {
			key := append(b[:0], "user:"...)
			key = strconv.AppendInt(key, int64(i), 10)
			tr.Count("p", string(key), i%2 == 0)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	first := feed(0, 50_000)
	second := feed(50_000, 550_000)
	for name, top := range tr.Top(1000) {
		if len(top.Keys) > 2*64 || len(top.Denials) > 2*64 {
			t.Errorf("%s: %d keys, %d denials held, want at most %d", name, len(top.Keys), len(top.Denials), 2*64)
		}
	}
	// Half a million distinct keys of ~12 bytes would be tens of MiB if kept.
	if second > first+1<<20 {
		t.Errorf("heap grew from %d to %d bytes after 10x more distinct keys", first, second)
	}
	t.Logf("heap after 5e4 keys: %d B, after 5.5e5: %d B", first, second)
}

func ExampleSketch() {
	s := NewSketch(2)
	for _, key := range []string{"alice", "bob", "alice", "carol", "alice"} {
		s.Add(key, 1)
	}
	for _, c := range s.Top(2) {
		fmt.Printf("%s: between %d and %d\n", c.Key, c.Count-c.Err, c.Count)
	}
	// Output:
	// alice: between 3 and 3
	// carol: between 1 and 2
}
