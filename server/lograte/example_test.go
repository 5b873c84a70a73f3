package lograte_test

import (
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/weir-go/weir/server/lograte"
)

// A thousand failures in one period make one line, and the recovery one
// more.
func ExampleStore() {
	now := time.Unix(0, 0)
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	s := lograte.NewStore(log, 10*time.Second, func() time.Time { return now })
	for range 1000 {
		s.Fail(errors.New("redis: i/o timeout"))
	}
	now = now.Add(3 * time.Second)
	s.OK()
	// Output:
	// level=WARN msg="store failing" err="redis: i/o timeout"
	// level=INFO msg="store recovered" failures_total=1000 after=3s last_err="redis: i/o timeout"
}
