package main

import (
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/weir-go/weir/examples/internal/docrun"
	"github.com/weir-go/weir/httplimit"
)

// TestDocs runs the gateway as README.md, docs/costs.md and docs/http.md
// do (`go run ./examples/llmgateway ARGS`: run with those ARGS, on the
// address they give unless another process holds it) and sends each curl
// call after it: the answer must carry the header fields the doc shows,
// or be a 200 where it shows none. The tokens' r of the RateLimit field
// may exceed the doc's by what the budget refills while the call runs
// (TPM/60 a second, rounded up); every other figure is exact.
func TestDocs(t *testing.T) {
	docrun.ForEach(t, "llmgateway", parseFlags, func(t *testing.T, ex docrun.Example, cfg config) {
		addr := docrun.Start(t, run, ex, cfg.addr)
		for _, c := range ex.Curls {
			start := time.Now()
			resp, body := c.Do(t, cfg.addr, addr)
			refill := int64(math.Ceil(time.Since(start).Seconds() * float64(cfg.limits.TPM) / 60))
			c.Check(t, resp, body, map[string]docrun.Vary{"Ratelimit": func(shown, got string) error {
				return sameRateLimit(shown, got, refill)
			}})
		}
	})
}

// sameRateLimit compares two RateLimit fields: the same items with the
// same figures, but for the "tokens" item's r, which may be up to refill
// more than shown.
func sameRateLimit(shown, got string, refill int64) error {
	parse := func(v string) ([]httplimit.QuotaStatus, error) {
		return httplimit.ParseRateLimit(http.Header{"Ratelimit": {v}})
	}
	s, err := parse(shown)
	if err != nil {
		return fmt.Errorf("the doc's field: %v", err)
	}
	g, err := parse(got)
	if err != nil {
		return err
	}
	if len(s) != len(g) {
		return fmt.Errorf("%d items, the doc shows %d", len(g), len(s))
	}
	for i := range s {
		slack := int64(0)
		if s[i].Name == "tokens" {
			slack = refill
		}
		if g[i].Name != s[i].Name || g[i].Reset != s[i].Reset || g[i].Remaining < s[i].Remaining || g[i].Remaining > s[i].Remaining+slack {
			return fmt.Errorf("item %d: %+v, the doc shows %+v (r up to %d more)", i, g[i], s[i], slack)
		}
	}
	return nil
}
