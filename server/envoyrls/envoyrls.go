package envoyrls

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/weir-go/weir"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/metrics"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Input bounds (S3). Beyond them the server still decides (Envoy fails
// open on an error, so an error would let the request through unlimited).
const (
	// MaxDescriptors is the most descriptors of one request decided
	// against the store; any beyond that have a limit are answered
	// OVER_LIMIT without counting.
	MaxDescriptors = 1000
	// MaxKeyBytes is the longest descriptor (its entries joined) counted
	// under its own text; a longer one is counted under its SHA-256
	// (hashedKey).
	MaxKeyBytes = 4096
)

// Options are the server-wide settings of the reference's environment.
type Options struct {
	// ShadowMode answers OK overall whatever the descriptors say
	// (SHADOW_MODE=true).
	ShadowMode bool
	// QuotaMode treats every descriptor as a quota descriptor
	// (QUOTA_MODE=true): see config.Descriptor.QuotaMode.
	QuotaMode bool
	// Headers, when Enabled, adds the RateLimit-* response headers of the
	// descriptor closest to its limit (LIMIT_RESPONSE_HEADERS_ENABLED).
	Headers config.EnvoyHeaders
}

// OptionsOf returns the server-wide Envoy settings of cfg.
func OptionsOf(cfg *config.Config) Options {
	return Options{ShadowMode: cfg.EnvoyShadowMode, QuotaMode: cfg.EnvoyQuotaMode, Headers: cfg.EnvoyHeaders}
}

// Server implements the Envoy RateLimitService over a weir store.
type Server struct {
	rlv3.UnimplementedRateLimitServiceServer
	store weir.Store
	m     *metrics.Metrics
	now   func() time.Time
	snap  atomic.Pointer[snapshot]
	// parallel is how many descriptors of one request are decided at
	// once (1: in order, one after another).
	parallel int
}

// SetParallel lets up to n descriptors of one request be decided at once.
// For a remote store (Redis) this lets the store pipeline them in one
// round trip instead of one round trip each; for the memory store,
// sequential (n = 1, the default) is cheaper. Call it before serving.
func (s *Server) SetParallel(n int) { s.parallel = max(n, 1) }

type snapshot struct {
	domains map[string]*domain
	opts    Options
	unknown *counters
}

type domain struct {
	cfg config.Domain
	c   *counters
}

type counters struct {
	ok, over, shadow, unlimited, nolimit prometheus.Counter
}

func newCounters(m *metrics.Metrics, name string) *counters {
	v := m.EnvoyDescriptors
	return &counters{
		ok: v.WithLabelValues(name, "ok"), over: v.WithLabelValues(name, "over_limit"),
		shadow: v.WithLabelValues(name, "shadow_over_limit"), unlimited: v.WithLabelValues(name, "unlimited"),
		nolimit: v.WithLabelValues(name, "no_limit"),
	}
}

// New returns a server over store with the given domains and server-wide
// options. m may be nil.
func New(store weir.Store, domains []config.Domain, opts Options, m *metrics.Metrics) *Server {
	if m == nil {
		m = metrics.New()
	}
	s := &Server{store: store, m: m, now: time.Now, parallel: 1}
	s.Load(domains, opts)
	return s
}

// Load swaps in a new set of domains (already validated by the config
// package) and options. Requests in flight finish with the old set.
func (s *Server) Load(domains []config.Domain, opts Options) {
	snap := &snapshot{domains: map[string]*domain{}, opts: opts, unknown: newCounters(s.m, "unknown")}
	for _, d := range domains {
		snap.domains[d.Name] = &domain{cfg: d, c: newCounters(s.m, d.Name)}
	}
	s.snap.Store(snap)
}

// Domains returns the names of the loaded domains.
func (s *Server) Domains() []string {
	var out []string
	for name := range s.snap.Load().domains {
		out = append(out, name)
	}
	return out
}

// rule is the limit that applies to one descriptor.
type rule struct {
	limit *config.EnvoyLimit
	// shadow: descriptor-level shadow_mode.
	shadow bool
	// quota: descriptor-level quota_mode.
	quota bool
	// key is the counter's key: the entries, with shared wildcard values
	// replaced by their pattern.
	key string
}

// lookup finds the limit for one descriptor, as the reference does. An
// override whose unit is unknown (the reference fails the request, so
// Envoy would let it through) is ignored: the configured limit applies.
func lookup(d *domain, desc *rlcommon.RateLimitDescriptor) rule {
	entries := desc.GetEntries()
	if o := desc.GetLimit(); o != nil {
		if u := config.Unit(o.GetUnit()); u.Seconds() != 0 {
			return rule{limit: &config.EnvoyLimit{RequestsPerUnit: o.GetRequestsPerUnit(), Unit: u}, key: entryKey(entries, nil)}
		}
	}
	node := d.cfg.Root
	var found *config.Descriptor
	var shared []string
	for i, e := range entries {
		k := config.ChildIndex(e.GetKey(), e.GetValue())
		next := node.Children[k]
		pattern := ""
		if next == nil {
			for _, w := range node.Wildcards {
				if strings.HasPrefix(k, strings.TrimSuffix(w, "*")) {
					next = node.Children[w]
					pattern = next.Value
					break
				}
			}
		}
		if next == nil {
			next = node.Children[config.ChildIndex(e.GetKey(), "")]
		}
		if next != nil && next.ShareThreshold && pattern != "" {
			if shared == nil {
				shared = make([]string, len(entries))
			}
			shared[i] = pattern
		}
		if next != nil && next.Limit != nil && i == len(entries)-1 {
			found = next
		}
		if next == nil || len(next.Children) == 0 {
			break
		}
		node = next
	}
	if found == nil {
		return rule{}
	}
	return rule{limit: found.Limit, shadow: found.ShadowMode, quota: found.QuotaMode, key: entryKey(entries, shared)}
}

// hashedKey is the counter key of a descriptor whose entries, joined, are
// longer than MaxKeyBytes: "#sha256:" and the SHA-256 of the joined key in
// hex. No joined key has that shape (every one with an entry holds '='),
// and two long descriptors share a counter only if SHA-256 collides.
func hashedKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "#sha256:" + hex.EncodeToString(sum[:])
}

