package topk

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
)

func TestWindowRotate(t *testing.T) {
	const period = 60_000
	type step struct {
		at   int64  // Rotate(at) before the adds
		add  string // keys added, one each
		want string // Top keys with counts, "key=count ..."
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"one period", []step{{0, "aab", "a=2 b=1"}, {59_999, "a", "a=3 b=1"}}},
		{"previous period still shown", []step{{0, "aab", "a=2 b=1"}, {60_000, "b", "a=2 b=2"}}},
		{"two periods later the first is gone", []step{{0, "aab", ""}, {60_000, "b", ""}, {120_000, "c", "b=1 c=1"}}},
		{"a long pause empties both", []step{{0, "aab", ""}, {500_000, "c", "c=1"}}},
		{"a clock going back changes nothing", []step{{60_000, "aa", ""}, {10, "b", "a=2 b=1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWindow(4, period, 0)
			for i, s := range tc.steps {
				w.Rotate(s.at)
				for _, k := range s.add {
					w.Add(string(k), 1)
				}
				if s.want == "" && i < len(tc.steps)-1 {
					continue
				}
				got := ""
				for _, c := range w.Top(10) {
					if got != "" {
						got += " "
					}
					got += c.Key + "=" + strconv.FormatUint(c.Count, 10)
				}
				if got != s.want {
					t.Errorf("step %d: top %q, want %q", i, got, s.want)
				}
			}
		})
	}
}

// TestWindowGuarantee checks the merged guarantee over two periods
// against exact counts, with sketches full in both periods.
func TestWindowGuarantee(t *testing.T) {
	const k = 16
	r := rand.New(rand.NewPCG(7, 7))
	z := rand.NewZipf(r, 1.2, 1, 5000)
	w := NewWindow(k, 1000, 0)
	exact := map[string]uint64{}
	for period := range 2 {
		w.Rotate(int64(period) * 1000)
		for range 20000 {
			key := "k" + strconv.FormatUint(z.Uint64(), 10)
			if period == 1 && r.IntN(10) == 0 {
				key = "late" // a key hot in the second period only
			}
			w.Add(key, 1)
			exact[key]++
		}
	}
	var n uint64
	for _, v := range exact {
		n += v
	}
	if w.N() != n {
		t.Fatalf("N = %d, want %d", w.N(), n)
	}
	top := w.Top(2 * k)
	held := map[string]Counter{}
	for _, c := range top {
		held[c.Key] = c
		if f := exact[c.Key]; c.Count < f || c.Count-c.Err > f {
			t.Errorf("key %q: count %d err %d, true %d", c.Key, c.Count, c.Err, f)
		}
	}
	for key, f := range exact {
		if _, ok := held[key]; !ok && f*k > n {
			t.Errorf("key %q with %d of %d (> N/k) is not shown", key, f, n)
		}
	}
	if _, ok := held["late"]; !ok {
		t.Errorf("the key hot in the last period is not shown")
	}
}

func TestTracker(t *testing.T) {
	tr := NewTracker(8, 60_000, 0)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				tr.Count("login", "alice", true)
				tr.Count("api", "k"+strconv.Itoa((g*1000+i)%50), false)
			}
		})
	}
	wg.Go(func() {
		for i := range 100 {
			tr.Rotate(int64(i)) // within the first period: nothing moves
			_ = tr.Top(3)
		}
	})
	wg.Wait()
	top := tr.Top(3)
	if l := top["login"]; l.Total != 4000 || l.Denied != 4000 || len(l.Keys) != 1 || l.Keys[0] != (Counter{"alice", 4000, 0}) {
		t.Errorf("login: %+v", l)
	}
	if a := top["api"]; a.Total != 4000 || a.Denied != 0 || len(a.Keys) != 3 || len(a.Denials) != 0 {
		t.Errorf("api: %+v", a)
	}
	tr.Retain(func(name string) bool { return name == "api" })
	if _, ok := tr.Top(1)["login"]; ok {
		t.Errorf("login kept after Retain")
	}
	tr.Rotate(200_000)
	if a := tr.Top(3)["api"]; a.Total != 0 {
		t.Errorf("api after three periods: %+v", a)
	}
}
