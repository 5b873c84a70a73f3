package dashboard

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/weir-go/weir/server/service"
	"github.com/weir-go/weir/server/topk"
)

// Top keys: what GET /dashboard/topkeys serves, and who may read it.
const (
	// TopKeysK is the number of counters of each sketch: any key with more
	// than 1/TopKeysK of a policy's decisions (or denials) in the window
	// is shown, and a count is too high by at most 1/TopKeysK of them.
	TopKeysK = 64
	// TopKeysPeriod is the period of the two rotating sketches: the table
	// covers the last one to two periods.
	TopKeysPeriod = time.Minute
	// TopKeysShown is the number of keys listed per policy and table.
	TopKeysShown = 10
)

// TopKeysJSON is GET /dashboard/topkeys. Keys are what callers send (API
// keys, addresses, user ids), so they go only to callers with the admin
// scope (everyone when the server has no tokens): for any other caller
// Visible is false and Policies empty. Enabled is false when the server
// runs without the sketch (Options.TopKeys off).
type TopKeysJSON struct {
	Enabled  bool                `json:"enabled"`
	Visible  bool                `json:"visible"`
	K        int                 `json:"k"`
	PeriodMS int64               `json:"period_ms"`
	Policies map[string]topk.Top `json:"policies"`
}

// admin reports whether r's caller has the admin scope.
func (d *Dashboard) admin(r *http.Request) bool {
	verified := r.TLS != nil && len(r.TLS.VerifiedChains) > 0
	return d.o.Auth.ScopeOf(r.Header.Get("Authorization"), verified) >= service.ScopeAdmin
}

func (d *Dashboard) topKeys(w http.ResponseWriter, r *http.Request) {
	out := TopKeysJSON{Enabled: d.keys != nil, K: TopKeysK, PeriodMS: TopKeysPeriod.Milliseconds(), Policies: map[string]topk.Top{}}
	if d.keys != nil && d.admin(r) {
		out.Visible = true
		out.Policies = d.keys.Top(TopKeysShown)
	}
	b, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}

// rotateKeys moves the sketches along and forgets the policies a reload
// removed; record calls it once a step.
func (d *Dashboard) rotateKeys(now int64) {
	if d.keys == nil {
		return
	}
	d.keys.Rotate(now)
	names := map[string]bool{}
	for _, p := range d.svc.Policies() {
		names[p.Name] = true
	}
	d.keys.Retain(func(name string) bool { return names[name] })
}
