package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/weir-go/weir"
	"github.com/weir-go/weir/localquota"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/metrics"
)

// Limits on caller input (S3, S4).
const (
	// MaxFields is the most template fields one request may carry.
	MaxFields = 16
	// MaxLeaseLength is the longest lease id accepted on release.
	MaxLeaseLength = 64
	// MaxBatch is the most checks in one batch call.
	MaxBatch = 1000
	// MaxAcquireWait is the longest an acquire may wait for its units
	// (Request.Wait): well under the HTTP server's 10 s write timeout.
	MaxAcquireWait = 5 * time.Second
)

// ErrPermission is returned for an operation that needs the admin scope.
var ErrPermission = errors.New("weir: permission denied: admin scope required")

// A Request asks for a decision under a policy.
type Request struct {
	Policy string
	// Key fills {key} in the policy's key template.
	Key string
	// Fields fill the template's other names.
	Fields map[string]string
	// Cost is the number of units; 0 is a peek that changes nothing.
	Cost int64
	// Wait is, for Acquire, how long it may wait for the units, holding a
	// place in line among the waiters (0: answer at once; at most
	// MaxAcquireWait). Other calls refuse it.
	Wait time.Duration
}

// A Result is the answer to a Request.
type Result struct {
	// Allowed reports whether the request is admitted. A shadow policy
	// always admits; Shadowed then says it would have denied.
	Allowed  bool
	Shadowed bool
	Policy   string
	// LimitName, Limit: the deciding limit's name and quota.
	LimitName string
	Limit     int64
	// Remaining units of that limit.
	Remaining int64
	// RetryAfter is 0 when allowed.
	RetryAfter time.Duration
	ResetAfter time.Duration
	// Source says whether the store decided or a failure policy did.
	Source weir.Source
	// Lease is the lease id of an admitted Acquire.
	Lease string
	// Debt is, after a Report that charged more than was left, the units
	// the deciding limit owes beyond empty: later checks are denied until
	// time repays it (RetryAfter says when one unit is back).
	Debt int64
	// Clamped reports that a Report's charge was cut short by a limit's
	// max debt (debt=N in the limit's text form).
	Clamped bool
}

// PolicyInfo describes a policy for listings.
type PolicyInfo struct {
	Name        string
	Limits      []weir.Limit
	Key         string
	Fields      []string
	Shadow      bool
	OnError     string
	Concurrency bool
	Description string
}

// A Service decides requests against the current policies. It is safe for
// concurrent use.
type Service struct {
	store    *timedStore
	fallback weir.Store
	refresh  time.Duration // of the plan tables; 0: weir.DefaultRefresh
	log      *slog.Logger
	m        *metrics.Metrics
	snap     atomic.Pointer[snapshot]
	parallel int
	keys     KeyCounter // nil: none (keys.go)

	localMu sync.Mutex
	locals  map[localKey]*localquota.Store // kept across reloads that keep them; closed by Close
	// retiring holds the local stores a reload dropped until retireGrace
	// has passed (requests in flight under the old policies may still use
	// them); retired sums the counters of those since closed, by policy.
	retiring    map[*localquota.Store]retiring
	retired     map[string]localquota.Stats
	retireGrace time.Duration
	// peers is the number of live instances last counted (0: unknown).
	peers atomic.Int64
}

// retiring is a local store a reload dropped, waiting for its timer.
type retiring struct {
	policy string
	timer  *time.Timer
}

// defaultRetireGrace is how long a local store a reload dropped stays open
// for requests in flight under the old policies, before it is closed
// (which gives its units back).
const defaultRetireGrace = time.Second

// localKey names the local-quota store of a policy: one per policy and
// settings, so a reload that keeps them keeps the units held.
type localKey struct {
	policy string
	local  config.Local
}

// SetPeers records the number of live instances sharing the store, the
// service itself included (package peers counts them). Policies with
// on_store_error: fallback divide their limits by it, or by
// server.fallback_instances when that is larger.
func (s *Service) SetPeers(n int64) {
	s.peers.Store(n)
	s.m.FallbackShare.Set(float64(s.FallbackShare()))
}

// FallbackShare is what the fallback limits are divided by: the larger of
// the live instances last counted and server.fallback_instances, at least 1.
func (s *Service) FallbackShare() int64 {
	return max(1, s.peers.Load(), s.Config().Server.FallbackInstances)
}

