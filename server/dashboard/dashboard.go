// Package dashboard serves a small live view of the weir server on its
// HTTP port: the policies, and decisions per second by policy and outcome,
// pushed once a second as a Server-Sent Events stream; the history of the
// last 15 minutes; the store's health (latency, failure paths, its last
// ping) and the local-quota blocks of policies with a local: section.
//
// Keys are shown in one place only: the top-keys tables
// (GET /dashboard/topkeys), from a bounded heavy-hitter sketch (package
// topk), and only to callers with the admin scope. The event stream, the
// history and a locked page never carry a key.
//
// The page is self-contained and reads its data with fetch, so it can send
// a bearer token: when the server requires one, the page asks for it, keeps
// it in the tab's sessionStorage (never in a URL, a cookie or a log) and
// sends it as "Authorization: Bearer" on every data request. A page served
// to a caller without a token ([Dashboard.ServeLocked]) carries no server
// data at all.
package dashboard

import (
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/metrics"
	"github.com/weir-go/weir/server/service"
	"github.com/weir-go/weir/server/topk"
)

//go:embed dashboard.html
var files embed.FS

// page is parsed on first use, not at init: every weir command links
// this package, and only weir serve needs the page.
var page = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("dashboard.html").
		Funcs(template.FuncMap{"label": config.LimitLabel}).
		ParseFS(files, "dashboard.html"))
})

// Dashboard is an http.Handler for GET /dashboard (the page),
// GET /dashboard/policies (the policies, JSON), GET /dashboard/history
// (rates over the last 15 minutes, JSON, see [HistoryJSON]) and
// GET /dashboard/events (the event stream) and GET /dashboard/topkeys
// (see [TopKeysJSON]). All of them need the decision scope when the server
// has tokens, and the top keys the admin scope; [Dashboard.ServeLocked]
// serves the page to callers without one.
type Dashboard struct {
	o        Options
	keys     *topk.Tracker // nil: top keys off
	svc      *service.Service
	m        *metrics.Metrics
	interval time.Duration
	done     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup

	mu     sync.Mutex
	hist   *History       // guarded by mu
	health *healthTracker // guarded by mu
	ping   Ping           // guarded by mu
}

// Options configure a Dashboard. The zero value has no top keys and
// shows every caller with the decision scope the same data.
type Options struct {
	// Auth tells who may read the top keys: callers it grants the admin
	// scope. Nil, or an Auth without tokens, grants it to everyone (the
	// server then listens on loopback only).
	Auth *service.Auth
	// TopKeys counts the key of every decision in a bounded sketch
	// (TopKeysK counters per policy and table) for the top-keys tables.
	// Default off; weir serve turns it on unless --no-top-keys.
	TopKeys bool
	// Store is the store's kind (memory, sqlite, redis), shown beside its
	// last ping.
	Store string
}

// New returns the dashboard of svc. With o.TopKeys it sets itself as the
// service's key counter, so call it before serving.
func New(svc *service.Service, m *metrics.Metrics, o Options) *Dashboard {
	d := &Dashboard{o: o, svc: svc, m: m, interval: time.Second, done: make(chan struct{}),
		hist: NewHistory(Step.Milliseconds(), Span.Milliseconds()), health: newHealthTracker(),
		ping: Ping{Store: o.Store}}
	if o.TopKeys {
		d.keys = topk.NewTracker(TopKeysK, TopKeysPeriod.Milliseconds(), time.Now().UnixMilli())
		svc.SetKeyCounter(d.keys)
	}
	d.wg.Add(1)
	go d.sample()
	return d
}

// Close ends every open event stream and the sampling of the history (call
// it when the server shuts down).
func (d *Dashboard) Close() {
	d.once.Do(func() { close(d.done) })
	d.wg.Wait()
}

// ServeHTTP serves the page, the policies and the event stream. It does
// not check credentials: the server's authentication wraps it.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/dashboard", "/dashboard/":
		d.page(w, http.StatusOK, d.svc.Policies(), false)
	case "/dashboard/policies":
		d.policies(w)
	case "/dashboard/events":
		d.events(w, r)
	case "/dashboard/history":
		d.history(w)
	case "/dashboard/topkeys":
		d.topKeys(w, r)
	default:
		http.NotFound(w, r)
	}
}

