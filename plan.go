package weir

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A Plan is a named set of limits ("free: 10/s and 1000/day"), one of the
// tiers a [PlanTable] chooses from per key.
type Plan struct {
	// Name identifies the plan in tables and overrides: 1 to 64 letters,
	// digits, '.', '_' or '-'.
	Name string
	// Limits are applied all at once, as by a [Limiter]. Unnamed limits are
	// named by the table (see [PlanTable]) so that a key's state carries
	// over between plans.
	Limits []Limit
}

// Plans configures a [PlanTable]. Every field but Refresh is required.
type Plans struct {
	// Scope names the table in the store's overrides (Override.Scope):
	// tables with the same Scope on the same store share overrides. The
	// server uses the policy name.
	Scope string
	// Plans are the tiers; names must be unique.
	Plans []Plan
	// Default is the plan of every key that has neither an override nor an
	// entry in Keys.
	Default string
	// Keys maps a key to its plan's name (the static key→plan table).
	Keys map[string]string
	// Overrides is where the overrides are kept; nil means the store
	// itself when it is an [OverrideStore] (otherwise the table has none).
	// Set it when store wraps one (an instrumented store, a local quota).
	Overrides OverrideStore
	// NamePrefix is put before the name of every limit of the table, the
	// overrides' included, to keep their state apart from other tables on
	// the same store (the server uses "POLICY:"). Empty by default.
	NamePrefix string
	// Refresh is how often the cached copy of the store's overrides is
	// brought up to date (one cheap OverrideVersion call, and a listing when
	// it changed). 0 means DefaultRefresh; a negative value means only
	// explicit [PlanTable.Refresh] calls.
	Refresh time.Duration
}

// DefaultRefresh is how often a [PlanTable] refreshes its copy of the
// overrides by default: a change made by any process is used by all
// within about this long.
const DefaultRefresh = time.Second

// A PlanTable chooses each key's limits from, in order: a live override
// kept in the store ([OverrideStore]), the static key→plan table
// (Plans.Keys), and the default plan. It holds one [Limiter] per plan, so
// a choice is a map lookup: [PlanTable.Choose] returns the limiter to call.
//
//	t, err := weir.NewPlanTable(store, weir.Plans{
//		Scope:   "api",
//		Plans:   []weir.Plan{{Name: "free", Limits: []weir.Limit{weir.PerSecond(10)}}, {Name: "pro", Limits: []weir.Limit{weir.PerSecond(100)}}},
//		Default: "free",
//	})
//	d, err := t.Allow(ctx, "customer:42")
//
// The overrides are cached: every Refresh interval, the first call to
// Choose (or Allow, Wait) asks the store whether they changed
// (OverrideVersion) and reloads them if so; other calls meanwhile use the
// cached copy and never wait for it. If the store fails, the last copy is
// kept and the error is reported by [PlanTable.Err]. No goroutine is
// started. An override whose Expires has passed is ignored at once, even
// before the next refresh. An override naming a plan the table does not
// have is ignored (the key keeps its table plan) and reported by Err.
//
// State carries over between plans, so changing a key's plan neither
// resets it nor locks it out beyond what its counts imply
// (docs/algorithms.md, "State under a changed limit"): state is kept per
// limit name, and an unnamed limit is named by its shape rather than its
// numbers. An unnamed limit takes the name of the default plan's limit of
// the same Period and Algorithm; failing that, the shape itself ("per-s",
// "per-d-fixed-window"). "10/s" in the free plan and "100/s burst=200" in
// the pro plan are then the same state, counted under new numbers.
//
// A PlanTable is safe for concurrent use.
type PlanTable struct {
	store    Store
	ovs      OverrideStore // nil when store keeps no overrides
	scope    string
	prefix   string
	refresh  time.Duration
	opts     []Option
	def      *PlanChoice
	plans    map[string]*PlanChoice
	keys     map[string]*PlanChoice
	defNames map[string]string // shape → name of the default plan's limit

	snap   atomic.Pointer[planSnapshot]
	mu     sync.Mutex // held while refreshing
	errMu  sync.Mutex
	err    error
	cache  map[string]*Limiter // explicit override limits → limiter (guarded by mu)
	nowFor func() time.Time
}

// A PlanChoice is the limits a [PlanTable] chose for a key.
type PlanChoice struct {
	// Limiter applies the chosen limits; call it with the same key.
	Limiter *Limiter
	// Plan is the chosen plan's name; "" when an override gives explicit
	// limits.
	Plan string
	// Override is the override that chose, or nil.
	Override *Override
}

// Limits returns the chosen limits, named.
func (c PlanChoice) Limits() []Limit { return c.Limiter.Limits() }

type planSnapshot struct {
	version  int64
	loaded   time.Time
	byKey    map[string]*PlanChoice
	complete bool // the overrides were read at least once
}

