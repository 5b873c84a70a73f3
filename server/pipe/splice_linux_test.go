package pipe

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// TestPollerSleeper: the timer-file sleep lasts as long as asked, and a
// cancelled context ends it at once. (Real time: a timer file does not
// follow testing/synctest's clock.) A sleep never ends early; how late it
// may end is up to the scheduler, so the upper bounds are generous (10 s
// against 30 ms and against an hour; 1 s under WEIR_SOAK=1).
func TestPollerSleeper(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sleep, stop := pollerSleeper(ctx)
	if sleep == nil {
		t.Skip("no timerfd here")
	}
	defer stop()
	late := 10 * time.Second
	if os.Getenv("WEIR_SOAK") == "1" {
		late = time.Second
	}
	for _, d := range []time.Duration{time.Microsecond, 30 * time.Millisecond} {
		start := time.Now()
		if err := sleep(ctx, d); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got < d || got > d+late {
			t.Errorf("sleep(%v) took %v", d, got)
		}
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if err := sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("sleep after cancel = %v, want context.Canceled", err)
	}
	if got := time.Since(start); got > late {
		t.Errorf("cancel ended the sleep after %v", got)
	}
	// Once cancelled, every sleep ends at once.
	if err := sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("second sleep = %v", err)
	}
}
