package dashboard

import (
	"encoding/json"
	"net/http"
	"time"
)

// Step and Span are the resolution and the reach of the dashboard's
// history: one sample a second for the last 15 minutes, 900 samples of
// every series (policy × 4 outcomes, Envoy domain × 5 outcomes).
const (
	Step = time.Second
	Span = 15 * time.Minute
)

// HistoryJSON is GET /dashboard/history: the rates per second of the last
// Span, by policy and outcome and by Envoy domain and outcome. Times are
// the ends of the intervals, Unix milliseconds, oldest first; every rate
// list has one value per time.
type HistoryJSON struct {
	StepMS    int64                           `json:"step_ms"`
	Times     []int64                         `json:"times"`
	Decisions map[string]map[string][]float64 `json:"decisions"`
	Envoy     map[string]map[string][]float64 `json:"envoy"`
}

// totals flattens a snapshot into the series the history follows.
func (s Snapshot) totals() map[Series]float64 {
	t := make(map[Series]float64)
	for kind, m := range map[string]map[string]map[string]float64{"decisions": s.Decisions, "envoy": s.Envoy} {
		for name, outcomes := range m {
			for o, v := range outcomes {
				t[Series{kind, name, o}] = v
			}
		}
	}
	return t
}

// historyJSON shapes rates for the page.
func historyJSON(step int64, r Rates) HistoryJSON {
	out := HistoryJSON{StepMS: step, Times: r.Times, Decisions: map[string]map[string][]float64{}, Envoy: map[string]map[string][]float64{}}
	if out.Times == nil {
		out.Times = []int64{}
	}
	for s, v := range r.Values {
		dst := out.Decisions
		if s.Kind == "envoy" {
			dst = out.Envoy
		}
		if dst[s.Name] == nil {
			dst[s.Name] = map[string][]float64{}
		}
		dst[s.Name][s.Outcome] = v
	}
	return out
}

// sample records the counters once a step until the dashboard closes.
func (d *Dashboard) sample() {
	defer d.wg.Done()
	t := time.NewTicker(Step)
	defer t.Stop()
	for {
		d.record()
		select {
		case <-d.done:
			return
		case <-t.C:
		}
	}
}

// record adds the current counters to the history and the store's health.
func (d *Dashboard) record() {
	mfs, _ := d.m.Registry.Gather()
	now := time.Now().UnixMilli()
	s := snapshotFrom(now, mfs)
	bounds, cum, fails := storeSample(mfs)
	d.mu.Lock()
	d.hist.Record(s.Time, s.totals())
	d.health.record(now, bounds, cum, fails)
	d.mu.Unlock()
	d.rotateKeys(now)
}

func (d *Dashboard) history(w http.ResponseWriter) {
	d.mu.Lock()
	r := d.hist.Rates()
	d.mu.Unlock()
	b, _ := json.Marshal(historyJSON(Step.Milliseconds(), r))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}