// NewPlanTable returns a table over store. opts are applied to the limiter
// of every plan ([MaxWait], [WithLeaseID]); limits come from the plans
// only. It reads the store's overrides once before returning, when store
// is an [OverrideStore]; if that fails the table starts without them and
// Err reports why.
func NewPlanTable(store Store, cfg Plans, opts ...Option) (*PlanTable, error) {
	if store == nil {
		return nil, &FieldError{Field: "store", Reason: "is nil"}
	}
	var probe config
	for _, o := range opts {
		if o != nil {
			o.apply(&probe)
		}
	}
	if len(probe.limits) > 0 {
		return nil, &FieldError{Field: "opts", Reason: "limits come from Plans, not options"}
	}
	if !validScope(cfg.Scope) {
		return nil, &FieldError{Field: "Plans.Scope", Reason: fmt.Sprintf("%q: use 1 to 64 letters, digits, '.', '_' or '-'", cfg.Scope)}
	}
	t := &PlanTable{store: store, scope: cfg.Scope, prefix: cfg.NamePrefix, refresh: cfg.Refresh, opts: opts,
		plans: map[string]*PlanChoice{}, keys: map[string]*PlanChoice{}, defNames: map[string]string{},
		cache: map[string]*Limiter{}, nowFor: time.Now}
	if t.refresh == 0 {
		t.refresh = DefaultRefresh
	}
	t.ovs = cfg.Overrides
	if t.ovs == nil {
		t.ovs, _ = store.(OverrideStore)
	}
	var def *Plan
	for i := range cfg.Plans {
		if cfg.Plans[i].Name == cfg.Default {
			def = &cfg.Plans[i]
		}
	}
	if def == nil {
		return nil, &FieldError{Field: "Plans.Default", Reason: fmt.Sprintf("%q is not one of the plans", cfg.Default)}
	}
	for _, l := range def.Limits {
		if l.Name != "" {
			t.defNames[shapeName(l)] = l.Name
		}
	}
	for _, l := range def.Limits {
		if s := shapeName(l); l.Name == "" && t.defNames[s] == "" {
			t.defNames[s] = s
		}
	}
	for i, p := range cfg.Plans {
		field := fmt.Sprintf("Plans.Plans[%d]", i)
		if !validScope(p.Name) {
			return nil, &FieldError{Field: field + ".Name", Reason: fmt.Sprintf("%q: use 1 to 64 letters, digits, '.', '_' or '-'", p.Name)}
		}
		if t.plans[p.Name] != nil {
			return nil, &FieldError{Field: field + ".Name", Reason: fmt.Sprintf("duplicate plan %q", p.Name)}
		}
		if len(p.Limits) == 0 {
			return nil, &FieldError{Field: field + ".Limits", Reason: "at least one Limit is needed"}
		}
		lim, err := t.limiter(field+".Limits", p.Limits)
		if err != nil {
			return nil, err
		}
		t.plans[p.Name] = &PlanChoice{Limiter: lim, Plan: p.Name}
	}
	t.def = t.plans[cfg.Default]
	for k, name := range cfg.Keys {
		c := t.plans[name]
		if c == nil {
			return nil, &FieldError{Field: fmt.Sprintf("Plans.Keys[%q]", k), Reason: fmt.Sprintf("%q is not one of the plans", name)}
		}
		t.keys[k] = c
	}
	t.snap.Store(&planSnapshot{version: -1})
	if t.ovs != nil {
		_ = t.Refresh(context.Background())
	}
	return t, nil
}

// shapeName names a limit by its period and algorithm, not its numbers.
func shapeName(l Limit) string {
	s := "per-" + formatPeriod(l.Period)
	if l.Algorithm != TokenBucket {
		s += "-" + l.Algorithm.String()
	}
	return s
}

// NameLimits names the unnamed limits of ls as a table whose default plan
// has the limits def names them (see [PlanTable]): an unnamed limit takes
// the name of def's limit of the same Period and Algorithm, else its shape
// ("per-s"). Named limits keep their names. Servers use it to name the
// limits of plans and overrides so that state carries over.
func NameLimits(def, ls []Limit) []Limit {
	names := map[string]string{}
	for _, l := range def {
		if l.Name != "" {
			names[shapeName(l)] = l.Name
		}
	}
	return nameLimits(names, ls)
}

func nameLimits(names map[string]string, ls []Limit) []Limit {
	out := make([]Limit, len(ls))
	for i, l := range ls {
		if l.Name == "" {
			s := shapeName(l)
			l.Name = s
			if n := names[s]; n != "" {
				l.Name = n
			}
		}
		out[i] = l
	}
	return out
}

// limiter builds the limiter of a plan's or override's limits.
func (t *PlanTable) limiter(field string, ls []Limit) (*Limiter, error) {
	if err := validateLimits(field, ls); err != nil {
		return nil, err
	}
	opts := make([]Option, 0, len(ls)+len(t.opts))
	for _, l := range nameLimits(t.defNames, ls) {
		l.Name = t.prefix + l.Name
		opts = append(opts, l)
	}
	opts = append(opts, t.opts...)
	lim, err := NewLimiter(t.store, opts...)
	if err != nil {
		fe := err.(*FieldError)
		return nil, &FieldError{Field: field + strings.TrimPrefix(fe.Field, "limits"), Reason: fe.Reason}
	}
	return lim, nil
}

