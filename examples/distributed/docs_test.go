package main

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/weir-go/weir/examples/internal/docrun"
	"github.com/weir-go/weir/redisstore/redistest"
)

// TestDocs runs the example as README.md does (`go run
// ./examples/distributed ARGS`) with its arguments as written but for
// -redis, which names the reader's Redis: the test's own redis-server
// stands in for it. run itself checks the shared limits' bounds; the
// totals must be printed.
func TestDocs(t *testing.T) {
	parseArgs := func(args []string, _ io.Writer) (config, error) { return parse(args) }
	docrun.ForEach(t, "distributed", parseArgs, func(t *testing.T, ex docrun.Example, _ config) {
		args := slices.Clone(ex.Args)
		i := slices.Index(args, "-redis")
		if i < 0 || i+1 >= len(args) {
			t.Fatalf("%s: no -redis address in %q", ex.Where, args)
		}
		args[i+1] = redistest.Start(t).Addr
		var out bytes.Buffer
		err := run(context.Background(), args, &out)
		t.Log("\n" + out.String())
		if err != nil {
			t.Fatalf("%s: %v", ex.Where, err)
		}
		if !strings.Contains(out.String(), "total:") {
			t.Fatalf("%s: no totals in %q", ex.Where, out.String())
		}
	})
}