// entryKey joins the entries unambiguously: k=v&k2=v2, with '%', '&'
// and '=' in keys and values escaped.
func entryKey(entries []*rlcommon.RateLimitDescriptor_Entry, shared []string) string {
	if len(entries) == 1 && shared == nil {
		k, v := entries[0].GetKey(), entries[0].GetValue()
		if plain(k) && plain(v) {
			return k + "=" + v
		}
	}
	var b strings.Builder
	for i, e := range entries {
		if i > 0 {
			b.WriteByte('&')
		}
		writeEscaped(&b, e.GetKey())
		b.WriteByte('=')
		v := e.GetValue()
		if shared != nil && shared[i] != "" {
			v = shared[i]
		}
		writeEscaped(&b, v)
	}
	return b.String()
}

func plain(s string) bool { return !strings.ContainsAny(s, "%&=") }

func writeEscaped(b *strings.Builder, s string) {
	if plain(s) {
		b.WriteString(s)
		return
	}
	b.WriteString(url.QueryEscape(s))
}

// ShouldRateLimit implements the Envoy RateLimitService.
//
// Whatever a request holds, it gets a decision when one is possible: the
// errors left are an empty domain or descriptor list (nothing to limit, as
// the reference) and an unavailable store (Envoy's failure_mode_deny then
// decides).
func (s *Server) ShouldRateLimit(ctx context.Context, req *rlv3.RateLimitRequest) (*rlv3.RateLimitResponse, error) {
	if req.GetDomain() == "" {
		return nil, status.Error(codes.InvalidArgument, "rate limit domain must not be empty")
	}
	descs := req.GetDescriptors()
	if len(descs) == 0 {
		return nil, status.Error(codes.InvalidArgument, "rate limit descriptor list must not be empty")
	}
	snap := s.snap.Load()
	d := snap.domains[req.GetDomain()]
	c := snap.unknown
	if d != nil {
		c = d.c
	}
	decided := descs[:min(len(descs), MaxDescriptors)]
	rules := make([]rule, len(descs))
	if d != nil {
		for i, desc := range descs {
			r := lookup(d, desc)
			if len(r.key) > MaxKeyBytes {
				r.key = hashedKey(r.key)
			}
			rules[i] = r
		}
		// A limit named in another matched limit's replaces is skipped.
		var replaced map[string]bool
		for _, r := range rules {
			if r.limit != nil {
				for _, name := range r.limit.Replaces {
					if replaced == nil {
						replaced = map[string]bool{}
					}
					replaced[name] = true
				}
			}
		}
		for i, r := range rules {
			if r.limit != nil && r.limit.Name != "" && replaced[r.limit.Name] {
				rules[i].limit = nil
			}
		}
	}
	resp := &rlv3.RateLimitResponse{OverallCode: rlv3.RateLimitResponse_OK, Statuses: make([]*rlv3.RateLimitResponse_DescriptorStatus, len(descs))}
	if s.parallel > 1 && len(decided) > 1 {
		if err := s.decideParallel(ctx, req, rules, c, resp.Statuses); err != nil {
			return nil, err
		}
	} else {
		scratch := &weir.Request{Checks: make([]weir.Check, 1)}
		for i, desc := range decided {
			st, err := s.decide(ctx, req, desc, rules[i], c, scratch)
			if err != nil {
				return nil, rpcError(err)
			}
			resp.Statuses[i] = st
		}
	}
	// Descriptors beyond MaxDescriptors are not counted: those with a
	// limit are over it, the others are answered as usual.
	for i := len(decided); i < len(descs); i++ {
		resp.Statuses[i] = s.beyond(rules[i], c)
	}
	resp.OverallCode = overall(resp.Statuses, rules, snap.opts.QuotaMode)
	if snap.opts.Headers.Enabled {
		resp.ResponseHeadersToAdd = headers(resp.Statuses, rules, snap.opts)
	}
	if snap.opts.ShadowMode && resp.OverallCode == rlv3.RateLimitResponse_OVER_LIMIT {
		resp.OverallCode = rlv3.RateLimitResponse_OK
	}
	return resp, nil
}

