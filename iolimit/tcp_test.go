package iolimit_test

import (
	"context"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/weir-go/weir/iolimit"
)

// TestLoopbackTCP is R26's real-clock check: a server throttled by a
// Listener sends to a client over loopback TCP at 10 MiB/s for 10 s; the
// client receives 100 MiB within ±5%. It takes 10 s of real time, so
// -short skips it unless WEIR_REALTIME=1.
func TestLoopbackTCP(t *testing.T) {
	if testing.Short() && os.Getenv("WEIR_REALTIME") == "" {
		t.Skip("10 s of real time; run without -short or with WEIR_REALTIME=1")
	}
	const (
		rate = 10 * mib
		span = 10 * time.Second
	)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := iolimit.NewListener(ctx, inner, func(net.Conn) (read, write iolimit.Budget) {
		own, err := iolimit.NewLimit(rate, 0)
		if err != nil {
			t.Error(err)
		}
		return nil, own
	})
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, zeros{})
		served <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Let the connection settle and the initial burst pass, then count.
	buf := make([]byte, 1*mib)
	if _, err := io.ReadFull(c, buf[:iolimit.DefaultBurst(rate)]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var got int64
	for time.Since(start) < span {
		n, err := c.Read(buf)
		got += int64(n)
		if err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	achieved := float64(got) / elapsed.Seconds()
	dev := achieved/rate - 1
	t.Logf("%d bytes in %v: %.0f B/s (%+.2f%% of %d)", got, elapsed, achieved, dev*100, rate)
	if dev > 0.05 || dev < -0.05 {
		t.Errorf("achieved %.0f B/s, want %d ±5%%", achieved, rate)
	}
	cancel()
	c.Close()
	if err := <-served; err == nil {
		t.Error("server copy ended without error after cancel")
	}
}