// SetParallel lets up to n checks of one batch be decided at once (see
// envoyrls.Server.SetParallel: worth it for a remote store). Call it
// before serving.
func (s *Service) SetParallel(n int) { s.parallel = max(n, 1) }

type snapshot struct {
	cfg      *config.Config
	policies map[string]*policy
	infos    []PolicyInfo
	locals   map[localKey]bool // the local stores its policies use
}

type policy struct {
	cfg      *config.Policy
	lim      *weir.Limiter
	plans    *weir.PlanTable // chooses the limits per key; nil for concurrency policies
	fb       *weir.Limiter   // nil unless OnErrorFallback
	conc     []weir.Check    // the concurrency limits, Key unset
	quota    map[string]int64
	capacity int64 // smallest Capacity of the limits
	prefix   string
	allowed  prometheus.Counter
	limited  prometheus.Counter
	shadowed prometheus.Counter
	errored  prometheus.Counter
	failOpen prometheus.Counter
	failShut prometheus.Counter
	fallback prometheus.Counter
}

// New returns a service over store with the policies of cfg. fallback is
// the local store used by policies with on_store_error: fallback (usually
// a memory store); it may be nil when no policy uses it.
func New(store, fallback weir.Store, cfg *config.Config, m *metrics.Metrics) (*Service, error) {
	if store == nil {
		return nil, errors.New("service: nil store")
	}
	if m == nil {
		m = metrics.New()
	}
	s := &Service{
		store: newTimedStore(store, m), m: m, parallel: 1, locals: map[localKey]*localquota.Store{},
		retiring: map[*localquota.Store]retiring{}, retired: map[string]localquota.Stats{}, retireGrace: defaultRetireGrace,
		log: slog.Default(),
	}
	if fallback != nil {
		s.fallback = sharedStore{Store: fallback, share: s.FallbackShare}
	}
	if err := m.Registry.Register(localCollector{s}); err != nil {
		return nil, err
	}
	snap, err := s.compile(cfg)
	if err != nil {
		return nil, err
	}
	s.snap.Store(snap)
	m.FallbackShare.Set(float64(s.FallbackShare()))
	return s, nil
}

// Store returns the service's store (instrumented), for other front ends
// such as the Envoy service to share.
func (s *Service) Store() weir.Store { return s.store }

// Metrics returns the service's metrics.
func (s *Service) Metrics() *metrics.Metrics { return s.m }

// Config returns the current configuration.
func (s *Service) Config() *config.Config { return s.snap.Load().cfg }

// Compiled is a validated policy set ready to be swapped in by Apply.
type Compiled struct{ snap *snapshot }

// Compile validates cfg's policies against the service's store without
// applying them.
func (s *Service) Compile(cfg *config.Config) (*Compiled, error) {
	snap, err := s.compile(cfg)
	if err != nil {
		return nil, err
	}
	return &Compiled{snap}, nil
}

// Apply swaps in a compiled policy set. In-flight requests finish under
// the policies they started with. The local-quota stores of policies the
// set drops (or whose local: section it changes) are closed a grace period
// later, which gives back the units they hold.
func (s *Service) Apply(c *Compiled) {
	s.snap.Store(c.snap)
	s.m.FallbackShare.Set(float64(s.FallbackShare()))
	s.retire(c.snap.locals)
}

// retire closes, after retireGrace, the local stores not in keep.
func (s *Service) retire(keep map[localKey]bool) {
	s.localMu.Lock()
	defer s.localMu.Unlock()
	for k, ls := range s.locals {
		if keep[k] {
			continue
		}
		delete(s.locals, k)
		if s.retireGrace <= 0 {
			s.closeRetired(k.policy, ls)
			continue
		}
		s.retiring[ls] = retiring{k.policy, time.AfterFunc(s.retireGrace, func() {
			s.localMu.Lock()
			defer s.localMu.Unlock()
			if r, ok := s.retiring[ls]; ok {
				delete(s.retiring, ls)
				s.closeRetired(r.policy, ls)
			}
		})}
	}
}

// closeRetired closes ls, a store of policy no longer in use, and keeps
// its counters for /metrics. localMu is held.
func (s *Service) closeRetired(policy string, ls *localquota.Store) {
	_ = ls.Close()
	st := ls.Stats()
	st.Lead = 0 // a gauge of a live store
	s.retired[policy] = addStats(s.retired[policy], st)
}