// beyond answers a descriptor past MaxDescriptors without the store: no
// limit or unlimited as usual, OVER_LIMIT when it has a limit.
func (s *Server) beyond(r rule, c *counters) *rlv3.RateLimitResponse_DescriptorStatus {
	l := r.limit
	switch {
	case l == nil:
		c.nolimit.Inc()
		return &rlv3.RateLimitResponse_DescriptorStatus{Code: rlv3.RateLimitResponse_OK}
	case l.Unlimited:
		c.unlimited.Inc()
		return &rlv3.RateLimitResponse_DescriptorStatus{Code: rlv3.RateLimitResponse_OK, LimitRemaining: math.MaxUint32}
	}
	current := &rlv3.RateLimitResponse_RateLimit{Name: l.Name, RequestsPerUnit: l.RequestsPerUnit, Unit: rlv3.RateLimitResponse_RateLimit_Unit(l.Unit)}
	return overStatus(current, s.now(), l.Unit.Seconds(), r.shadow, c)
}

// overall is the request's code, as the reference computes it: OVER_LIMIT
// when a rate-limit descriptor is over its limit, or when the request has
// quota descriptors (quota_mode, or every descriptor with the global
// quota mode) and every one of them is over. Unlimited descriptors count
// as neither.
func overall(sts []*rlv3.RateLimitResponse_DescriptorStatus, rules []rule, globalQuota bool) rlv3.RateLimitResponse_Code {
	quotas, quotasOver := 0, 0
	for i, st := range sts {
		r := rules[i]
		if r.limit != nil && r.limit.Unlimited {
			continue
		}
		quota := globalQuota || r.limit != nil && r.quota
		over := st.Code == rlv3.RateLimitResponse_OVER_LIMIT
		switch {
		case over && !quota:
			return rlv3.RateLimitResponse_OVER_LIMIT
		case over:
			quotasOver++
		}
		if quota {
			quotas++
		}
	}
	if quotas > 0 && quotas == quotasOver {
		return rlv3.RateLimitResponse_OVER_LIMIT
	}
	return rlv3.RateLimitResponse_OK
}

