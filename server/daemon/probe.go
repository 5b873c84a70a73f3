package daemon

import (
	"context"
	"time"
)

// StoreProbeInterval is how often the daemon pings its store to keep
// weir_store_ready current between /readyz calls.
const StoreProbeInterval = time.Second

// probeStore calls ping every interval until stop is closed. Each ping is
// bounded by the store's own deadline (and a second at most).
func probeStore(stop <-chan struct{}, interval time.Duration, ping func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = ping(ctx)
			cancel()
		}
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
