package httplimit

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-go/weir"
)

// A Policy applies a limiter to the requests it matches. Every limit of the
// limiter applies to the request's key at once (say 10/s and 1000/day).
type Policy struct {
	// Limiter holds the limits and the store. Required unless Plans is
	// set.
	Limiter *weir.Limiter
	// Plans, instead of Limiter, chooses the limits per client: its
	// override kept in the store, its plan in the table, or the default
	// plan (see [weir.PlanTable]). It is asked with the key function's
	// result ("ip:192.0.2.1"), before the scope is put in front of it. A
	// policy with Plans charges before the handler (no Cost or Count).
	Plans *weir.PlanTable
	// Key names the client. nil means the middleware's key function
	// ([WithKey]; by default [RemoteIP]).
	Key KeyFunc
	// Match selects the requests the policy applies to, for per-route or
	// per-method limits (see [Methods]). nil matches every request.
	Match func(*http.Request) bool
	// Scope sets the policy's keys apart from other policies' keys: with a
	// scope S the store key is len(S) in decimal, ':', S, then the key
	// ("6:login:" + "ip:192.0.2.1"). Without a scope the key is used as it
	// is, unless it starts with a digit: then it gets "0:" before it, which
	// no scoped key starts with. So two distinct (scope, key) pairs never
	// share state, whatever the key function returns. State in a store is identified by (limit
	// name, key): give policies on different routes different scopes (or
	// limits different names) to count them apart.
	Scope string

	// Cost, when set, makes the policy charge each request after the
	// handler, what the handler's [Outcome] says it cost (see
	// [ReportedCost], [HeaderCost]), instead of one unit before it. A
	// cost above what is left is charged all the same: the key goes into
	// debt and its later requests are denied until time has paid it back
	// (capped by each limit's MaxDebt). A negative cost counts as 0.
	Cost func(*Outcome) int64
	// Count, when set, makes the policy charge after the handler too, but
	// only the outcomes it selects (see [StatusIn]): for a login limit that
	// only failed attempts use up, Count: StatusIn(401, 403). It charges
	// Cost, or 1 without a Cost, for an outcome it counts, and nothing for
	// the others.
	Count func(*Outcome) bool
	// Estimate is, for a policy with Cost or Count, what a request is
	// expected to cost: it is taken before the handler runs, as a plain
	// policy takes one unit, and the request is denied if it does not fit;
	// after the handler the charge is settled to the actual cost (the
	// difference given back, or the excess charged as debt). An estimate
	// above a limit's capacity takes the capacity. nil, or 0, only checks
	// that the key has a unit left (it is not exhausted nor in debt) and
	// takes nothing: concurrent requests of one key then all pass the
	// check, and each is charged after (see docs/costs.md for the bound).
	Estimate func(*http.Request) int64
}

func (p Policy) apply(m *Middleware) { m.specs = append(m.specs, p) }

// Methods returns a Policy.Match that selects requests with one of the
// given methods.
func Methods(methods ...string) func(*http.Request) bool {
	set := append([]string(nil), methods...)
	return func(r *http.Request) bool {
		for _, m := range set {
			if r.Method == m {
				return true
			}
		}
		return false
	}
}

// An Option configures a [Middleware]. A [Policy] is an Option (it adds
// the policy), and so is every With function.
type Option interface{ apply(*Middleware) }

type optionFunc func(*Middleware)

func (f optionFunc) apply(m *Middleware) { f(m) }

// WithKey sets the key function of policies that have none. The default
// is [RemoteIP]: the direct peer's address, forwarding headers ignored.
func WithKey(f KeyFunc) Option { return optionFunc(func(m *Middleware) { m.key = f }) }

// WithHeaders selects the rate-limit fields written on every response.
// The default is [HeadersDraft].
func WithHeaders(mode HeaderMode) Option {
	return optionFunc(func(m *Middleware) { m.mode = mode })
}

