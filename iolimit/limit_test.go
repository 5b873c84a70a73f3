package iolimit_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/iolimit"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

func TestNewLimitErrors(t *testing.T) {
	tests := []struct {
		rate, burst int64
		field       string // "" means valid
	}{
		{1, 0, ""},
		{64 * kib, 0, ""},
		{iolimit.MaxRate, iolimit.MaxBurst, ""},
		{0, 0, "bytesPerSec"},
		{-5, 0, "bytesPerSec"},
		{iolimit.MaxRate + 1, 0, "bytesPerSec"},
		{100, -1, "burst"},
		{100, iolimit.MaxBurst + 1, "burst"},
		{1, iolimit.MaxBurst, "burst"}, // 8 GiB at 1 B/s: centuries
	}
	for _, tt := range tests {
		_, err := iolimit.NewLimit(tt.rate, tt.burst)
		checkField(t, err, tt.field)
	}
}

func checkField(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Errorf("unexpected error %v", err)
		}
		return
	}
	var fe *weir.FieldError
	if !errors.As(err, &fe) || fe.Field != field || !errors.Is(err, weir.ErrInvalid) {
		t.Errorf("error %v, want a FieldError for %q", err, field)
	}
}

func TestDefaultBurst(t *testing.T) {
	tests := []struct{ rate, want int64 }{
		{1, 1},
		{1000, 1000},
		{64 * kib, 4096},
		{1 * mib, mib / 20},
		{100 * mib, 100 * mib / 20},
		{iolimit.MaxRate, iolimit.MaxBurst},
	}
	for _, tt := range tests {
		if got := iolimit.DefaultBurst(tt.rate); got != tt.want {
			t.Errorf("DefaultBurst(%d) = %d, want %d", tt.rate, got, tt.want)
		}
	}
}

