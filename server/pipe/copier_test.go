package pipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir/iolimit"
)

// meter records, at every write, how many bytes have passed since start.
type meter struct {
	start time.Time
	rate  int64
	n     int64
	worst int64 // most bytes ahead of rate·t at any write
}

func (m *meter) Write(p []byte) (int, error) {
	m.n += int64(len(p))
	allowed := m.rate * int64(time.Since(m.start)) / int64(time.Second)
	m.worst = max(m.worst, m.n-allowed)
	return len(p), nil
}

// TestCopierNeverAhead: by any time t after the start, at most rate·t
// bytes have passed, whatever the burst (pv -L 2m's first second passes
// 2 MiB, not 2.2), and the whole copy takes (step+len)/rate.
func TestCopierNeverAhead(t *testing.T) {
	tests := []struct {
		rate, burst int64
		buffer      int
	}{
		{2 << 20, 2 << 20, 0},        // weir pipe -L 2m: a second's worth
		{2 << 20, 64 << 10, 4 << 10}, // a small burst, small pieces
		{1000, 1000, 1},              // a slow rate, a byte at a time
		{1 << 30, 1 << 30, 0},        // the 64 MiB step
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.rate, tt.burst, tt.buffer), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim, err := iolimit.NewLimit(tt.rate, tt.burst)
				if err != nil {
					t.Fatal(err)
				}
				c, err := New(Config{Limit: lim, Buffer: tt.buffer, GoTimers: true})
				if err != nil {
					t.Fatal(err)
				}
				size := 3*tt.rate + 12345
				m := &meter{start: time.Now(), rate: tt.rate}
				if err := c.Run(t.Context(), []io.Reader{io.LimitReader(zeros{}, size)}, m); err != nil {
					t.Fatal(err)
				}
				if m.n != size || c.Copied() != size {
					t.Fatalf("copied %d (Copied %d), want %d", m.n, c.Copied(), size)
				}
				if m.worst > 0 {
					t.Errorf("%d bytes ahead of rate·t at worst, want none", m.worst)
				}
				want := time.Duration(((size+c.Step())*int64(time.Second) + tt.rate - 1) / tt.rate)
				if took := time.Since(m.start); took < want || took > want+time.Microsecond {
					t.Errorf("took %v, want %v", took, want)
				}
			})
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestCopierStopAt: StopAt ends the copy after exactly that many bytes of
// an endless input, over several inputs too.
func TestCopierStopAt(t *testing.T) {
	c, err := New(Config{StopAt: 100001, Buffer: 4096})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	srcs := []io.Reader{io.LimitReader(zeros{}, 50000), zeros{}}
	if err := c.Run(context.Background(), srcs, &out); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 100001 {
		t.Errorf("copied %d bytes, want 100001", out.Len())
	}
}

func TestNewBadConfig(t *testing.T) {
	for _, cfg := range []Config{{Buffer: -1}, {Buffer: MaxBuffer + 1}, {StopAt: -1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
}

// TestIsClosedPipe: the errors of a reader that went away, and not others.
func TestIsClosedPipe(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{io.ErrClosedPipe, true},
		{fmt.Errorf("write: %w", io.ErrClosedPipe), true},
		{errors.New("broken"), false},
		{io.EOF, false},
	} {
		if got := IsClosedPipe(tt.err); got != tt.want {
			t.Errorf("IsClosedPipe(%v) = %v", tt.err, got)
		}
	}
}