// WithOnLimited replaces the answer to a request that a limit denied. When
// f runs, the RateLimit fields and Retry-After are already set; f writes
// the status (normally 429) and the body. res is valid only during the
// call. The default writes an application/problem+json body of type
// https://iana.org/assignments/http-problem-types#quota-exceeded listing
// the violated policies.
func WithOnLimited(f func(w http.ResponseWriter, r *http.Request, res *Result)) Option {
	return optionFunc(func(m *Middleware) { m.onLimited = f })
}

// WithOnUnkeyed replaces the answer to a request that a key function could
// not key (err matches [ErrNoKey]). The default answers 401 with a Basic
// challenge when err matches [ErrNoCredentials], 400 otherwise, with an
// application/problem+json body. The request is never passed on.
func WithOnUnkeyed(f func(w http.ResponseWriter, r *http.Request, err error)) Option {
	return optionFunc(func(m *Middleware) { m.onUnkeyed = f })
}

// WithOnError replaces the answer when no decision could be made: the store
// failed (err matches weir.ErrUnavailable, including a decision whose Source
// is weir.SourceFailClosed), or a key function or the store reported another
// error. The default answers 503 with Retry-After: 1 for an unavailable
// store and 500 otherwise; it never passes the request on.
func WithOnError(f func(w http.ResponseWriter, r *http.Request, err error)) Option {
	return optionFunc(func(m *Middleware) { m.onError = f })
}

// WithOnChargeError sets a function called when a policy that charges
// after the handler could not charge (the store failed): the response is
// already on its way, so the request cannot be refused; the charge is
// lost. The default ignores the error.
func WithOnChargeError(f func(r *http.Request, err error)) Option {
	return optionFunc(func(m *Middleware) { m.onChargeError = f })
}

// WithMaxKeyLength caps the length of a key (scope included). Longer keys
// are answered like unkeyed requests, without a store write. The default
// is 256 bytes.
func WithMaxKeyLength(n int) Option {
	return optionFunc(func(m *Middleware) { m.maxKey = n })
}

// A Result is the middleware's decision on one request, as given to the
// OnLimited handler.
type Result struct {
	// Decision is the deciding limit's decision: when denied, the limit
	// that denied with the longest RetryAfter.
	Decision weir.Decision
	// Limits are the limits that were evaluated, and Statuses their
	// outcomes, in the same order.
	Limits   []weir.Limit
	Statuses []weir.Status
}

// Violated returns the names of the limits that denied the request.
func (r *Result) Violated() []string {
	var names []string
	for i, s := range r.Statuses {
		if !s.Allowed {
			names = append(names, r.Limits[i].Name)
		}
	}
	if len(names) == 0 && !r.Decision.Allowed {
		names = append(names, r.Decision.Limit.Name)
	}
	return names
}

// A Middleware limits HTTP requests by key, writes the rate-limit header
// fields on every response, and answers 429 Too Many Requests, with
// Retry-After, when a limit denies.
//
// For each request it finds the policies that match, keys the request with
// each one's key function, and takes one unit under every limit of every
// matching policy. Policies whose limiters share a store are decided in one
// atomic store call; if the policies use several stores they are decided
// one store after the other, and the units taken from earlier stores are
// given back when a later one denies. Concurrency limits are held while the
// next handler runs and released when it returns (or panics).
//
// The middleware never admits a request it could not decide on: a key
// function error answers 400 or 401, a store error 503 (or 500), unless the
// store itself chose to fail open (a Decision with Source
// weir.SourceFailOpen). A Middleware is safe for concurrent use.
type Middleware struct {
	specs     []Policy
	key       KeyFunc
	mode      HeaderMode
	onLimited func(http.ResponseWriter, *http.Request, *Result)
	onUnkeyed func(http.ResponseWriter, *http.Request, error)
	onError   func(http.ResponseWriter, *http.Request, error)
	maxKey    int

	onChargeError func(*http.Request, error)

	policies []policy
	stores   []weir.Store
	solo     []bool // per store group: it is one after-charging policy's own
	leaseTag string
	leaseSeq atomic.Uint64
	scratch  sync.Pool

	variants  sync.Map // *weir.Limiter of a Policy.Plans -> *policy
	nvariants atomic.Int64
}