func mustLimit(t testing.TB, rate, burst int64) *iolimit.Limit {
	t.Helper()
	l, err := iolimit.NewLimit(rate, burst)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// An event is bytes passing at an instant (ns since the start).
type event struct{ at, n int64 }

// A recorder notes when bytes pass. It is used inside one synctest bubble.
type recorder struct {
	mu     sync.Mutex
	start  time.Time
	events []event
	max    int64
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

func (r *recorder) note(n int) {
	if n == 0 {
		return
	}
	r.mu.Lock()
	r.events = append(r.events, event{int64(time.Since(r.start)), int64(n)})
	r.max = max(r.max, int64(n))
	r.mu.Unlock()
}

// checkBound checks that in every interval [t_i, t_j] the events carry at
// most burst + rate·(t_j - t_i) bytes, give or take one byte for times
// rounded to the nanosecond. It is exact (integer arithmetic in
// byte·nanoseconds) and linear: it tracks the minimum of C(i-1)·1e9 -
// rate·t_i over the events seen.
func checkBound(t *testing.T, evs []event, rate, burst int64) {
	t.Helper()
	var c int64 // bytes before the current event
	best := int64(1) << 62
	for _, e := range evs {
		best = min(best, c*1e9-rate*e.at)
		c += e.n
		if excess := (c*1e9 - rate*e.at) - best; excess > (burst+1)*1e9 {
			t.Fatalf("at %v: %d bytes over burst+rate·T (burst %d, rate %d)", time.Duration(e.at), (excess-burst*1e9)/1e9, burst, rate)
		}
	}
}

// checkWindows checks that every window of length w starting on a step
// grid within [0, span-w] carries rate·w bytes within ±tol.
func checkWindows(t *testing.T, evs []event, rate int64, span, w, step time.Duration, tol float64) {
	t.Helper()
	want := float64(rate) * w.Seconds()
	j, k := 0, 0 // events before a, before a+w
	var before, upto int64
	worst := 0.0
	for a := time.Duration(0); a+w <= span; a += step {
		for ; j < len(evs) && evs[j].at < int64(a); j++ {
			before += evs[j].n
		}
		for ; k < len(evs) && evs[k].at < int64(a+w); k++ {
			upto += evs[k].n
		}
		got := float64(upto - before)
		dev := (got - want) / want
		if dev > worst || -dev > worst {
			worst = max(dev, -dev)
		}
		if dev > tol || dev < -tol {
			t.Fatalf("window [%v, %v): %.0f bytes, want %.0f ±%.1f%% (%+.3f%%)", a, a+w, got, want, tol*100, dev*100)
		}
	}
	t.Logf("worst window deviation %.4f%% over %v windows", worst*100, w)
}

// zeros is an endless reader of zero bytes that also discards writes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error)  { clear(p); return len(p), nil }
func (zeros) Write(p []byte) (int, error) { return len(p), nil }

// fakeConn is a net.Conn that reads zeros, discards writes and notes them.
type fakeConn struct {
	net.Conn
	rec *recorder
}

func (c fakeConn) Read(p []byte) (int, error)  { clear(p); return len(p), nil }
func (c fakeConn) Write(p []byte) (int, error) { c.rec.note(len(p)); return len(p), nil }

type noteWriter struct{ rec *recorder }

func (w noteWriter) Write(p []byte) (int, error) { w.rec.note(len(p)); return len(p), nil }

// maxEvents bounds the work of one accuracy case; WEIR_SOAK=1 lifts it.
func maxEvents() int64 {
	if os.Getenv("WEIR_SOAK") != "" {
		return 1 << 40
	}
	return 100_000
}

// TestAccuracy is R26: bytes through a Reader, a Writer and a Conn over
// 60 fake seconds at several rates and buffer sizes stay within ±1% of the
// rate over every 10 s window, within burst + rate·T over every interval,
// and no Read or Write is larger than the burst.
//
// Cases that would take more than maxEvents reads (1-byte buffers, 4 KiB
// at 100 MiB/s) run a shorter span with proportionally shorter windows and
// a burst of at most 1/200 of the span; WEIR_SOAK=1 runs them in full.
func TestAccuracy(t *testing.T) {
	rates := []int64{64 * kib, 1 * mib, 100 * mib}
	bufs := []int{1, 4 * kib, 1 * mib, 16 * mib}
	kinds := []string{"reader", "writer", "conn"}
	for _, rate := range rates {
		for _, buf := range bufs {
			for _, kind := range kinds {
				name := kind + "/rate=" + size(rate) + "/buf=" + size(int64(buf))
				t.Run(name, func(t *testing.T) { accuracyCase(t, kind, rate, buf) })
			}
		}
	}
}

func size(n int64) string {
	switch {
	case n >= mib && n%mib == 0:
		return strconv.FormatInt(n/mib, 10) + "MiB"
	case n >= kib && n%kib == 0:
		return strconv.FormatInt(n/kib, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}

func accuracyCase(t *testing.T, kind string, rate int64, buf int) {
	span, w := 60*time.Second, 10*time.Second
	burst := iolimit.DefaultBurst(rate)
	chunk := min(int64(buf), burst)
	if ev := rate / chunk * 60; ev > maxEvents() {
		span = time.Duration(int64(60*time.Second) * maxEvents() / ev)
		w = span / 6
		burst = max(1, min(burst, rate*int64(w)/1e9/200))
	}
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		lim := mustLimit(t, rate, burst)
		rec := newRecorder()
		p := make([]byte, buf)
		var step func() error
		switch kind {
		case "reader":
			r := iolimit.NewReader(ctx, zeros{}, lim)
			step = func() error { n, err := r.Read(p); rec.note(n); return err }
		case "writer":
			wr := iolimit.NewWriter(ctx, noteWriter{rec}, lim)
			step = func() error { _, err := wr.Write(p); return err }
		case "conn":
			c := iolimit.NewConn(ctx, fakeConn{rec: rec}, lim, lim)
			step = func() error { _, err := c.Write(p); return err }
		}
		for time.Since(rec.start) < span+w/10 {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		if rec.max > burst {
			t.Errorf("one operation passed %d bytes, more than the burst %d", rec.max, burst)
		}
		checkBound(t, rec.events, rate, burst)
		checkWindows(t, rec.events, rate, span, w, w/100, 0.01)
	})
}

// TestConnRead: a Conn's reads are throttled by the read budget only.
func TestConnRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := mustLimit(t, 10*kib, 1*kib)
		rec := newRecorder()
		c := iolimit.NewConn(t.Context(), fakeConn{rec: rec}, lim, nil)
		p := make([]byte, 64*kib)
		var total int
		for total < 100*kib {
			n, err := c.Read(p)
			if err != nil {
				t.Fatal(err)
			}
			if n > kib {
				t.Fatalf("read %d bytes, burst is 1 KiB", n)
			}
			total += n
		}
		// The first KiB is the full bucket; the other 99 take 9.9 s.
		if got, want := time.Since(rec.start), 9900*time.Millisecond; got != want {
			t.Errorf("100 KiB at 10 KiB/s took %v, want %v", got, want)
		}
		start := time.Now()
		if _, err := c.Write(p); err != nil { // unthrottled direction
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("unthrottled write waited %v", d)
		}
	})
}

