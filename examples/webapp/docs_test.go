package main

import (
	"testing"

	"github.com/weir-go/weir/examples/internal/docrun"
)

// TestDocs runs the web app as README.md and docs/http.md do (`go run
// ./examples/webapp ARGS`: run with those ARGS, on the address they give
// unless another process holds it) and sends each curl call after it:
// the answer must be the one the doc shows (status line, every header
// field, the date aside, and the body), or 200 where it shows none.
func TestDocs(t *testing.T) {
	docrun.ForEach(t, "webapp", parseFlags, func(t *testing.T, ex docrun.Example, cfg config) {
		if len(ex.Curls) == 0 {
			t.Fatalf("%s: no curl call after the command", ex.Where)
		}
		addr := docrun.Start(t, run, ex, cfg.addr)
		for _, c := range ex.Curls {
			resp, body := c.Do(t, cfg.addr, addr)
			c.Check(t, resp, body, nil)
		}
	})
}