func addStats(a, b localquota.Stats) localquota.Stats {
	a.Blocks += b.Blocks
	a.Taken += b.Taken
	a.Returned += b.Returned
	a.Wasted += b.Wasted
	a.Waits += b.Waits
	a.Refreshes += b.Refreshes
	a.Landed += b.Landed
	a.LandedTime += b.LandedTime
	a.Lead = max(a.Lead, b.Lead)
	return a
}

func (s *Service) compile(cfg *config.Config) (*snapshot, error) {
	if cfg == nil {
		cfg = &config.Config{}
	}
	snap := &snapshot{cfg: cfg, policies: make(map[string]*policy, len(cfg.Policies)), locals: map[localKey]bool{}}
	for i := range cfg.Policies {
		pc := &cfg.Policies[i]
		p := &policy{cfg: pc, prefix: pc.Name + ":", quota: map[string]int64{}, capacity: math.MaxInt64}
		var opts []weir.Option
		for _, l := range pc.Limits {
			// The state of a limit is kept per policy: two policies never
			// share a counter even if their limits look alike.
			l.Name = p.prefix + l.Name
			opts = append(opts, l)
			p.quota[l.Name] = l.Quota
			p.capacity = min(p.capacity, l.Capacity())
			if l.Algorithm == weir.Concurrency {
				p.conc = append(p.conc, weir.Check{Limit: l})
			}
		}
		var store weir.Store = s.store
		if pc.Local != nil {
			ls, err := s.localStore(pc.Name, *pc.Local)
			if err != nil {
				return nil, fmt.Errorf("policy %q: local: %w", pc.Name, err)
			}
			store = ls
			snap.locals[localKey{pc.Name, *pc.Local}] = true
		}
		lim, err := weir.NewLimiter(store, opts...)
		if err != nil {
			return nil, fmt.Errorf("policy %q: %w", pc.Name, err)
		}
		p.lim = lim
		if len(p.conc) == 0 {
			if p.plans, err = s.planTable(cfg, pc, p.prefix, store); err != nil {
				return nil, fmt.Errorf("policy %q: plans: %w", pc.Name, err)
			}
		}
		if pc.OnError == config.OnErrorFallback {
			if s.fallback == nil {
				return nil, fmt.Errorf("policy %q: on_store_error: fallback needs a local store", pc.Name)
			}
			if p.fb, err = weir.NewLimiter(s.fallback, opts...); err != nil {
				return nil, fmt.Errorf("policy %q: %w", pc.Name, err)
			}
		}
		d := s.m.Decisions
		p.allowed = d.WithLabelValues(pc.Name, "allowed")
		p.limited = d.WithLabelValues(pc.Name, "limited")
		p.shadowed = d.WithLabelValues(pc.Name, "shadow_limited")
		p.errored = d.WithLabelValues(pc.Name, "error")
		p.failOpen = s.m.FailOpen.WithLabelValues(pc.Name)
		p.failShut = s.m.FailClosed.WithLabelValues(pc.Name)
		p.fallback = s.m.Fallback.WithLabelValues(pc.Name)
		snap.policies[pc.Name] = p
		snap.infos = append(snap.infos, PolicyInfo{
			Name: pc.Name, Limits: pc.Limits, Key: pc.Key.String(), Fields: pc.Key.Fields(),
			Shadow: pc.Shadow, OnError: pc.OnError.String(), Concurrency: len(p.conc) > 0,
			Description: pc.Description,
		})
	}
	return snap, nil
}

// planTable returns the table that chooses the limits of policy pc per
// key: an override in the store, the policy's key→plan table, its default
// plan (a policy without plans: its own limits, as plan
// config.ReservedPlan). Every plan of cfg is offered to overrides.
func (s *Service) planTable(cfg *config.Config, pc *config.Policy, prefix string, store weir.Store) (*weir.PlanTable, error) {
	pt := weir.Plans{Scope: pc.Name, NamePrefix: prefix, Plans: append([]weir.Plan(nil), cfg.Plans...), Refresh: s.refresh}
	pt.Overrides, _ = s.store.Store.(weir.OverrideStore)
	if pc.Plans != nil {
		pt.Default, pt.Keys = pc.Plans.Default, pc.Plans.Keys
	} else {
		pt.Default = config.ReservedPlan
		pt.Plans = append(pt.Plans, weir.Plan{Name: config.ReservedPlan, Limits: pc.Limits})
	}
	return weir.NewPlanTable(store, pt)
}

