package iolimit_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/iolimit"
	"github.com/weir-go/weir/memstore"
)

// Copy a stream at no more than 1 MiB/s.
func ExampleNewReader() {
	lim, err := iolimit.NewLimit(1<<20, 64<<10) // 1 MiB/s, bursts of 64 KiB
	if err != nil {
		panic(err)
	}
	src := strings.NewReader(strings.Repeat("x", 10_000))
	n, err := io.Copy(io.Discard, iolimit.NewReader(context.Background(), src, lim))
	fmt.Println(n, err)
	// Output: 10000 <nil>
}

// Per-stream and shared budgets: each writer gets at most 256 KiB/s, and
// all of them together at most 10 MiB/s.
func ExampleAll() {
	shared, _ := iolimit.NewLimit(10<<20, 0)
	stream := func(w io.Writer) io.Writer {
		own, _ := iolimit.NewLimit(256<<10, 0)
		return iolimit.NewWriter(context.Background(), w, iolimit.All(own, shared))
	}
	var b strings.Builder
	fmt.Fprint(stream(&b), "hello")
	fmt.Println(b.String())
	// Output: hello
}

// Throttle every response of a handler to 32 KiB/s per client.
func ExampleHandler() {
	files := http.FileServer(http.Dir("/srv/files"))
	h := iolimit.Handler(files, func(*http.Request) (iolimit.Budget, error) {
		return iolimit.NewLimit(32<<10, 0)
	})
	log.Fatal(http.ListenAndServe(":8080", h))
}

// One rate for several processes: the budget lives in a Weir store (here
// an in-memory one; Redis in production) and is taken 64 KiB at a time.
func ExampleNewStoreBudget() {
	lim, err := weir.NewLimiter(memstore.New(), weir.PerSecond(100<<20).WithBurst(1<<20))
	if err != nil {
		panic(err)
	}
	egress, err := iolimit.NewStoreBudget(lim, "egress", 64<<10)
	if err != nil {
		panic(err)
	}
	w := iolimit.NewWriter(context.Background(), io.Discard, egress)
	n, err := w.Write(make([]byte, 200<<10))
	fmt.Println(n, err)
	// Output: 204800 <nil>
}

// Reserve for a caller that sleeps on its own: charge what was sent, then
// wait as long as the budget says.
func ExampleLimit_Reserve() {
	lim, _ := iolimit.NewLimit(1<<20, 64<<10) // 1 MiB/s, bursts of 64 KiB
	var last time.Duration
	for _, sent := range []int64{64 << 10, 1 << 10, 1 << 10} {
		d, err := lim.Reserve(sent)
		if err != nil {
			panic(err)
		}
		// Sleep d here, with a timer of your own (about 1 ms per KiB once
		// the burst is spent), or send nothing more before d has passed.
		fmt.Println(sent, d > 0, d > last)
		last = d
	}
	// Output:
	// 65536 false false
	// 1024 true true
	// 1024 true true
}