type policy struct {
	limits []weir.Limit
	key    KeyFunc // nil: the middleware's
	match  func(*http.Request) bool
	scope  string   // scopePrefix(Policy.Scope)
	group  int      // index in Middleware.stores
	conc   bool     // has a Concurrency limit
	header string   // its RateLimit-Policy items
	items  []string // per limit, the start of its RateLimit item: "name";r=

	// Charging after the handler (Policy.Cost, Count): after is set when
	// either is; the policy then has a store group of its own.
	after    bool
	costFn   func(*Outcome) int64
	count    func(*Outcome) bool
	estimate func(*http.Request) int64
	capacity int64 // smallest Capacity of the limits

	plans *weir.PlanTable // Policy.Plans: limits chosen per key (see forKey)
}

// prepare fills in what p's limits imply: conc, capacity, the header
// parts. field names p in errors.
func (p *policy) prepare(field string) error {
	var hdr []byte
	p.capacity = math.MaxInt64
	p.conc, p.items = false, nil
	for j, l := range p.limits {
		if !validSFString(l.Name) {
			return &weir.FieldError{Field: fmt.Sprintf("%s.limits[%d].Name", field, j), Reason: fmt.Sprintf("%q has characters a header cannot carry (printable ASCII only)", l.Name)}
		}
		if l.Algorithm == weir.Concurrency {
			p.conc = true
			if p.after {
				return &weir.FieldError{Field: field + ".Cost", Reason: fmt.Sprintf("limit %q is a concurrency limit: it holds units while the handler runs and cannot be charged after it", l.Name)}
			}
		}
		p.capacity = min(p.capacity, l.Capacity())
		if j > 0 {
			hdr = append(hdr, ", "...)
		}
		hdr = AppendPolicy(hdr, PolicyOf(l))
		p.items = append(p.items, string(appendSFString(nil, l.Name))+";r=")
	}
	p.header = string(hdr)
	return nil
}

// maxVariants bounds the prepared limit sets kept for Policy.Plans.
const maxVariants = 4 * weir.MaxOverrides

// forKey returns p as it applies to the client raw: p itself, or for a
// Policy.Plans the copy of p with the limits its table chooses, prepared
// on first use.
func (m *Middleware) forKey(r *http.Request, p *policy, raw string) (*policy, error) {
	if p.plans == nil {
		return p, nil
	}
	lim := p.plans.Choose(r.Context(), raw).Limiter
	if v, ok := m.variants.Load(lim); ok {
		return v.(*policy), nil
	}
	v := *p
	v.limits = lim.Limits()
	if err := v.prepare("plan"); err != nil {
		return nil, err
	}
	// Overrides that come and go leave limiters behind: start afresh now
	// and then rather than keep them all.
	if m.nvariants.Add(1) > maxVariants {
		m.variants.Clear()
		m.nvariants.Store(1)
	}
	m.variants.Store(lim, &v)
	return &v, nil
}

// scopePrefix is what a scope puts before a key: "" for no scope, else the
// scope's length, ':' and the scope. The length makes (scope, key) pairs
// injective: "a:"+"b" and "a"+":b" give "2:a:b" and "1:a:b".
func scopePrefix(scope string) string {
	if scope == "" {
		return ""
	}
	return strconv.Itoa(len(scope)) + ":" + scope
}

// storeKey is the key a policy with the given scope prefix decides k
// under: see Policy.Scope.
func storeKey(prefix, k string) string {
	switch {
	case prefix != "":
		return prefix + k
	case k != "" && k[0] >= '0' && k[0] <= '9':
		return "0:" + k
	}
	return k
}

