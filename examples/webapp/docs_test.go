package main

import (
	"io"
	"testing"

	"github.com/weir-go/weir/examples/internal/docrun"
)

// TestDocs runs the web app as README.md and docs/http.md do (`go run
// ./examples/webapp ARGS`: run with those ARGS, on the address they give
// unless another process holds it) and sends each curl call after it:
// the answer must be the one the doc shows (status line, every header
// field, the date aside, and the body), or 200 where it shows none.
func TestDocs(t *testing.T) {
	for _, ex := range docrun.Find(t, "webapp") {
		t.Run(ex.Where, func(t *testing.T) {
			cfg, err := parseFlags(ex.Args, io.Discard)
			if err != nil {
				t.Fatalf("%s: go run ./examples/webapp %q: %v", ex.Where, ex.Args, err)
			}
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
}
