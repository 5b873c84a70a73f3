//go:build unix

package cli

import (
	"syscall"
	"testing"
	"time"
)

// TestOnResize: SIGWINCH calls the function until stop; after stop the
// signal is ignored again (its default action) and the function is not
// called.
func TestOnResize(t *testing.T) {
	called := make(chan struct{}, 10)
	stop := onResize(func() { called <- struct{}{} })
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	select {
	case <-called:
	case <-time.After(10 * time.Second):
		t.Fatal("no call 10s after SIGWINCH")
	}
	stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	select {
	case <-called:
		t.Error("called after stop")
	case <-time.After(100 * time.Millisecond):
	}
}