// New returns a middleware with the given policies (at least one) and
// options. Every argument is checked; errors match weir.ErrInvalid and
// name the field.
func New(opts ...Option) (*Middleware, error) {
	m := &Middleware{mode: HeadersDraft, maxKey: 256}
	for _, o := range opts {
		if o != nil {
			o.apply(m)
		}
	}
	if len(m.specs) == 0 {
		return nil, &weir.FieldError{Field: "policies", Reason: "at least one Policy is needed"}
	}
	if m.maxKey < 1 {
		return nil, &weir.FieldError{Field: "MaxKeyLength", Reason: fmt.Sprintf("must be positive (got %d)", m.maxKey)}
	}
	if m.mode > HeadersDraft|HeadersLegacy|HeadersLegacyDelta {
		return nil, &weir.FieldError{Field: "HeaderMode", Reason: fmt.Sprintf("unknown bits in %#x", m.mode)}
	}
	if m.key == nil {
		m.key = RemoteIP()
	}
	if m.onLimited == nil {
		m.onLimited = limited
	}
	if m.onUnkeyed == nil {
		m.onUnkeyed = unkeyed
	}
	if m.onError == nil {
		m.onError = failed
	}
	for i, sp := range m.specs {
		field := fmt.Sprintf("policies[%d]", i)
		switch {
		case sp.Limiter == nil && sp.Plans == nil:
			return nil, &weir.FieldError{Field: field + ".Limiter", Reason: "is nil (set Limiter or Plans)"}
		case sp.Limiter != nil && sp.Plans != nil:
			return nil, &weir.FieldError{Field: field + ".Plans", Reason: "set Limiter or Plans, not both"}
		case sp.Plans != nil && (sp.Cost != nil || sp.Count != nil):
			return nil, &weir.FieldError{Field: field + ".Plans", Reason: "a policy with Plans charges before the handler: no Cost or Count"}
		}
		p := policy{key: sp.Key, match: sp.Match, scope: scopePrefix(sp.Scope), plans: sp.Plans,
			after: sp.Cost != nil || sp.Count != nil, costFn: sp.Cost, count: sp.Count, estimate: sp.Estimate}
		if sp.Estimate != nil && !p.after {
			return nil, &weir.FieldError{Field: field + ".Estimate", Reason: "needs a Cost or a Count: a policy without them charges one unit before the handler"}
		}
		store := weir.Store(nil)
		if sp.Plans != nil {
			store = sp.Plans.Store()
		} else {
			store = sp.Limiter.Store()
			p.limits = sp.Limiter.Limits()
			if err := p.prepare(field); err != nil {
				return nil, err
			}
		}
		if p.after {
			// Its own request: its cost differs from the others' one unit.
			p.group = len(m.stores)
			m.stores = append(m.stores, store)
			m.solo = append(m.solo, true)
		} else {
			p.group = m.group(store)
		}
		m.policies = append(m.policies, p)
	}
	var tag [6]byte
	_, _ = rand.Read(tag[:])
	m.leaseTag = "http-" + base64.RawURLEncoding.EncodeToString(tag[:]) + "-"
	return m, nil
}

// group returns the index of store s in m.stores, adding it if new.
// Stores of uncomparable types are never merged.
func (m *Middleware) group(s weir.Store) int {
	if reflect.TypeOf(s).Comparable() {
		for i, t := range m.stores {
			if m.solo[i] {
				continue
			}
			if reflect.TypeOf(t) == reflect.TypeOf(s) && t == s {
				return i
			}
		}
	}
	m.stores = append(m.stores, s)
	m.solo = append(m.solo, false)
	return len(m.stores) - 1
}

// Handler returns next limited by m. Its signature fits the
// func(http.Handler) http.Handler middleware convention.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.serve(w, r, next) })
}