// ServeLocked serves the page to a caller that presented no valid token:
// status 401 with a Bearer challenge, and the page without any server data
// (no policies), which asks for a token and then loads its data with it.
func (d *Dashboard) ServeLocked(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="weir"`)
	d.page(w, http.StatusUnauthorized, nil, true)
}

// page writes the page with policies; a locked page asks for a token
// first.
func (d *Dashboard) page(w http.ResponseWriter, code int, policies []service.PolicyInfo, locked bool) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Inline script and style only; data from this origin only; the page
	// may not be framed, and navigating away sends no Referer.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = page().Execute(w, struct {
		Policies []service.PolicyInfo
		Locked   bool
	}{policies, locked})
}

// Policy is one policy as GET /dashboard/policies lists it.
type Policy struct {
	Name        string   `json:"name"`
	Limits      []string `json:"limits"`
	Key         string   `json:"key"`
	Shadow      bool     `json:"shadow"`
	OnError     string   `json:"on_store_error"`
	Description string   `json:"description"`
}

func (d *Dashboard) policies(w http.ResponseWriter) {
	infos := d.svc.Policies()
	out := struct {
		Policies []Policy `json:"policies"`
	}{make([]Policy, 0, len(infos))}
	for _, p := range infos {
		q := Policy{Name: p.Name, Key: p.Key, Shadow: p.Shadow, OnError: p.OnError, Description: p.Description, Limits: []string{}}
		for _, l := range p.Limits {
			q.Limits = append(q.Limits, config.LimitLabel(l))
		}
		out.Policies = append(out.Policies, q)
	}
	b, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}

// ServeOverrides serves GET /dashboard/overrides: the live overrides of
// every policy, JSON ({"overrides": [...]} as GET /v1/overrides answers).
// Overrides name keys, so the server must route it behind the admin
// scope; the page shows the table only when this answers.
func (d *Dashboard) ServeOverrides(w http.ResponseWriter, r *http.Request) {
	list, err := d.svc.ListOverrides(r.Context(), "", true)
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		http.Error(w, "overrides unavailable", http.StatusServiceUnavailable)
		return
	}
	type override struct {
		Policy  string   `json:"policy"`
		Key     string   `json:"key"`
		Plan    string   `json:"plan,omitempty"`
		Limits  []string `json:"limits,omitempty"`
		Expires string   `json:"expires,omitempty"`
		Reason  string   `json:"reason,omitempty"`
		By      string   `json:"by,omitempty"`
	}
	out := struct {
		Overrides []override `json:"overrides"`
	}{make([]override, 0, len(list))}
	for _, o := range list {
		v := override{Policy: o.Scope, Key: o.Key, Plan: o.Plan, Reason: o.Reason, By: o.By}
		for _, l := range o.Limits {
			v.Limits = append(v.Limits, l.String())
		}
		if !o.Expires.IsZero() {
			v.Expires = o.Expires.UTC().Format(time.RFC3339)
		}
		out.Overrides = append(out.Overrides, v)
	}
	b, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

// Snapshot is one event: totals by policy and outcome, Envoy descriptor
// totals by domain and outcome, the store's health as of the last sample
// and its last ping, and the local-quota totals by policy.
type Snapshot struct {
	Time      int64                         `json:"time_ms"`
	Decisions map[string]map[string]float64 `json:"decisions"`
	Envoy     map[string]map[string]float64 `json:"envoy"`
	Store     *Health                       `json:"store,omitempty"`
	Ping      *Ping                         `json:"ping,omitempty"`
	Local     map[string]LocalBlocks        `json:"local"`
}

// Snapshot reads the current counters and the store's health.
func (d *Dashboard) Snapshot() Snapshot {
	mfs, _ := d.m.Registry.Gather()
	s := snapshotFrom(time.Now().UnixMilli(), mfs)
	s.Local = localFrom(mfs)
	d.mu.Lock()
	h, p := d.health.health(), d.ping
	d.mu.Unlock()
	s.Store, s.Ping = &h, &p
	return s
}

// snapshotFrom reads the decision counters out of gathered metrics.
func snapshotFrom(now int64, mfs []*dto.MetricFamily) Snapshot {
	s := Snapshot{Time: now, Decisions: map[string]map[string]float64{}, Envoy: map[string]map[string]float64{}}
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
