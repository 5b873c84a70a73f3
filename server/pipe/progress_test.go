package pipe

import (
	"bytes"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestLine(t *testing.T) {
	tests := []struct {
		s     Stats
		width int
		want  string
	}{
		{Stats{}, 80, "      0B 0:00:00 [       0B/s] [       0B/s]"},
		{Stats{Bytes: 999, Elapsed: time.Second, Rate: 999, Average: 999}, 80, "    999B 0:00:01 [     999B/s] [     999B/s]"},
		{Stats{Bytes: 1 << 30, Elapsed: 3725 * time.Second, Rate: 1 << 20, Average: 1.5 * (1 << 20)}, 80, " 1.00GiB 1:02:05 [  1.00MiB/s] [  1.50MiB/s]"},
		// The bar takes what the rest leaves of width-1 columns.
		{Stats{Bytes: 50, Elapsed: time.Second, Rate: 50, Average: 50, Size: 100}, 80, "     50B 0:00:01 [      50B/s] [      50B/s] [=======>       ]  50% ETA 0:00:01"},
		{Stats{Bytes: 0, Elapsed: time.Second, Size: 100}, 80, "      0B 0:00:01 [       0B/s] [       0B/s] [>              ]   0% ETA -:--:--"},
		{Stats{Bytes: 150, Elapsed: time.Second, Rate: 150, Average: 150, Size: 100}, 80, "    150B 0:00:01 [     150B/s] [     150B/s] [===============] 100% ETA -:--:--"},
		{Stats{Bytes: 100, Elapsed: 2 * time.Second, Rate: 50, Average: 50, Size: 100, Final: true}, 80, "    100B 0:00:02 [      50B/s] [      50B/s] [==============] 100%             "},
		{Stats{Bytes: 50, Elapsed: time.Second, Rate: 50, Average: 50, Size: 100}, 100,
			"     50B 0:00:01 [      50B/s] [      50B/s] [=================>                 ]  50% ETA 0:00:01"},
		// Narrower: the bar goes first, then the average rate, the ETA,
		// the clock, the current rate, the percentage; at last the byte
		// count is cut.
		{Stats{Bytes: 50, Elapsed: time.Second, Rate: 50, Average: 50, Size: 100}, 60, "     50B 0:00:01 [      50B/s]  50% ETA 0:00:01"},
		{Stats{Bytes: 50, Elapsed: time.Second, Rate: 50, Average: 50, Size: 100}, 45, "     50B 0:00:01 [      50B/s]  50%"},
		{Stats{Bytes: 50, Elapsed: time.Second, Rate: 50, Average: 50, Size: 100}, 33, "     50B [      50B/s]  50%"},
		{Stats{Bytes: 50, Elapsed: time.Second, Rate: 50, Average: 50, Size: 100}, 28, "     50B [      50B/s]  50%"},
		{Stats{Bytes: 50, Elapsed: time.Second, Rate: 50, Average: 50, Size: 100}, 15, "     50B  50%"},
		{Stats{Bytes: 50, Elapsed: time.Second, Rate: 50, Average: 50, Size: 100}, 10, "     50B"},
		{Stats{Bytes: 50, Elapsed: time.Second, Rate: 50, Average: 50, Size: 100}, 5, "    "},
		{Stats{Bytes: 50}, 1, " "},
	}
	for _, tt := range tests {
		got := Line(tt.s, tt.width)
		if got != tt.want {
			t.Errorf("Line(%+v, %d):\n got %q\nwant %q", tt.s, tt.width, got, tt.want)
		}
		if len(got) > max(tt.width-1, 1) {
			t.Errorf("Line(%+v, %d) is %d columns long", tt.s, tt.width, len(got))
		}
	}
}

// TestProgressResize: each drawing asks for the width; a narrower
// terminal gets a shorter line whose padding (over the longer line
// before) stops short of its last column; Refit draws at once and shows
// the last current rate again rather than sampling a new one.
func TestProgressResize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		var copied atomic.Int64
		var width atomic.Int64
		width.Store(100)
		p := startProgress(&out, copied.Load, ProgressConfig{Size: 1000, Interval: time.Second,
			Width: func() int { return int(width.Load()) }})
		copied.Store(100)
		time.Sleep(time.Second + time.Millisecond) // the first tick
		synctest.Wait()
		width.Store(40)
		p.Refit()
		synctest.Wait()
		width.Store(0) // unknown: 80 columns
		p.Refit()
		synctest.Wait()
		p.Stop()
		lines := strings.Split(strings.TrimPrefix(out.String(), "\r"), "\r")
		wants := []string{
			"    100B 0:00:01 [     100B/s] [     100B/s] [===>                               ]  10% ETA 0:00:09",
			"    100B 0:00:01 [     100B/s]  10%    ",
			"    100B 0:00:01 [     100B/s] [      99B/s] [=>             ]  10% ETA 0:00:09",
			"    100B 0:00:01 [      99B/s] [      99B/s] [=>            ]  10%             \n",
		}
		if len(lines) != len(wants) {
			t.Fatalf("%d lines, want %d: %q", len(lines), len(wants), out.String())
		}
		for i, want := range wants {
			if lines[i] != want {
				t.Errorf("line %d:\n got %q\nwant %q", i, lines[i], want)
			}
		}
	})
}