type scratch struct {
	matched []int
	keys    []string
	pols    []*policy      // per matched policy, as it applies to the key
	reqs    []weir.Request // one per store group
	cost    []int64        // per group, the units taken before the handler
	charged []int64        // per group, the units charged so far
	after   bool           // a matched policy charges after the handler
	items   [][]string     // per group, the RateLimit item starts of its checks
	dec     []weir.Decision
	last    int // the last group decided
	res     Result
	buf     []byte
}

func (m *Middleware) getScratch() *scratch {
	if s, ok := m.scratch.Get().(*scratch); ok {
		return s
	}
	n := len(m.stores)
	return &scratch{reqs: make([]weir.Request, n), items: make([][]string, n), dec: make([]weir.Decision, n), cost: make([]int64, n), charged: make([]int64, n)}
}

// putScratch returns s to the pool. Stale keys stay referenced until the
// slots are reused, which is cheaper than clearing them.
func (m *Middleware) putScratch(s *scratch) {
	s.matched, s.keys, s.pols, s.after = s.matched[:0], s.keys[:0], s.pols[:0], false
	for i := range s.reqs {
		r := &s.reqs[i]
		r.Checks, r.Statuses, r.Lease = r.Checks[:0], r.Statuses[:0], ""
		s.items[i] = s.items[i][:0]
	}
	s.res = Result{Limits: s.res.Limits[:0], Statuses: s.res.Statuses[:0]}
	s.buf = s.buf[:0]
	m.scratch.Put(s)
}

func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	s := m.getScratch()
	defer m.putScratch(s)

	// Match and key.
	var defKey string
	var defErr error
	defDone := false
	conc := false
	for i := range m.policies {
		p := &m.policies[i]
		if p.match != nil && !p.match(r) {
			continue
		}
		var k string
		var err error
		if p.key == nil {
			if !defDone {
				defKey, defErr = m.key(r)
				defDone = true
			}
			k, err = defKey, defErr
		} else {
			k, err = p.key(r)
		}
		if err != nil {
			if errors.Is(err, ErrNoKey) {
				m.onUnkeyed(w, r, err)
			} else {
				m.onError(w, r, err)
			}
			return
		}
		raw := k
		k = storeKey(p.scope, k)
		if len(k) > m.maxKey {
			m.onUnkeyed(w, r, noKey("key of %d bytes exceeds the limit of %d", len(k), m.maxKey))
			return
		}
		pk, err := m.forKey(r, p, raw)
		if err != nil {
			m.onError(w, r, err)
			return
		}
		s.matched = append(s.matched, i)
		s.keys = append(s.keys, k)
		s.pols = append(s.pols, pk)
		conc = conc || pk.conc
	}
	if len(s.matched) == 0 {
		next.ServeHTTP(w, r)
		return
	}

	// One request per store group, checks in policy order.
	lease := ""
	if conc {
		lease = m.leaseTag + strconv.FormatUint(m.leaseSeq.Add(1), 36)
	}
	for j := range s.matched {
		p := s.pols[j]
		req := &s.reqs[p.group]
		for k, l := range p.limits {
			req.Checks = append(req.Checks, weir.Check{Key: s.keys[j], Limit: l})
			s.items[p.group] = append(s.items[p.group], p.items[k])
		}
		if p.conc {
			req.Lease = lease
		}
		s.cost[p.group] = 1
		if p.after {
			est := int64(0)
			if p.estimate != nil {
				est = min(max(p.estimate(r), 0), p.capacity)
			}
			s.cost[p.group], s.charged[p.group] = est, est
			s.after = true
		}
	}
	ctx := r.Context()
	allowed := true
	decider := -1
	for g := range s.reqs {
		req := &s.reqs[g]
		if len(req.Checks) == 0 {
			continue
		}
		req.Cost = s.cost[g]
		req.Statuses = grow(req.Statuses, len(req.Checks))
		d, err := m.stores[g].Take(ctx, req)
		if err == nil && d.Source == weir.SourceFailClosed {
			err = fmt.Errorf("httplimit: store failed closed: %w", weir.ErrUnavailable)
		}
		if err != nil {
			m.giveBack(ctx, s, g)
			m.onError(w, r, err)
			return
		}
		s.dec[g] = d
		s.last = g
		if !d.Allowed {
			allowed = false
			decider = g
			m.giveBack(ctx, s, g)
			break
		}
		if decider < 0 || d.Remaining < s.dec[decider].Remaining {
			decider = g
		}
	}
	s.res.Decision = s.dec[decider]
	m.writeHeaders(w.Header(), s)
	if !allowed {
		w.Header()[hRetryAfter] = []string{strconv.FormatInt(max(ceilSeconds(s.res.Decision.RetryAfter), 1), 10)}
		for g := 0; g <= s.last; g++ {
			req := &s.reqs[g]
			for k := range req.Checks {
				s.res.Limits = append(s.res.Limits, req.Checks[k].Limit)
				s.res.Statuses = append(s.res.Statuses, req.Statuses[k])
			}
		}
		m.onLimited(w, r, &s.res)
		return
	}
	if conc {
		defer m.release(ctx, s, lease)
	}
	if s.after {
		m.serveAfter(w, r, next, s)
		return
	}
	next.ServeHTTP(w, r)
}

