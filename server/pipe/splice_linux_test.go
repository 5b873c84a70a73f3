package pipe

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestPollerSleeper: the timer-file sleep lasts as long as asked, and a
// cancelled context ends it at once. (Real time: a timer file does not
// follow testing/synctest's clock.)
func TestPollerSleeper(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sleep, stop := pollerSleeper(ctx)
	if sleep == nil {
		t.Skip("no timerfd here")
	}
	defer stop()
	for _, d := range []time.Duration{time.Microsecond, 30 * time.Millisecond} {
		start := time.Now()
		if err := sleep(ctx, d); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got < d || got > d+time.Second {
			t.Errorf("sleep(%v) took %v", d, got)
		}
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if err := sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("sleep after cancel = %v, want context.Canceled", err)
	}
	if got := time.Since(start); got > time.Second {
		t.Errorf("cancel ended the sleep after %v", got)
	}
	// Once cancelled, every sleep ends at once.
	if err := sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("second sleep = %v", err)
	}
}