// TestCancel: a waiter returns at once, with ctx's error, when its
// context is cancelled; the bytes it had reserved go back to the budget.
func TestCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := mustLimit(t, 1*kib, 1*kib)
		ctx := t.Context()
		if err := lim.WaitN(ctx, kib); err != nil { // empty the bucket
			t.Fatal(err)
		}
		start := time.Now()
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- lim.WaitN(wctx, kib) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("WaitN returned %v before its time", err)
		default:
		}
		time.Sleep(300 * time.Millisecond)
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("WaitN = %v, want context.Canceled", err)
			}
		default:
			t.Fatal("WaitN still blocked after cancel")
		}
		if d := time.Since(start); d != 300*time.Millisecond {
			t.Errorf("cancel took effect after %v, want at once (300ms)", d)
		}
		// The refund: the next KiB is due 1 s after the bucket emptied,
		// not 2 s.
		if err := lim.WaitN(ctx, kib); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("next KiB came after %v, want 1s", d)
		}
		// An already cancelled context charges nothing and does not wait.
		if err := lim.WaitN(wctx, kib); !errors.Is(err, context.Canceled) {
			t.Errorf("WaitN with a done context = %v", err)
		}
		r := iolimit.NewReader(wctx, zeros{}, lim)
		if n, err := r.Read(make([]byte, 10)); n != 0 || !errors.Is(err, context.Canceled) {
			t.Errorf("Read with a done context = %d, %v", n, err)
		}
	})
}

// TestCancelReader: a Reader blocked in its wait returns the bytes it
// read and ctx's error as soon as ctx is cancelled.
func TestCancelReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := mustLimit(t, 100, 100)
		ctx, cancel := context.WithCancel(t.Context())
		r := iolimit.NewReader(ctx, zeros{}, lim)
		p := make([]byte, 100)
		if _, err := r.Read(p); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		time.AfterFunc(10*time.Millisecond, cancel)
		n, err := r.Read(p)
		if n != 100 || !errors.Is(err, context.Canceled) {
			t.Errorf("Read = %d, %v; want 100, context.Canceled", n, err)
		}
		if d := time.Since(start); d != 10*time.Millisecond {
			t.Errorf("Read returned after %v, want 10ms", d)
		}
	})
}

// TestSetRate: changing the rate moves sleeping waiters and later bytes.
func TestSetRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := mustLimit(t, 1*kib, 1*kib)
		ctx := t.Context()
		if err := lim.WaitN(ctx, kib); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		done := make(chan time.Duration, 1)
		go func() {
			if err := lim.WaitN(ctx, kib); err != nil {
				t.Error(err)
			}
			done <- time.Since(start)
		}()
		time.Sleep(500 * time.Millisecond)
		// Half of the KiB is still owed: at 2 KiB/s it takes 250 ms.
		if err := lim.SetRate(2*kib, 1*kib); err != nil {
			t.Fatal(err)
		}
		if got := <-done; got != 750*time.Millisecond {
			t.Errorf("waiter woke after %v, want 750ms", got)
		}
		// Bad values change nothing.
		checkField(t, lim.SetRate(0, 0), "bytesPerSec")
		checkField(t, lim.SetRate(10, -1), "burst")
		if lim.Rate() != 2*kib || lim.Burst() != kib {
			t.Errorf("rate, burst = %d, %d after bad SetRate", lim.Rate(), lim.Burst())
		}
	})
}

// TestSetRateStreams: a stream follows each new rate within 1% over
// each 10 s phase, with several rate changes while it runs.
func TestSetRateStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := mustLimit(t, 1*mib, 32*kib)
		ctx, cancel := context.WithCancel(t.Context())
		rec := newRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			r := iolimit.NewReader(ctx, zeros{}, lim)
			p := make([]byte, 64*kib)
			for {
				n, err := r.Read(p)
				rec.note(n)
				if err != nil {
					return
				}
			}
		}()
		rates := []int64{1 * mib, 4 * mib, 256 * kib, 100 * mib, 64 * kib}
		for i, rate := range rates {
			if i > 0 {
				if err := lim.SetRate(rate, 32*kib); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(10 * time.Second)
		}
		cancel()
		<-done
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for i, rate := range rates {
			from, to := int64(i)*int64(10*time.Second), int64(i+1)*int64(10*time.Second)
			var got int64
			for _, e := range rec.events {
				if e.at >= from && e.at < to {
					got += e.n
				}
			}
			want := rate * 10
			if dev := float64(got-want) / float64(want); dev > 0.01 || dev < -0.01 {
				t.Errorf("phase %d at %d B/s: %d bytes, want %d ±1%% (%+.2f%%)", i, rate, got, want, dev*100)
			}
		}
	})
}

// TestFairness is R27: 64 streams share one budget; together they stay
// within burst + rate·T, each gets its fair share within ±25% over 30 s,
// and none goes 2 s without bytes. It runs with the shared budget alone
// and joined to a per-stream budget by All.
func TestFairness(t *testing.T) {
	for _, perStream := range []int64{0, 64 * kib} {
		t.Run("perStream="+size(perStream), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { fairness(t, perStream) })
		})
	}
}