// headers returns the RateLimit-Limit, -Remaining and -Reset headers of the
// descriptor the reference picks: the last rate-limit (not quota)
// descriptor over its limit, else the first with the fewest units left
// among those with a limit. None when no descriptor has a limit.
func headers(sts []*rlv3.RateLimitResponse_DescriptorStatus, rules []rule, opts Options) []*corev3.HeaderValue {
	var pick *rlv3.RateLimitResponse_DescriptorStatus
	least := uint32(math.MaxUint32)
	for i, st := range sts {
		if st.CurrentLimit != nil && st.LimitRemaining < least {
			pick, least = st, st.LimitRemaining
		}
		quota := opts.QuotaMode || rules[i].limit != nil && rules[i].quota
		if st.Code == rlv3.RateLimitResponse_OVER_LIMIT && !quota && st.CurrentLimit != nil {
			pick, least = st, 0
		}
	}
	if pick == nil {
		return nil
	}
	h := opts.Headers
	return []*corev3.HeaderValue{
		{Key: h.LimitHeader(), Value: strconv.FormatUint(uint64(pick.CurrentLimit.RequestsPerUnit), 10)},
		{Key: h.RemainingHeader(), Value: strconv.FormatUint(uint64(pick.LimitRemaining), 10)},
		{Key: h.ResetHeader(), Value: strconv.FormatInt(pick.DurationUntilReset.GetSeconds(), 10)},
	}
}

