//go:build !linux

package pipe

import (
	"context"
	"io"
	"time"
)

// spliceMover returns nil: splice(2) is Linux only, so weir pipe reads and
// writes through a buffer.
func spliceMover(r io.Reader, w io.Writer) func(n int) (int, error) { return nil }

// pollerSleeper returns nil: weir pipe sleeps on Go timers.
func pollerSleeper(context.Context) (func(context.Context, time.Duration) error, func()) {
	return nil, nil
}
