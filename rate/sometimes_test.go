package rate_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir/rate"
	xrate "golang.org/x/time/rate"
)

// TestSometimesCompat runs weir's and x/time's Sometimes side by side.
func TestSometimesCompat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, c := range []struct {
			first, every int
			interval     time.Duration
		}{{0, 0, 0}, {3, 0, 0}, {0, 4, 0}, {2, 5, 0}, {0, 0, time.Second}, {1, 3, 250 * time.Millisecond}} {
			w := rate.Sometimes{First: c.first, Every: c.every, Interval: c.interval}
			x := xrate.Sometimes{First: c.first, Every: c.every, Interval: c.interval}
			for i := range 40 {
				var wr, xr bool
				w.Do(func() { wr = true })
				x.Do(func() { xr = true })
				if wr != xr {
					t.Errorf("%+v call %d: weir ran %v, x/time ran %v", c, i, wr, xr)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	})
}
