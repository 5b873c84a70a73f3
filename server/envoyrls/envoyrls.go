package envoyrls

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// Input bounds (S3).
const (
	// MaxDescriptors is the most descriptors one request may carry.
	MaxDescriptors = 1000
	// MaxKeyBytes is the longest descriptor (its entries joined) counted.
	MaxKeyBytes = 4096
)

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
	shadow  bool
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

// New returns a server over store with the given domains. globalShadow
// answers OK overall whatever the descriptors say (SHADOW_MODE=true in the
// reference). m may be nil.
func New(store weir.Store, domains []config.Domain, globalShadow bool, m *metrics.Metrics) *Server {
	if m == nil {
		m = metrics.New()
	}
	s := &Server{store: store, m: m, now: time.Now, parallel: 1}
	s.Load(domains, globalShadow)
	return s
}

// Load swaps in a new set of domains (already validated by the config
// package). Requests in flight finish with the old set.
func (s *Server) Load(domains []config.Domain, globalShadow bool) {
	snap := &snapshot{domains: map[string]*domain{}, shadow: globalShadow, unknown: newCounters(s.m, "unknown")}
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
	// key is the counter's key: the entries, with shared wildcard values
	// replaced by their pattern.
	key string
}

// lookup finds the limit for one descriptor, as the reference does.
func lookup(d *domain, desc *rlcommon.RateLimitDescriptor) (rule, error) {
	entries := desc.GetEntries()
	if o := desc.GetLimit(); o != nil {
		u := config.Unit(o.GetUnit())
		if u.Seconds() == 0 {
			return rule{}, status.Errorf(codes.InvalidArgument, "descriptor limit override: unknown unit %v", o.GetUnit())
		}
		return rule{limit: &config.EnvoyLimit{RequestsPerUnit: o.GetRequestsPerUnit(), Unit: u}, key: entryKey(entries, nil)}, nil
	}
	node := d.cfg.Root
	var found *config.Descriptor
	var shared []string
	for i, e := range entries {
		k := e.GetKey() + "_" + e.GetValue()
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
			next = node.Children[e.GetKey()]
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
		return rule{}, nil
	}
	return rule{limit: found.Limit, shadow: found.ShadowMode, key: entryKey(entries, shared)}, nil
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
func (s *Server) ShouldRateLimit(ctx context.Context, req *rlv3.RateLimitRequest) (*rlv3.RateLimitResponse, error) {
	if req.GetDomain() == "" {
		return nil, status.Error(codes.InvalidArgument, "rate limit domain must not be empty")
	}
	descs := req.GetDescriptors()
	if len(descs) == 0 {
		return nil, status.Error(codes.InvalidArgument, "rate limit descriptor list must not be empty")
	}
	if len(descs) > MaxDescriptors {
		return nil, status.Errorf(codes.InvalidArgument, "descriptors: at most %d per request (got %d)", MaxDescriptors, len(descs))
	}
	snap := s.snap.Load()
	d := snap.domains[req.GetDomain()]
	c := snap.unknown
	if d != nil {
		c = d.c
	}
	rules := make([]rule, len(descs))
	if d != nil {
		for i, desc := range descs {
			r, err := lookup(d, desc)
			if err != nil {
				return nil, err
			}
			if len(r.key) > MaxKeyBytes {
				return nil, status.Errorf(codes.InvalidArgument, "descriptors[%d]: longer than %d bytes", i, MaxKeyBytes)
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
	if s.parallel > 1 && len(descs) > 1 {
		if err := s.decideParallel(ctx, req, rules, c, resp.Statuses); err != nil {
			return nil, err
		}
	} else {
		scratch := &weir.Request{Checks: make([]weir.Check, 1)}
		for i, desc := range descs {
			st, err := s.decide(ctx, req, desc, rules[i], c, scratch)
			if err != nil {
				return nil, rpcError(err)
			}
			resp.Statuses[i] = st
		}
	}
	for _, st := range resp.Statuses {
		if st.Code == rlv3.RateLimitResponse_OVER_LIMIT {
			resp.OverallCode = rlv3.RateLimitResponse_OVER_LIMIT
		}
	}
	if snap.shadow && resp.OverallCode == rlv3.RateLimitResponse_OVER_LIMIT {
		resp.OverallCode = rlv3.RateLimitResponse_OK
	}
	return resp, nil
}

// decideParallel decides the descriptors with up to s.parallel at once.
func (s *Server) decideParallel(ctx context.Context, req *rlv3.RateLimitRequest, rules []rule, c *counters, out []*rlv3.RateLimitResponse_DescriptorStatus) error {
	descs := req.GetDescriptors()
	errs := make([]error, len(descs))
	sem := make(chan struct{}, s.parallel)
	var wg sync.WaitGroup
	for i, desc := range descs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i], errs[i] = s.decide(ctx, req, desc, rules[i], c, &weir.Request{Checks: make([]weir.Check, 1)})
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
