package lograte

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clock is a manual clock for the tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time           { return c.t }
func (c *clock) add(d time.Duration)      { c.t = c.t.Add(d) }
func lines(b *bytes.Buffer) []string      { return strings.Split(strings.TrimSpace(b.String()), "\n") }
func logger(b *bytes.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// N failures produce O(1) lines: the state change, one summary per
// period, the recovery, however large N.
func TestStoreLinesPerOutage(t *testing.T) {
	for _, tt := range []struct {
		name     string
		failures int
		spacing  time.Duration // between failures
		want     int           // lines, recovery included
	}{
		{"one failure", 1, 0, 2},
		{"10000 failures in an instant", 10000, 0, 2},
		{"9431 failures over 48s", 9431, 48 * time.Second / 9431, 2 + 4}, // summaries at 10, 20, 30, 40 s
		{"100 failures over 9.9s", 100, 99 * time.Millisecond, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			c := &clock{t: time.Unix(1e9, 0)}
			s := NewStore(logger(&b), 10*time.Second, c.now)
			s.OK() // healthy: nothing
			for i := range tt.failures {
				if i > 0 {
					c.add(tt.spacing)
				}
				s.Fail(errors.New("redis: i/o timeout"))
			}
			s.OK()
			s.OK()
			got := lines(&b)
			if len(got) != tt.want {
				t.Fatalf("%d lines, want %d:\n%s", len(got), tt.want, b.String())
			}
			if !strings.Contains(got[0], "store failing") || !strings.Contains(got[len(got)-1], "store recovered") ||
				!strings.Contains(got[len(got)-1], "failures_total="+itoa(tt.failures)) {
				t.Errorf("lines:\n%s", b.String())
			}
		})
	}
}

// The summaries count every failure once: their counts and the first
// line add up to the total.
func TestStoreSummaryCounts(t *testing.T) {
	var b bytes.Buffer
	c := &clock{t: time.Unix(1e9, 0)}
	s := NewStore(logger(&b), time.Second, c.now)
	for range 25 {
		s.Fail(errors.New("x"))
		c.add(100 * time.Millisecond)
	}
	out := b.String()
	// Failures at 0, 0.1, ..., 2.4 s: the first logged, the 10th after it
	// (1.0 s) summarises 10, the 20th (2.0 s) 10 more; 4 are pending.
	for _, want := range []string{"store failing", "failures=10 failures_total=11", "failures=10 failures_total=21"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	s.OK()
	if !strings.Contains(b.String(), `"store recovered" failures_total=25`) {
		t.Errorf("recovery line:\n%s", b.String())
	}
}

// A Throttle writes a key at most once per period and reports how many
// it held back; distinct keys are independent.
func TestThrottle(t *testing.T) {
	var b bytes.Buffer
	c := &clock{t: time.Unix(1e9, 0)}
	th := NewThrottle(logger(&b), slog.LevelWarn, 10*time.Second, c.now)
	r := RedisLogger{th}
	for range 1000 {
		r.Printf(context.Background(), "pool: dial %s: %v", "127.0.0.1:6379", "connection refused")
		th.Log("other", "other line")
	}
	c.add(10 * time.Second)
	r.Printf(context.Background(), "pool: dial %s: %v", "127.0.0.1:6379", "connection refused")
	got := lines(&b)
	if len(got) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(got), b.String())
	}
	if !strings.Contains(got[2], "suppressed=999") || !strings.Contains(got[2], "source=redis") || !strings.Contains(got[2], "connection refused") {
		t.Errorf("last line %q", got[2])
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