func grow(s []weir.Status, n int) []weir.Status {
	if cap(s) < n {
		return make([]weir.Status, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// giveBack refunds the units taken from the groups before group g.
func (m *Middleware) giveBack(ctx context.Context, s *scratch, g int) {
	for i := 0; i < g; i++ {
		req := &s.reqs[i]
		if len(req.Checks) == 0 || !s.dec[i].Allowed || (s.cost[i] == 0 && req.Lease == "") {
			continue
		}
		m.refund(ctx, i, &weir.Request{Checks: req.Checks, Cost: s.cost[i], At: s.dec[i].Time.Add(s.dec[i].Delay), Lease: req.Lease})
	}
}

// release gives back the concurrency units held by the request.
func (m *Middleware) release(ctx context.Context, s *scratch, lease string) {
	for g := range s.reqs {
		req := &s.reqs[g]
		if req.Lease == "" {
			continue
		}
		var checks []weir.Check
		for _, c := range req.Checks {
			if c.Limit.Algorithm == weir.Concurrency {
				checks = append(checks, c)
			}
		}
		m.refund(ctx, g, &weir.Request{Checks: checks, Cost: 1, At: s.dec[g].Time, Lease: lease})
	}
}

func (m *Middleware) refund(ctx context.Context, g int, req *weir.Request) {
	// Give back even if the client went away, but do not hang.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = m.stores[g].Refund(rctx, req)
}

// writeHeaders sets the rate-limit fields for the result in s.
func (m *Middleware) writeHeaders(h http.Header, s *scratch) {
	d := s.res.Decision
	if m.mode&HeadersDraft != 0 {
		// One allocation for both fields' value slices.
		vals := make([]string, 2)
		if len(s.matched) == 1 {
			vals[0] = s.pols[0].header
			h[hRateLimitPolicy] = vals[0:1:1]
		} else {
			b := s.buf[:0]
			for j := range s.matched {
				if j > 0 {
					b = append(b, ", "...)
				}
				b = append(b, s.pols[j].header...)
			}
			vals[0] = string(b)
			h[hRateLimitPolicy] = vals[0:1:1]
			s.buf = b
		}
		if d.Source != weir.SourceFailOpen {
			b := s.buf[:0]
			n := 0
			for g := 0; g <= s.last; g++ {
				req := &s.reqs[g]
				for k := range req.Checks {
					st := &req.Statuses[k]
					// On a denial a limit that would have admitted reports
					// the state after a charge that did not happen: list
					// only the limits that denied, whose numbers are exact.
					if !d.Allowed && st.Allowed {
						continue
					}
					if n > 0 {
						b = append(b, ", "...)
					}
					n++
					b = append(b, s.items[g][k]...)
					b = strconv.AppendInt(b, min(max(st.Remaining, 0), sfMaxInt), 10)
					if req.Checks[k].Limit.Algorithm != weir.Concurrency {
						b = append(b, ";t="...)
						b = strconv.AppendInt(b, min(ceilSeconds(st.ResetAfter), sfMaxInt), 10)
					}
				}
			}
			vals[1] = string(b)
			h[hRateLimit] = vals[1:2:2]
			s.buf = b
		}
	}
	if m.mode&(HeadersLegacy|HeadersLegacyDelta) != 0 && d.Source != weir.SourceFailOpen {
		reset := ceilSeconds(d.ResetAfter)
		if m.mode&HeadersLegacyDelta == 0 {
			now := d.Time
			if now.IsZero() {
				now = time.Now()
			}
			reset = now.Add(time.Duration(reset) * time.Second).Unix()
		}
		vals := make([]string, 3)
		vals[0] = strconv.FormatInt(d.Limit.Quota, 10)
		vals[1] = strconv.FormatInt(max(d.Remaining, 0), 10)
		vals[2] = strconv.FormatInt(reset, 10)
		h[hXLimit], h[hXRemaining], h[hXReset] = vals[0:1:1], vals[1:2:2], vals[2:3:3]
	}
}

// Problem types of the IETF RateLimit draft.
const (
	ProblemQuotaExceeded   = "https://iana.org/assignments/http-problem-types#quota-exceeded"
	ProblemReducedCapacity = "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity"
)

// A Problem is an RFC 9457 problem-details body, as the default handlers
// write it.
type Problem struct {
	Type     string   `json:"type"`
	Title    string   `json:"title"`
	Status   int      `json:"status"`
	Detail   string   `json:"detail,omitempty"`
	Violated []string `json:"violated-policies,omitempty"`
}

// WriteProblem writes p as an application/problem+json response with
// status p.Status.
func WriteProblem(w http.ResponseWriter, p Problem) {
	body, _ := json.Marshal(p)
	h := w.Header()
	h[hContentType] = []string{"application/problem+json"}
	h["Cache-Control"] = []string{"no-store"}
	h["Content-Length"] = []string{strconv.Itoa(len(body) + 1)}
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}

func limited(w http.ResponseWriter, _ *http.Request, res *Result) {
	names := res.Violated()
	WriteProblem(w, Problem{
		Type:     ProblemQuotaExceeded,
		Title:    "Too Many Requests",
		Status:   http.StatusTooManyRequests,
		Detail:   "rate limit exceeded for " + strings.Join(names, ", ") + "; retry after " + w.Header().Get(HeaderRetryAfter) + " s",
		Violated: names,
	})
}

func unkeyed(w http.ResponseWriter, _ *http.Request, err error) {
	if errors.Is(err, ErrNoCredentials) {
		w.Header().Set("WWW-Authenticate", `Basic realm="restricted", charset="UTF-8"`)
		WriteProblem(w, Problem{Type: "about:blank", Title: "Unauthorized", Status: http.StatusUnauthorized, Detail: err.Error()})
		return
	}
	WriteProblem(w, Problem{Type: "about:blank", Title: "Bad Request", Status: http.StatusBadRequest, Detail: err.Error()})
}

func failed(w http.ResponseWriter, _ *http.Request, err error) {
	if errors.Is(err, weir.ErrUnavailable) {
		w.Header()[hRetryAfter] = []string{"1"}
		WriteProblem(w, Problem{Type: ProblemReducedCapacity, Title: "Service Unavailable", Status: http.StatusServiceUnavailable, Detail: "the rate limiter cannot decide right now"})
		return
	}
	WriteProblem(w, Problem{Type: "about:blank", Title: "Internal Server Error", Status: http.StatusInternalServerError, Detail: "the rate limiter failed"})
}