// decideParallel decides the descriptors with up to s.parallel at once.
// Descriptors on one counter (same unit and key) are decided one after
// another in request order, in one goroutine, so that which of them are
// admitted is what a sequential pass would give (the reference's order);
// different counters run in parallel.
func (s *Server) decideParallel(ctx context.Context, req *rlv3.RateLimitRequest, rules []rule, c *counters, out []*rlv3.RateLimitResponse_DescriptorStatus) error {
	descs := req.GetDescriptors()
	groups := groupByCounter(rules)
	errs := make([]error, len(rules))
	sem := make(chan struct{}, s.parallel)
	var wg sync.WaitGroup
	for _, g := range groups {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			wr := &weir.Request{Checks: make([]weir.Check, 1)}
			for _, i := range g {
				out[i], errs[i] = s.decide(ctx, req, descs[i], rules[i], c, wr)
				if errs[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return rpcError(err)
		}
	}
	return nil
}

// groupByCounter returns the indexes of rules, grouped by the counter they
// charge (unit and key; the domain is the request's), each group in
// request order. Rules that charge no counter are groups of one.
func groupByCounter(rules []rule) [][]int {
	type counter struct {
		unit config.Unit
		key  string
	}
	var groups [][]int
	at := map[counter]int{}
	for i, r := range rules {
		if r.limit == nil || r.limit.Unlimited || r.limit.RequestsPerUnit == 0 {
			groups = append(groups, []int{i})
			continue
		}
		k := counter{r.limit.Unit, r.key}
		if g, ok := at[k]; ok {
			groups[g] = append(groups[g], i)
			continue
		}
		at[k] = len(groups)
		groups = append(groups, []int{i})
	}
	return groups
}

func rpcError(err error) error {
	if errors.Is(err, weir.ErrUnavailable) {
		return status.Error(codes.Unavailable, "the rate-limit store is unavailable")
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Internal, err.Error())
}

func hits(req *rlv3.RateLimitRequest, desc *rlcommon.RateLimitDescriptor) uint64 {
	if h := desc.GetHitsAddend(); h != nil {
		return h.GetValue()
	}
	return uint64(max(1, req.GetHitsAddend()))
}

func (s *Server) decide(ctx context.Context, req *rlv3.RateLimitRequest, desc *rlcommon.RateLimitDescriptor, r rule, c *counters, wr *weir.Request) (*rlv3.RateLimitResponse_DescriptorStatus, error) {
	l := r.limit
	if l == nil {
		c.nolimit.Inc()
		return &rlv3.RateLimitResponse_DescriptorStatus{Code: rlv3.RateLimitResponse_OK}, nil
	}
	if l.Unlimited {
		c.unlimited.Inc()
		return &rlv3.RateLimitResponse_DescriptorStatus{Code: rlv3.RateLimitResponse_OK, LimitRemaining: math.MaxUint32}, nil
	}
	current := &rlv3.RateLimitResponse_RateLimit{Name: l.Name, RequestsPerUnit: l.RequestsPerUnit, Unit: rlv3.RateLimitResponse_RateLimit_Unit(l.Unit)}
	div := l.Unit.Seconds()
	n := hits(req, desc)
	over := func(now time.Time) *rlv3.RateLimitResponse_DescriptorStatus {
		return overStatus(current, now, div, r.shadow, c)
	}
	if l.RequestsPerUnit == 0 {
		if n == 0 {
			c.ok.Inc()
			return &rlv3.RateLimitResponse_DescriptorStatus{Code: rlv3.RateLimitResponse_OK, CurrentLimit: current, DurationUntilReset: reset(s.now(), div)}, nil
		}
		return over(s.now()), nil
	}
	limit := weir.Limit{
		Name:      "envoy:" + req.GetDomain() + ":" + l.Unit.String(),
		Algorithm: weir.FixedWindow,
		Quota:     int64(l.RequestsPerUnit),
		Period:    time.Duration(div) * time.Second,
	}
	wr.Checks[0] = weir.Check{Key: r.key, Limit: limit}
	wr.Cost, wr.At = 0, time.Time{}
	if desc.GetIsNegativeHits() {
		// Negative hits give units back to the current window.
		wr.Cost, wr.At = int64(min(n, uint64(limit.Quota))), s.now()
		if err := s.store.Refund(ctx, wr); err != nil {
			return nil, err
		}
		n = 0
	}
	if n == 0 {
		wr.Cost = 0
		d, err := s.store.Take(ctx, wr)
		if err != nil {
			return nil, err
		}
		c.ok.Inc()
		return &rlv3.RateLimitResponse_DescriptorStatus{Code: rlv3.RateLimitResponse_OK, CurrentLimit: current, LimitRemaining: uint32(d.Remaining), DurationUntilReset: reset(d.Time, div)}, nil
	}
	if n <= uint64(limit.Quota) {
		wr.Cost = int64(n)
		d, err := s.store.Take(ctx, wr)
		if err != nil {
			return nil, err
		}
		if d.Allowed {
			c.ok.Inc()
			return &rlv3.RateLimitResponse_DescriptorStatus{Code: rlv3.RateLimitResponse_OK, CurrentLimit: current, LimitRemaining: uint32(d.Remaining), DurationUntilReset: reset(d.Time, div)}, nil
		}
		// The reference counts hits that go over: fill the window so it
		// stays over limit until it ends.
		if d.Remaining > 0 {
			wr.Cost = d.Remaining
			if _, err := s.store.Take(ctx, wr); err != nil {
				return nil, err
			}
		}
		return over(d.Time), nil
	}
	// More hits than the limit: over, and the window is full.
	wr.Cost = 0
	d, err := s.store.Take(ctx, wr)
	if err != nil {
		return nil, err
	}
	if d.Remaining > 0 {
		wr.Cost = d.Remaining
		if _, err := s.store.Take(ctx, wr); err != nil {
			return nil, err
		}
	}
	return over(d.Time), nil
}

func overStatus(current *rlv3.RateLimitResponse_RateLimit, now time.Time, div int64, shadow bool, c *counters) *rlv3.RateLimitResponse_DescriptorStatus {
	st := &rlv3.RateLimitResponse_DescriptorStatus{Code: rlv3.RateLimitResponse_OVER_LIMIT, CurrentLimit: current, DurationUntilReset: reset(now, div)}
	if shadow {
		st.Code = rlv3.RateLimitResponse_OK
		c.shadow.Inc()
	} else {
		c.over.Inc()
	}
	return st
}

// reset is the time until the epoch-aligned window of div seconds ends, in
// whole seconds, as the reference computes it.
func reset(now time.Time, div int64) *durationpb.Duration {
	return &durationpb.Duration{Seconds: div - now.Unix()%div}
}

// JSONHandler serves envoyproxy/ratelimit's POST /json endpoint: a
// proto3-JSON RateLimitRequest in, a proto3-JSON RateLimitResponse out,
// 200 when OK and 429 when over limit.
func (s *Server) JSONHandler(maxBody int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBody {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
			return
		}
		var req rlv3.RateLimitRequest
		if err := protojson.Unmarshal(body, &req); err != nil {
			http.Error(w, "invalid RateLimitRequest: "+err.Error(), http.StatusBadRequest)
			return
		}
		resp, err := s.ShouldRateLimit(r.Context(), &req)
		if err != nil {
			code := http.StatusInternalServerError
			switch status.Code(err) {
			case codes.InvalidArgument:
				code = http.StatusBadRequest
			case codes.Unavailable:
				code = http.StatusServiceUnavailable
			}
			http.Error(w, status.Convert(err).Message(), code)
			return
		}
		out, err := protojson.Marshal(resp)
		if err != nil {
			http.Error(w, "encoding response", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if resp.OverallCode == rlv3.RateLimitResponse_OVER_LIMIT {
			w.WriteHeader(http.StatusTooManyRequests)
		}
		w.Write(out)
	})
}