// localStore returns the local-quota store of policy with settings l,
// making it on first use.
func (s *Service) localStore(policy string, l config.Local) (*localquota.Store, error) {
	s.localMu.Lock()
	defer s.localMu.Unlock()
	k := localKey{policy, l}
	if ls := s.locals[k]; ls != nil {
		return ls, nil
	}
	opts := []localquota.Option{localquota.WithHold(l.Hold)}
	if l.Optimistic > 0 {
		opts = append(opts, localquota.WithOptimistic(l.Optimistic))
	}
	ls, err := localquota.New(s.store, opts...)
	if err != nil {
		return nil, err
	}
	s.locals[k] = ls
	return ls, nil
}

// Close closes the local-quota stores of policies with a local: section
// (those a reload dropped too), which gives back the units they hold. It
// does not close the store.
func (s *Service) Close() error {
	s.localMu.Lock()
	defer s.localMu.Unlock()
	for _, ls := range s.locals {
		_ = ls.Close() // kept: its counters stay on /metrics
	}
	for ls, r := range s.retiring {
		r.timer.Stop()
		delete(s.retiring, ls)
		s.closeRetired(r.policy, ls)
	}
	return nil
}

// localCollector exports the local-quota counters by policy, summed over
// the stores a policy had across reloads.
type localCollector struct{ s *Service }

var (
	localBlocksDesc   = prometheus.NewDesc("weir_local_blocks_total", "Blocks of units taken from the store by policies with a local: section.", []string{"policy"}, nil)
	localTakenDesc    = prometheus.NewDesc("weir_local_units_taken_total", "Units taken from the store in blocks.", []string{"policy"}, nil)
	localReturnedDesc = prometheus.NewDesc("weir_local_units_returned_total", "Units given back to the store unused.", []string{"policy"}, nil)
	localWastedDesc   = prometheus.NewDesc("weir_local_units_wasted_total", "Units that lapsed unspent or could not be given back.", []string{"policy"}, nil)
	localWaitsDesc    = prometheus.NewDesc("weir_local_waits_total", "Requests of policies with a local: section that waited on the store for units.", []string{"policy"}, nil)
	localRefreshDesc  = prometheus.NewDesc("weir_local_refreshes_total", "Blocks taken ahead of a recurring key's next request by policies with a local: section.", []string{"policy"}, nil)
	localLandedDesc   = prometheus.NewDesc("weir_local_refills_landed_total", "Background Takes (refills and refreshes) of policies with a local: section that came back from the store.", []string{"policy"}, nil)
	localRefillDesc   = prometheus.NewDesc("weir_local_refill_seconds_total", "Round trips of those background Takes, in all.", []string{"policy"}, nil)
	localLeadDesc     = prometheus.NewDesc("weir_local_lead_seconds", "How long before a key's units lapse a refill is asked for (the most of the policy's stores): three smoothed round trips, within [hold/8, hold/2].", []string{"policy"}, nil)
)

func (localCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- localBlocksDesc
	ch <- localTakenDesc
	ch <- localReturnedDesc
	ch <- localWastedDesc
	ch <- localWaitsDesc
	ch <- localRefreshDesc
	ch <- localLandedDesc
	ch <- localRefillDesc
	ch <- localLeadDesc
}

func (c localCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.localMu.Lock()
	sums := map[string]localquota.Stats{}
	for k, ls := range c.s.locals {
		sums[k.policy] = addStats(sums[k.policy], ls.Stats())
	}
	for ls, r := range c.s.retiring {
		sums[r.policy] = addStats(sums[r.policy], ls.Stats())
	}
	for p, st := range c.s.retired {
		sums[p] = addStats(sums[p], st)
	}
	c.s.localMu.Unlock()
	for p, st := range sums {
		ch <- prometheus.MustNewConstMetric(localBlocksDesc, prometheus.CounterValue, float64(st.Blocks), p)
		ch <- prometheus.MustNewConstMetric(localTakenDesc, prometheus.CounterValue, float64(st.Taken), p)
		ch <- prometheus.MustNewConstMetric(localReturnedDesc, prometheus.CounterValue, float64(st.Returned), p)
		ch <- prometheus.MustNewConstMetric(localWastedDesc, prometheus.CounterValue, float64(st.Wasted), p)
		ch <- prometheus.MustNewConstMetric(localWaitsDesc, prometheus.CounterValue, float64(st.Waits), p)
		ch <- prometheus.MustNewConstMetric(localRefreshDesc, prometheus.CounterValue, float64(st.Refreshes), p)
		ch <- prometheus.MustNewConstMetric(localLandedDesc, prometheus.CounterValue, float64(st.Landed), p)
		ch <- prometheus.MustNewConstMetric(localRefillDesc, prometheus.CounterValue, st.LandedTime.Seconds(), p)
		ch <- prometheus.MustNewConstMetric(localLeadDesc, prometheus.GaugeValue, st.Lead.Seconds(), p)
	}
}

