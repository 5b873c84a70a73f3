package redisstore_test

import (
	"context"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/weir-go/weir"
)

// soak reports whether the long versions of the reliability tests run
// (WEIR_SOAK=1); CI runs the short ones.
func soak() bool { return os.Getenv("WEIR_SOAK") == "1" }

// pick returns long under WEIR_SOAK=1, short otherwise.
func pick[T any](short, long T) T {
	if soak() {
		return long
	}
	return short
}

// A sample is one decision made under load.
type sample struct {
	start   time.Time
	lat     time.Duration
	allowed bool
	src     weir.Source
	err     error
}

// load makes decisions on store from workers goroutines at about rps per
// second in total until ctx ends, and returns every sample in start order.
func load(ctx context.Context, store weir.Store, req func() *weir.Request, workers, rps int) []sample {
	var mu sync.Mutex
	var all []sample
	var wg sync.WaitGroup
	every := time.Duration(workers) * time.Second / time.Duration(rps)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			var mine []sample
			for {
				select {
				case <-ctx.Done():
					mu.Lock()
					all = append(all, mine...)
					mu.Unlock()
					return
				case <-tick.C:
				}
				start := time.Now()
				d, err := store.Take(context.Background(), req())
				mine = append(mine, sample{start, time.Since(start), d.Allowed, d.Source, err})
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(all, func(a, b sample) int { return a.start.Compare(b.start) })
	return all
}

// between returns the samples that started in [from, to).
func between(s []sample, from, to time.Time) []sample {
	var out []sample
	for _, x := range s {
		if !x.start.Before(from) && x.start.Before(to) {
			out = append(out, x)
		}
	}
	return out
}

// quantile returns the q-quantile of the samples' latencies.
func quantile(s []sample, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	l := make([]time.Duration, len(s))
	for i, x := range s {
		l[i] = x.lat
	}
	slices.Sort(l)
	return l[min(len(l)-1, int(q*float64(len(l))))]
}
