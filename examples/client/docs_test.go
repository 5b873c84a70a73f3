package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/weir-go/weir/examples/internal/docrun"
)

// TestDocs runs the client as README.md and docs/http.md do (`go run
// ./examples/client ARGS`), with the command's flags as written, in a
// synctest bubble: the local API the command starts is called in process
// instead of over loopback (TestDemoOverNetwork covers the sockets), so
// the minute of jobs takes no real time. Every job must be done and none
// fail, none be limited when the client is told the rate (-rate), and the
// statistics line be printed while it runs and at the end.
func TestDocs(t *testing.T) {
	docrun.ForEach(t, "client", parseFlags, func(t *testing.T, ex docrun.Example, cfg config) {
		if cfg.url != "" {
			t.Fatalf("%s: -url calls another API: not run by this test", ex.Where)
		}
		synctest.Test(t, func(t *testing.T) {
			api, err := newAPI(cfg.serverRate, cfg.latency)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			st, err := run(t.Context(), cfg, inProcess{api}, &out)
			if err != nil {
				t.Fatalf("%s: %v\n%s", ex.Where, err, out.String())
			}
			end := fmt.Sprintf("jobs: %d done, 0 failed, 0 undone, 0 still queued\n", cfg.jobs)
			if st.Done != int64(cfg.jobs) || st.Failed != 0 || (cfg.rate > 0 && st.Limited != 0) ||
				!strings.Contains(out.String(), "progress: done ") || !strings.HasSuffix(out.String(), end) {
				t.Fatalf("%s: stats %+v; output:\n%s", ex.Where, st, out.String())
			}
			t.Logf("%s: %s", ex.Where, st)
		})
	})
}
