// Package dashboard serves a small live view of the weir server on its
// HTTP port: the policies, and decisions per second by policy and outcome,
// pushed once a second with Server-Sent Events. Standard library only
// (html/template, embed); no per-key data is ever shown.
package dashboard

import (
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/weir-go/weir/server/metrics"
	"github.com/weir-go/weir/server/service"
)

//go:embed dashboard.html
var files embed.FS

var page = template.Must(template.ParseFS(files, "dashboard.html"))

// Dashboard is an http.Handler for GET /dashboard and
// GET /dashboard/events.
type Dashboard struct {
	svc      *service.Service
	m        *metrics.Metrics
	interval time.Duration
	done     chan struct{}
	once     sync.Once
}

// New returns the dashboard of svc.
func New(svc *service.Service, m *metrics.Metrics) *Dashboard {
	return &Dashboard{svc: svc, m: m, interval: time.Second, done: make(chan struct{})}
}

// Close ends every open event stream (call it when the server shuts down).
func (d *Dashboard) Close() { d.once.Do(func() { close(d.done) }) }

// ServeHTTP serves the page and its event stream.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/dashboard", "/dashboard/":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		_ = page.Execute(w, struct{ Policies []service.PolicyInfo }{d.svc.Policies()})
	case "/dashboard/events":
		d.events(w, r)
	default:
		http.NotFound(w, r)
	}
}

// Snapshot is one event: totals by policy and outcome, and Envoy
// descriptor totals by domain and outcome.
type Snapshot struct {
	Time      int64                         `json:"time_ms"`
	Decisions map[string]map[string]float64 `json:"decisions"`
	Envoy     map[string]map[string]float64 `json:"envoy"`
}

// Snapshot reads the current counters.
func (d *Dashboard) Snapshot() Snapshot {
	s := Snapshot{Time: time.Now().UnixMilli(), Decisions: map[string]map[string]float64{}, Envoy: map[string]map[string]float64{}}
	mfs, err := d.m.Registry.Gather()
	if err != nil {
		return s
	}
	for _, mf := range mfs {
		var dst map[string]map[string]float64
		var outer string
		switch mf.GetName() {
		case "weir_decisions_total":
			dst, outer = s.Decisions, "policy"
		case "weir_envoy_descriptors_total":
			dst, outer = s.Envoy, "domain"
		default:
			continue
		}
		for _, m := range mf.GetMetric() {
			k, o := label(m, outer), label(m, "outcome")
			if dst[k] == nil {
				dst[k] = map[string]float64{}
			}
			dst[k][o] = m.GetCounter().GetValue()
		}
	}
	return s
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func (d *Dashboard) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		b, _ := json.Marshal(d.Snapshot())
		if _, err := w.Write(append(append([]byte("data: "), b...), '\n', '\n')); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-d.done:
			return
		case <-t.C:
		}
	}
}
