package topk

import (
	"strconv"
	"testing"
)

// BenchmarkTrackerCount is the dashboard's cost per decision: one Count
// on a policy, over 10,000 keys (Zipf-like reuse: a key in four is hot),
// a denial in eight.
func BenchmarkTrackerCount(b *testing.B) {
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i)
	}
	for _, bc := range []struct {
		name string
		par  bool
	}{{"serial", false}, {"parallel", true}} {
		b.Run(bc.name, func(b *testing.B) {
			tr := NewTracker(64, 60_000, 0)
			b.ReportAllocs()
			if !bc.par {
				i := 0
				for b.Loop() {
					key := keys[i%len(keys)]
					if i%4 == 0 {
						key = keys[0]
					}
					tr.Count("api", key, i%8 == 0)
					i++
				}
				return
			}
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					key := keys[(i*7919)%len(keys)]
					if i%4 == 0 {
						key = keys[0]
					}
					tr.Count("api", key, i%8 == 0)
					i++
				}
			})
		})
	}
}

// BenchmarkTrackerTop is the cost of one dashboard read of a policy.
func BenchmarkTrackerTop(b *testing.B) {
	tr := NewTracker(64, 60_000, 0)
	for i := range 100000 {
		tr.Count("api", "user:"+strconv.Itoa(i%5000), i%3 == 0)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = tr.Top(10)
	}
}