func fairness(t *testing.T, perStream int64) {
	const (
		streams = 64
		rate    = 1 * mib
		span    = 30 * time.Second
	)
	shared := mustLimit(t, rate, 0)
	ctx, cancel := context.WithCancel(t.Context())
	all := newRecorder()
	recs := make([]*recorder, streams)
	var wg sync.WaitGroup
	for i := range recs {
		recs[i] = newRecorder()
		var lim iolimit.Budget = shared
		if perStream > 0 {
			lim = iolimit.All(mustLimit(t, perStream, 0), shared)
		}
		wg.Go(func() {
			r := iolimit.NewReader(ctx, zeros{}, lim)
			p := make([]byte, 4*kib)
			for {
				n, err := r.Read(p)
				if err != nil {
					return
				}
				recs[i].note(n)
				all.note(n)
			}
		})
	}
	time.Sleep(span)
	cancel()
	wg.Wait()
	checkBound(t, all.events, rate, shared.Burst()+streams*4*kib)
	var total int64
	for _, e := range all.events {
		if e.at < int64(span) {
			total += e.n
		}
	}
	if max := float64(rate) * span.Seconds() * 1.02; float64(total) > max {
		t.Errorf("aggregate %d bytes in %v, more than rate·(1+2%%) = %.0f", total, span, max)
	}
	fair := float64(total) / streams
	for i, r := range recs {
		var got int64
		last := int64(0)
		for _, e := range r.events {
			if e.at >= int64(span) {
				break
			}
			if e.at-last > int64(2*time.Second) {
				t.Errorf("stream %d starved from %v to %v", i, time.Duration(last), time.Duration(e.at))
			}
			last = e.at
			got += e.n
		}
		if int64(span)-last > int64(2*time.Second) {
			t.Errorf("stream %d starved from %v to the end", i, time.Duration(last))
		}
		if dev := (float64(got) - fair) / fair; dev > 0.25 || dev < -0.25 {
			t.Errorf("stream %d got %d bytes, fair share %.0f (%+.1f%%)", i, got, fair, dev*100)
		}
	}
}

// TestAll: All charges every budget, takes the smallest burst, and
// reports nil or missing budgets as errors.
func TestAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow, fast := mustLimit(t, 1*kib, 1*kib), mustLimit(t, 1*mib, 64*kib)
		b := iolimit.All(fast, slow)
		if b.Burst() != kib {
			t.Errorf("Burst = %d, want %d", b.Burst(), kib)
		}
		start := time.Now()
		for range 11 {
			if err := b.WaitN(t.Context(), kib); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Errorf("11 KiB through 1 KiB/s took %v, want 10s", d)
		}
	})
	checkField(t, iolimit.All().WaitN(t.Context(), 1), "budgets")
	checkField(t, iolimit.All(nil).WaitN(t.Context(), 1), "budgets[0]")
}

// TestNilArguments: nil readers, writers and budgets give errors naming
// them, never a panic and never unthrottled bytes.
func TestNilArguments(t *testing.T) {
	lim := mustLimit(t, 1, 0)
	ctx := t.Context()
	_, err := iolimit.NewReader(ctx, zeros{}, nil).Read(make([]byte, 1))
	checkField(t, err, "lim")
	_, err = iolimit.NewReader(ctx, nil, lim).Read(make([]byte, 1))
	checkField(t, err, "r")
	_, err = iolimit.NewWriter(ctx, zeros{}, nil).Write(make([]byte, 1))
	checkField(t, err, "lim")
	_, err = iolimit.NewWriter(ctx, nil, lim).Write(make([]byte, 1))
	checkField(t, err, "w")
	_, err = iolimit.NewConn(ctx, nil, lim, lim).Read(make([]byte, 1))
	checkField(t, err, "c")
	checkField(t, lim.WaitN(ctx, -1), "n")
}

// TestWriterErrors: a Writer stops at the first error of the writer it
// wraps and reports short writes.
func TestWriterErrors(t *testing.T) {
	lim := mustLimit(t, iolimit.MaxRate, 4)
	boom := errors.New("boom")
	tests := []struct {
		w       io.Writer
		n       int
		wantErr error
	}{
		{&limitedWriter{n: 6}, 6, io.ErrShortWrite},
		{&limitedWriter{n: 8, err: boom}, 8, boom},
		{&limitedWriter{n: 100}, 10, nil},
	}
	for _, tt := range tests {
		n, err := iolimit.NewWriter(t.Context(), tt.w, lim).Write([]byte(strings.Repeat("x", 10)))
		if n != tt.n || !errors.Is(err, tt.wantErr) {
			t.Errorf("Write = %d, %v; want %d, %v", n, err, tt.n, tt.wantErr)
		}
	}
}

// limitedWriter accepts n bytes in all, then writes short or fails.
type limitedWriter struct {
	n   int
	err error
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	k := min(len(p), w.n)
	w.n -= k
	if k < len(p) && w.err != nil {
		return k, w.err
	}
	return k, nil
}
