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
// Listener sends to a client over loopback TCP at 10 MiB/s.
//
// The bound that does not depend on the scheduler is checked in every run:
// the client never receives more than burst + rate·T, T counted from before
// the connection was made (a starved sender can only send less). CI runs
// 3 s; -short skips it unless WEIR_REALTIME=1.
//
// How close the throughput comes to the rate is a property of the machine's
// load as much as of the throttle, so the ±5% accuracy over 10 s is checked
// only by the soak (WEIR_SOAK=1), run on a quiet machine; under fake time,
// TestAccuracy checks ±1% on every window in CI.
func TestLoopbackTCP(t *testing.T) {
	soak := os.Getenv("WEIR_SOAK") == "1"
	if testing.Short() && os.Getenv("WEIR_REALTIME") == "" && !soak {
		t.Skip("3 s of real time; run without -short or with WEIR_REALTIME=1")
	}
	const rate = 10 * mib
	span := 3 * time.Second
	if soak {
		span = 10 * time.Second
	}
	burst := iolimit.DefaultBurst(rate)
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
	// The budget is made after origin, so burst + rate·(now - origin)
	// bounds every byte the client can have received by now.
	origin := time.Now()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1*mib)
	var total int64 // since origin
	ceiling := func() int64 { return burst + int64(float64(rate)*time.Since(origin).Seconds()) }
	read := func() {
		n, err := c.Read(buf)
		total += int64(n)
		if err != nil {
			t.Fatal(err)
		}
		if most := ceiling(); total > most {
			t.Fatalf("received %d bytes %v after dialling, more than burst + rate·T = %d", total, time.Since(origin), most)
		}
	}
	// Let the initial burst pass, then measure the rate.
	for total < burst {
		read()
	}
	start, before := time.Now(), total
	for time.Since(start) < span {
		read()
	}
	elapsed := time.Since(start)
	got := total - before
	achieved := float64(got) / elapsed.Seconds()
	dev := achieved/rate - 1
	t.Logf("%d bytes in %v: %.0f B/s (%+.2f%% of %d); %d bytes since dialling, ceiling %d", got, elapsed, achieved, dev*100, rate, total, ceiling())
	if soak && (dev > 0.05 || dev < -0.05) {
		t.Errorf("achieved %.0f B/s, want %d ±5%%", achieved, rate)
	}
	cancel()
	c.Close()
	if err := <-served; err == nil {
		t.Error("server copy ended without error after cancel")
	}
}
