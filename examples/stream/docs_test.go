package main

import (
	"context"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/weir-go/weir/examples/internal/docrun"
)

// TestDocs runs the stream as README.md and docs/bandwidth.md do (`go run
// ./examples/stream ARGS`: run with those ARGS, on the address they give
// unless another process holds it) and sends each curl call after it: a
// 200 whose body (cut as the doc's `head -c N` cuts it) is the start of
// the array of records.
func TestDocs(t *testing.T) {
	w := httptest.NewRecorder()
	if err := writeRecords(w, 100); err != nil {
		t.Fatal(err)
	}
	want := w.Body.String()
	docrun.ForEach(t, "stream", parseFlags, func(t *testing.T, ex docrun.Example, cfg config) {
		at := docrun.Start(t, func(ctx context.Context, args []string, _, stderr io.Writer) error {
			return runArgs(ctx, args, stderr)
		}, ex, cfg.addr)
		for _, c := range ex.Curls {
			resp, body := c.Do(t, cfg.addr, at)
			c.Check(t, resp, body, nil)
			if c.Head == 0 || len(body) != c.Head || string(body) != want[:c.Head] {
				t.Fatalf("%s: body %q (head -c %d), want the start of the array, %q", c.Where, body, c.Head, want[:min(c.Head, len(want))])
			}
		}
	})
}