// Policies lists the current policies, sorted by name.
func (s *Service) Policies() []PolicyInfo { return s.snap.Load().infos }

// Ping reports whether the store is reachable.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

func fieldErr(field, format string, args ...any) error {
	return &weir.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func (s *Service) lookup(req *Request) (*policy, string, error) {
	if req.Wait != 0 {
		return nil, "", fieldErr("wait_ms", "only acquire waits")
	}
	p, ok := s.snap.Load().policies[req.Policy]
	if !ok {
		if req.Policy == "" {
			return nil, "", fieldErr("policy", "is required")
		}
		return nil, "", fieldErr("policy", "unknown policy %q", clip(req.Policy))
	}
	if len(req.Fields) > MaxFields {
		return nil, "", fieldErr("fields", "at most %d fields (got %d)", MaxFields, len(req.Fields))
	}
	for k, v := range req.Fields {
		if !utf8.ValidString(v) {
			return nil, "", fieldErr("fields."+clip(k), "must be valid UTF-8")
		}
	}
	if !utf8.ValidString(req.Key) {
		return nil, "", fieldErr("key", "must be valid UTF-8")
	}
	key, err := p.cfg.Key.Render(req.Key, req.Fields)
	if err != nil {
		var mf *config.MissingFieldError
		if errors.As(err, &mf) {
			if mf.Field == "key" {
				return nil, "", fieldErr("key", "is required by policy %q", p.cfg.Name)
			}
			return nil, "", fieldErr("fields."+mf.Field, "is required by policy %q (key template %q)", p.cfg.Name, p.cfg.Key.String())
		}
		return nil, "", err
	}
	return p, longKey(key), nil
}

// longKey returns key when it is at most config.MaxKeyLength bytes, and
// otherwise a fixed-size stand-in: the key's first bytes (up to 190, cut
// at a character boundary), "#sha256:" and the SHA-256 of the whole key in
// hex. A stand-in is longer than config.MaxKeyLength, so it is never a
// key used as it is; two long keys share one only if SHA-256 collides. A
// caller that fails open on errors cannot pass a limit with a long key.
func longKey(key string) string {
	if len(key) <= config.MaxKeyLength {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	head := key[:190]
	for len(head) > 0 && !utf8.ValidString(head) {
		head = head[:len(head)-1]
	}
	return head + "#sha256:" + hex.EncodeToString(sum[:])
}

func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

func (p *policy) checkCost(cost int64) error {
	return p.checkCostOf(cost, p.capacity)
}

func (p *policy) checkCostOf(cost, capacity int64) error {
	if cost < 0 {
		return fieldErr("cost", "must not be negative (got %d)", cost)
	}
	if cost > capacity {
		return &weir.FieldError{Field: "cost", Reason: fmt.Sprintf("%d exceeds the capacity %d of policy %q: it can never be admitted", cost, capacity, p.cfg.Name), Err: weir.ErrExceedsCapacity}
	}
	return nil
}

// choose returns the limiter of key: its override's, its plan's, or the
// policy's own.
func (p *policy) choose(ctx context.Context, key string) *weir.Limiter {
	if p.plans == nil {
		return p.lim
	}
	return p.plans.Choose(ctx, key).Limiter
}

// validate checks a request as Check would, without deciding.
func (s *Service) validate(req *Request) error {
	p, key, err := s.lookup(req)
	if err != nil {
		return err
	}
	if len(p.conc) > 0 {
		return fieldErr("policy", "policy %q holds concurrency units: use acquire and release", p.cfg.Name)
	}
	return p.checkCostOf(req.Cost, p.choose(context.Background(), key).Capacity())
}

// CheckBatch decides several requests in order, each on its own. Every
// request is validated before any is decided, so bad input charges
// nothing; an error names the request ("checks[3].cost"). A store failure
// part-way returns the error (earlier requests stay charged).
func (s *Service) CheckBatch(ctx context.Context, reqs []Request) ([]Result, error) {
	if len(reqs) == 0 || len(reqs) > MaxBatch {
		return nil, fieldErr("checks", "want 1 to %d checks (got %d)", MaxBatch, len(reqs))
	}
	for i := range reqs {
		if err := s.validate(&reqs[i]); err != nil {
			return nil, indexed(i, err)
		}
	}
	out := make([]Result, len(reqs))
	if s.parallel > 1 && len(reqs) > 1 {
		errs := make([]error, len(reqs))
		sem := make(chan struct{}, s.parallel)
		var wg sync.WaitGroup
		for i := range reqs {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				out[i], errs[i] = s.Check(ctx, &reqs[i])
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				return nil, indexed(i, err)
			}
		}
		return out, nil
	}
	for i := range reqs {
		r, err := s.Check(ctx, &reqs[i])
		if err != nil {
			return nil, indexed(i, err)
		}
		out[i] = r
	}
	return out, nil
}

func indexed(i int, err error) error {
	var fe *weir.FieldError
	if errors.As(err, &fe) {
		return &weir.FieldError{Field: fmt.Sprintf("checks[%d].%s", i, fe.Field), Reason: fe.Reason, Err: fe.Err}
	}
	return err
}

// Check decides one request and charges it when admitted. It fails for a
// policy holding concurrency units (use Acquire).
func (s *Service) Check(ctx context.Context, req *Request) (Result, error) {
	p, key, err := s.lookup(req)
	if err != nil {
		return Result{}, err
	}
	if len(p.conc) > 0 {
		return Result{}, fieldErr("policy", "policy %q holds concurrency units: use acquire and release", p.cfg.Name)
	}
	lim := p.choose(ctx, key)
	if err := p.checkCostOf(req.Cost, lim.Capacity()); err != nil {
		return Result{}, err
	}
	var d weir.Decision
	if req.Cost == 0 {
		d, err = lim.Peek(ctx, key)
	} else {
		d, err = lim.AllowN(ctx, key, req.Cost)
	}
	if err != nil {
		d, err = s.onError(ctx, p, key, req.Cost, err, false)
		if err != nil {
			return Result{}, err
		}
	}
	r := p.result(d, "")
	s.countKey(p, key, &r)
	return r, nil
}

// onError applies the policy's store-failure mode.
func (s *Service) onError(ctx context.Context, p *policy, key string, cost int64, err error, acquire bool) (weir.Decision, error) {
	if !errors.Is(err, weir.ErrUnavailable) || errors.Is(err, weir.ErrInvalid) {
		p.errored.Inc()
		return weir.Decision{}, err
	}
	switch p.cfg.OnError {
	case config.OnErrorAllow:
		p.failOpen.Inc()
		return weir.Decision{Allowed: true, Limit: p.lim.Limits()[0], Source: weir.SourceFailOpen}, nil
	case config.OnErrorDeny:
		p.failShut.Inc()
		return weir.Decision{Allowed: false, Limit: p.lim.Limits()[0], RetryAfter: time.Second, Source: weir.SourceFailClosed}, nil
	case config.OnErrorFallback:
		if !acquire {
			var d weir.Decision
			var ferr error
			if cost == 0 {
				d, ferr = p.fb.Peek(ctx, key)
			} else {
				d, ferr = p.fb.AllowN(ctx, key, cost)
			}
			if ferr == nil {
				p.fallback.Inc()
				d.Source = weir.SourceFallback
				return d, nil
			}
		}
	}
	p.errored.Inc()
	return weir.Decision{}, err
}

func (p *policy) result(d weir.Decision, lease string) Result {
	r := Result{
		Allowed:    d.Allowed,
		Policy:     p.cfg.Name,
		LimitName:  strings.TrimPrefix(d.Limit.Name, p.prefix),
		Limit:      d.Limit.Quota,
		Remaining:  d.Remaining,
		RetryAfter: d.RetryAfter,
		ResetAfter: d.ResetAfter,
		Source:     d.Source,
		Lease:      lease,
	}
	switch {
	case d.Allowed:
		p.allowed.Inc()
	case p.cfg.Shadow:
		p.shadowed.Inc()
		r.Allowed, r.Shadowed, r.RetryAfter = true, true, 0
	default:
		p.limited.Inc()
	}
	return r
}

// Report accounts for work whose cost is known only once it is done
// (LLM tokens, bytes, rows): req.Cost is the actual cost, and reserved the
// units a Check already took for that work (0 when the check was a peek,
// cost 0, or when nothing was checked). The difference is settled, as
// weir.Limiter.Settle does: an actual above reserved charges the excess
// whether or not it fits, and the key may go into debt (later checks are
// denied until time repays it, capped by a limit's max debt); an actual
// below reserved gives the difference back (never above a limit's full
// quota). A report is never refused: the answer is Allowed, and its
// Remaining, RetryAfter (until one unit is back), Debt and Clamped
// describe the key once settled. Units given back are given back at the
// time of the report (the server keeps no record of the check), so a
// window that ended since the check gets nothing back.
//
// It takes the same input as Check and refuses the same bad input, and
// also a negative or too large cost (above weir.MaxDebtUnits), a reserved
// that is negative or above what a check could have taken (the policy's
// capacity), and a policy with a concurrency limit. A shadow policy is
// charged like any other. When the store fails, a policy with
// on_store_error: fallback charges its local fallback; the others return
// the error (the work is done: there is nothing to allow or deny).
func (s *Service) Report(ctx context.Context, req *Request, reserved int64) (Result, error) {
	p, key, err := s.lookup(req)
	if err != nil {
		return Result{}, err
	}
	if len(p.conc) > 0 {
		return Result{}, fieldErr("policy", "policy %q holds concurrency units: reports are for rate limits (use acquire and release)", p.cfg.Name)
	}
	if req.Cost < 0 {
		return Result{}, fieldErr("cost", "must not be negative (got %d)", req.Cost)
	}
	if req.Cost > weir.MaxDebtUnits {
		return Result{}, fieldErr("cost", "at most %d (got %d)", int64(weir.MaxDebtUnits), req.Cost)
	}
	if reserved < 0 {
		return Result{}, fieldErr("reserved", "must not be negative (got %d)", reserved)
	}
	if reserved > p.capacity {
		return Result{}, &weir.FieldError{Field: "reserved", Reason: fmt.Sprintf("%d exceeds the capacity %d of policy %q: no check could have taken it", reserved, p.capacity, p.cfg.Name), Err: weir.ErrExceedsCapacity}
	}
	d, err := settle(ctx, p.choose(ctx, key), key, reserved, req.Cost)
	if err != nil && p.fb != nil && errors.Is(err, weir.ErrUnavailable) && !errors.Is(err, weir.ErrInvalid) {
		if d, err = settle(ctx, p.fb, key, reserved, req.Cost); err == nil {
			p.fallback.Inc()
			d.Source = weir.SourceFallback
		}
	}
	if err != nil {
		p.errored.Inc()
		return Result{}, err
	}
	r := Result{
		Allowed:    true,
		Policy:     p.cfg.Name,
		LimitName:  strings.TrimPrefix(d.Limit.Name, p.prefix),
		Limit:      d.Limit.Quota,
		Remaining:  d.Remaining,
		RetryAfter: d.RetryAfter,
		ResetAfter: d.ResetAfter,
		Source:     d.Source,
		Debt:       d.Debt,
		Clamped:    d.Clamped,
	}
	return r, nil
}

// settle settles reserved units to actual on lim and returns the key's
// state after: the charge's decision, or a peek after a give-back.
func settle(ctx context.Context, lim *weir.Limiter, key string, reserved, actual int64) (weir.Decision, error) {
	d, err := lim.Settle(ctx, key, reserved, time.Now(), actual)
	if err != nil || actual > reserved {
		return d, err
	}
	d, err = lim.Peek(ctx, key)
	// A peek's Allowed says whether one unit is left; a report is never
	// refused, and RetryAfter already says when a unit is back.
	d.Allowed = true
	return d, err
}

// Acquire takes cost units under every limit of the policy, holding the
// concurrency units until Release (or their TTL). An admitted result
// carries the lease id. With req.Wait it waits that long at most for a
// concurrency policy's units, in line with the other waiters (Go
// Limiter.Acquire callers on the same store included).
func (s *Service) Acquire(ctx context.Context, req *Request) (Result, error) {
	plain := *req
	plain.Wait = 0
	p, key, err := s.lookup(&plain)
	if err != nil {
		return Result{}, err
	}
	if err := p.checkCost(req.Cost); err != nil {
		return Result{}, err
	}
	if req.Cost == 0 {
		return Result{}, fieldErr("cost", "must be at least 1 to acquire")
	}
	if len(p.conc) == 0 {
		// A lease of a rate limit would hold nothing: refuse it rather
		// than answer a lease that release cannot undo.
		return Result{}, fieldErr("policy", "%q has no concurrency limit: acquire and release are for concurrency policies (algo=concurrency); use check for rate limits", p.cfg.Name)
	}
	if req.Wait < 0 {
		return Result{}, fieldErr("wait_ms", "must not be negative")
	}
	if req.Wait > MaxAcquireWait {
		return Result{}, fieldErr("wait_ms", "at most %d", MaxAcquireWait.Milliseconds())
	}
	var lease *weir.Lease
	var d weir.Decision
	if req.Wait > 0 && len(p.conc) > 0 && !p.cfg.Shadow {
		lease, d, err = s.acquireWaiting(ctx, p, key, req)
	} else {
		lease, d, err = p.lim.TryAcquire(ctx, key, req.Cost)
	}
	if err != nil {
		d, err = s.onError(ctx, p, key, req.Cost, err, true)
		if err != nil {
			return Result{}, err
		}
	}
	id := ""
	if lease != nil {
		id = lease.ID()
	}
	r := p.result(d, id)
	if r.Shadowed {
		r.Lease = ""
	}
	s.countKey(p, key, &r)
	return r, nil
}

// WaitMS converts a wait in milliseconds, as the HTTP and gRPC APIs carry
// it, into Request.Wait without overflowing: a value out of range stays out
// of range, so Acquire refuses it.
func WaitMS(ms int64) time.Duration {
	switch {
	case ms < 0:
		return -1
	case ms > MaxAcquireWait.Milliseconds():
		return MaxAcquireWait + time.Millisecond
	}
	return time.Duration(ms) * time.Millisecond
}

// acquireWaiting waits up to req.Wait for the units with Limiter.Acquire,
// which keeps a place in line; when the wait runs out it tries once more,
// so the answer is a lease or a denial with its decision.
func (s *Service) acquireWaiting(ctx context.Context, p *policy, key string, req *Request) (*weir.Lease, weir.Decision, error) {
	wctx, cancel := context.WithTimeout(ctx, req.Wait)
	defer cancel()
	lease, err := p.lim.Acquire(wctx, key, req.Cost)
	switch {
	case err == nil:
		return lease, lease.Decision(), nil
	case ctx.Err() != nil:
		return nil, weir.Decision{}, ctx.Err() // the caller went away
	case errors.Is(err, weir.ErrLimited), errors.Is(err, context.DeadlineExceeded):
		return p.lim.TryAcquire(ctx, key, req.Cost)
	}
	return nil, weir.Decision{}, err
}

// Release gives back the concurrency units held by lease. Releasing an
// unknown or expired lease is not an error.
func (s *Service) Release(ctx context.Context, req *Request, lease string) error {
	p, key, err := s.lookup(req)
	if err != nil {
		return err
	}
	if lease == "" {
		return fieldErr("lease", "is required")
	}
	if len(lease) > MaxLeaseLength {
		return fieldErr("lease", "longer than %d bytes", MaxLeaseLength)
	}
	if len(p.conc) == 0 {
		return nil
	}
	checks := make([]weir.Check, len(p.conc))
	for i, c := range p.conc {
		checks[i] = weir.Check{Key: key, Limit: c.Limit}
	}
	return s.store.Refund(ctx, &weir.Request{Checks: checks, Cost: max(req.Cost, 1), Lease: lease, At: time.Now()})
}

// Reset forgets the state of the request's key under every limit of the
// policy. admin must be true (the caller holds the admin scope).
func (s *Service) Reset(ctx context.Context, req *Request, admin bool) error {
	if !admin {
		return ErrPermission
	}
	p, key, err := s.lookup(req)
	if err != nil {
		return err
	}
	// The policy's own limits, and those of the key's plan or override,
	// which may add limits of their own.
	seen := map[string]bool{}
	var checks []weir.Check
	for _, lim := range []*weir.Limiter{p.lim, p.choose(ctx, key)} {
		for _, l := range lim.Limits() {
			if !seen[l.Name] {
				seen[l.Name] = true
				checks = append(checks, weir.Check{Key: key, Limit: l})
			}
		}
	}
	return p.lim.Store().Reset(ctx, checks)
}
