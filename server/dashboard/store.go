package dashboard

import (
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Ping is the last readiness probe of the store, as the page shows it:
// the daemon pings its store every second (and on every /readyz) and
// reports each result with RecordPing.
type Ping struct {
	// Store is the store's kind: memory, sqlite or redis.
	Store string `json:"store"`
	// OK reports whether the last ping succeeded, AtMS when it ran (Unix
	// milliseconds, 0: none yet) and LatencyMS how long it took.
	OK        bool    `json:"ok"`
	AtMS      int64   `json:"at_ms"`
	LatencyMS float64 `json:"latency_ms"`
	// LastError is the last failed ping's error and LastErrorMS when it
	// ran; empty and 0 when no ping has failed since start.
	LastError   string `json:"last_error,omitempty"`
	LastErrorMS int64  `json:"last_error_ms,omitempty"`
}

// RecordPing records a ping of the store that began at start, took took
// and returned err. It is safe for concurrent use.
func (d *Dashboard) RecordPing(start time.Time, took time.Duration, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ping.AtMS, d.ping.OK = start.UnixMilli(), err == nil
	d.ping.LatencyMS = float64(took.Microseconds()) / 1000
	if err != nil {
		d.ping.LastError, d.ping.LastErrorMS = err.Error(), start.UnixMilli()
	}
}

// LocalBlocks are the totals since start of a policy with a local:
// section (docs/localquota.md), read from the weir_local_* counters:
// blocks of units taken from the store, the units in them, the units
// given back unused and the units that lapsed or could not be given back.
type LocalBlocks struct {
	Blocks   float64 `json:"blocks"`
	Taken    float64 `json:"taken"`
	Returned float64 `json:"returned"`
	Wasted   float64 `json:"wasted"`
}

// localFrom reads the local-quota counters by policy out of gathered
// metrics.
func localFrom(mfs []*dto.MetricFamily) map[string]LocalBlocks {
	out := map[string]LocalBlocks{}
	for _, mf := range mfs {
		var field func(*LocalBlocks) *float64
		switch mf.GetName() {
		case "weir_local_blocks_total":
			field = func(l *LocalBlocks) *float64 { return &l.Blocks }
		case "weir_local_units_taken_total":
			field = func(l *LocalBlocks) *float64 { return &l.Taken }
		case "weir_local_units_returned_total":
			field = func(l *LocalBlocks) *float64 { return &l.Returned }
		case "weir_local_units_wasted_total":
			field = func(l *LocalBlocks) *float64 { return &l.Wasted }
		default:
			continue
		}
		for _, m := range mf.GetMetric() {
			p := label(m, "policy")
			l := out[p]
			*field(&l) = m.GetCounter().GetValue()
			out[p] = l
		}
	}
	return out
}