// Store returns the store the table's limiters decide in.
func (t *PlanTable) Store() Store { return t.store }

// Scope returns the scope the table's overrides are stored under.
func (t *PlanTable) Scope() string { return t.scope }

// Plan returns the limiter of the plan named name.
func (t *PlanTable) Plan(name string) (*Limiter, bool) {
	c, ok := t.plans[name]
	if !ok {
		return nil, false
	}
	return c.Limiter, true
}

// Choose returns the limits for key: its live override, else its entry in
// Plans.Keys, else the default plan. It refreshes the cached overrides
// when they are older than the Refresh interval (see [PlanTable]).
func (t *PlanTable) Choose(ctx context.Context, key string) PlanChoice {
	s := t.snap.Load()
	if t.ovs != nil && t.refresh > 0 && t.nowFor().Sub(s.loaded) >= t.refresh && t.mu.TryLock() {
		t.refreshLocked(ctx)
		t.mu.Unlock()
		s = t.snap.Load()
	}
	if c := s.byKey[key]; c != nil && !c.Override.Expired(t.nowFor()) {
		return *c
	}
	if c := t.keys[key]; c != nil {
		return *c
	}
	return *t.def
}

// Allow is shorthand for Choose(ctx, key).Limiter.Allow(ctx, key).
func (t *PlanTable) Allow(ctx context.Context, key string) (Decision, error) {
	return t.Choose(ctx, key).Limiter.Allow(ctx, key)
}

// AllowN is shorthand for Choose(ctx, key).Limiter.AllowN(ctx, key, n).
func (t *PlanTable) AllowN(ctx context.Context, key string, n int64) (Decision, error) {
	return t.Choose(ctx, key).Limiter.AllowN(ctx, key, n)
}

// Wait is shorthand for Choose(ctx, key).Limiter.Wait(ctx, key).
func (t *PlanTable) Wait(ctx context.Context, key string) (Decision, error) {
	return t.Choose(ctx, key).Limiter.Wait(ctx, key)
}

// Err returns the error of the last refresh, or of an override the table
// could not use; nil when the last refresh succeeded and every override
// was used.
func (t *PlanTable) Err() error {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	return t.err
}

func (t *PlanTable) setErr(err error) {
	t.errMu.Lock()
	t.err = err
	t.errMu.Unlock()
}

// Refresh brings the cached overrides up to date now, whatever their age.
func (t *PlanTable) Refresh(ctx context.Context) error {
	if t.ovs == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.refreshLocked(ctx)
}

func (t *PlanTable) refreshLocked(ctx context.Context) error {
	old := t.snap.Load()
	now := t.nowFor()
	v, err := t.ovs.OverrideVersion(ctx)
	if err == nil && old.complete && v == old.version {
		next := *old
		next.loaded = now
		t.snap.Store(&next)
		t.setErr(nil)
		return nil
	}
	var list []Override
	if err == nil {
		list, err = t.ovs.ListOverrides(ctx, t.scope)
	}
	if err != nil {
		// Keep the last copy; try again after a full interval.
		next := *old
		next.loaded = now
		t.snap.Store(&next)
		err = fmt.Errorf("weir: plan table %q: refreshing overrides: %w", t.scope, err)
		t.setErr(err)
		return err
	}
	next := &planSnapshot{version: v, loaded: now, complete: true, byKey: make(map[string]*PlanChoice, len(list))}
	used := make(map[string]*Limiter, len(t.cache))
	var bad error
	for i := range list {
		o := &list[i]
		if o.Expired(now) {
			continue
		}
		c := &PlanChoice{Override: o}
		if o.Plan != "" {
			p := t.plans[o.Plan]
			if p == nil {
				bad = fmt.Errorf("weir: plan table %q: override of key %q names plan %q, which the table does not have", t.scope, o.Key, o.Plan)
				continue
			}
			c.Limiter, c.Plan = p.Limiter, p.Plan
		} else {
			id := limitsID(o.Limits)
			lim := t.cache[id]
			if lim == nil {
				lim, err = t.limiter("Override.Limits", o.Limits)
				if err != nil {
					bad = fmt.Errorf("weir: plan table %q: override of key %q: %w", t.scope, o.Key, err)
					continue
				}
			}
			used[id] = lim
			c.Limiter = lim
		}
		next.byKey[o.Key] = c
	}
	t.cache = used
	t.snap.Store(next)
	t.setErr(bad)
	return nil
}

// limitsID identifies a list of limits, names included.
func limitsID(ls []Limit) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.String())
		b.WriteString(" name=")
		b.WriteString(l.Name)
		b.WriteByte('\n')
	}
	return b.String()
}

// Overrides returns the live overrides the table uses now, ordered by key.
func (t *PlanTable) Overrides() []Override {
	s := t.snap.Load()
	now := t.nowFor()
	out := make([]Override, 0, len(s.byKey))
	for _, c := range s.byKey {
		if !c.Override.Expired(now) {
			out = append(out, *c.Override)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
