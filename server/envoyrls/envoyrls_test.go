package envoyrls

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/redis/go-redis/v9"
	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/redisstore"
	"github.com/weir-go/weir/redisstore/redistest"
	"github.com/weir-go/weir/server/config"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is 1699999980.5 s after the epoch: a whole minute plus 500 ms, so
// 780.5 s into its hour, 79980.5 s into its day, 511980.5 s into its
// week, 2239980.5 s into its 30-day month and 28591980.5 s into its
// 365-day year.
var t0 = time.Unix(1_699_999_980, 500_000_000)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newTestServer(t testing.TB, file string, shadow bool) (*Server, *clock) {
	t.Helper()
	domains, _, err := config.LoadEnvoy(file)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: t0}
	store := memstore.New(memstore.WithClock(clk.Now))
	t.Cleanup(func() { store.Close() })
	s := New(store, domains, Options{ShadowMode: shadow}, nil)
	s.now = clk.Now
	return s, clk
}

// d builds a descriptor from "k=v" pairs.
func d(pairs ...string) *rlcommon.RateLimitDescriptor {
	out := &rlcommon.RateLimitDescriptor{}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		out.Entries = append(out.Entries, &rlcommon.RateLimitDescriptor_Entry{Key: k, Value: v})
	}
	return out
}

// st is an expected descriptor status: code, limit (rpu/unit, "" for
// none), remaining, seconds until reset (0: none).
type st struct {
	code      string
	limit     string
	remaining uint32
	reset     int64
}

func (s st) String() string {
	return fmt.Sprintf("%s %s rem=%d reset=%ds", s.code, s.limit, s.remaining, s.reset)
}

func got(ds *rlv3.RateLimitResponse_DescriptorStatus) st {
	out := st{code: ds.Code.String(), remaining: ds.LimitRemaining}
	if l := ds.CurrentLimit; l != nil {
		out.limit = fmt.Sprintf("%d/%s", l.RequestsPerUnit, l.Unit)
	}
	if r := ds.DurationUntilReset; r != nil {
		out.reset = r.Seconds
		if r.Nanos != 0 {
			out.reset = -1
		}
	}
	return out
}

type step struct {
	at      time.Duration // since t0
	hits    uint32        // request hits_addend (0: unset)
	descs   []*rlcommon.RateLimitDescriptor
	overall string
	want    []st
}

const (
	ok   = "OK"
	over = "OVER_LIMIT"
)

func run(t *testing.T, s *Server, clk *clock, domain string, steps []step) {
	t.Helper()
	for i, sp := range steps {
		clk.now = t0.Add(sp.at)
		resp, err := s.ShouldRateLimit(context.Background(), &rlv3.RateLimitRequest{Domain: domain, Descriptors: sp.descs, HitsAddend: sp.hits})
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if resp.OverallCode.String() != sp.overall {
			t.Errorf("step %d: overall %s, want %s", i, resp.OverallCode, sp.overall)
		}
		if len(resp.Statuses) != len(sp.want) {
			t.Fatalf("step %d: %d statuses, want %d", i, len(resp.Statuses), len(sp.want))
		}
		for j, w := range sp.want {
			if g := got(resp.Statuses[j]); g != w {
				t.Errorf("step %d status %d: got %v, want %v", i, j, g, w)
			}
		}
	}
}

// The expected answers below are written from envoyproxy/ratelimit's
// documented behaviour (README: configuration, examples 1-4, wildcards,
// shadow_mode, replaces, hits_addend; fixed windows aligned to the epoch;
// duration_until_reset = unit - now % unit in whole seconds; unlimited
// reports limit_remaining = MaxUint32; no match reports OK with no limit).
func TestDifferential(t *testing.T) {
	const sec = time.Second
	tests := []struct {
		name  string
		steps []step
	}{
		{"per second, window aligned to the epoch", []step{
			{0, 0, ds(d("basic=x")), ok, []st{{ok, "3/SECOND", 2, 1}}},
			{100 * time.Millisecond, 0, ds(d("basic=x")), ok, []st{{ok, "3/SECOND", 1, 1}}},
			{200 * time.Millisecond, 0, ds(d("basic=x")), ok, []st{{ok, "3/SECOND", 0, 1}}},
			{300 * time.Millisecond, 0, ds(d("basic=x")), over, []st{{over, "3/SECOND", 0, 1}}},
			// t0 is x.5 s: the window ends 500 ms later, not 1 s later.
			{500 * time.Millisecond, 0, ds(d("basic=x")), ok, []st{{ok, "3/SECOND", 2, 1}}},
			{500 * time.Millisecond, 0, ds(d("basic=y")), ok, []st{{ok, "3/SECOND", 2, 1}}},
		}},
		{"hits_addend: hits over the limit still count", []step{
			{0, 2, ds(d("basic=h")), ok, []st{{ok, "3/SECOND", 1, 1}}},
			{0, 2, ds(d("basic=h")), over, []st{{over, "3/SECOND", 0, 1}}},
			// The counter is now 4 > 3: one more hit is over too.
			{0, 0, ds(d("basic=h")), over, []st{{over, "3/SECOND", 0, 1}}},
			{0, 5, ds(d("basic=i")), over, []st{{over, "3/SECOND", 0, 1}}},
			{0, 0, ds(d("basic=i")), over, []st{{over, "3/SECOND", 0, 1}}},
			{sec, 0, ds(d("basic=i")), ok, []st{{ok, "3/SECOND", 2, 1}}},
		}},
		{"per-descriptor hits_addend, 0 checks without counting", []step{
			{0, 0, ds(withHits(d("basic=p"), 0)), ok, []st{{ok, "3/SECOND", 3, 1}}},
			{0, 0, ds(withHits(d("basic=p"), 3)), ok, []st{{ok, "3/SECOND", 0, 1}}},
			{0, 0, ds(withHits(d("basic=p"), 0)), ok, []st{{ok, "3/SECOND", 0, 1}}},
			{0, 0, ds(d("basic=p")), over, []st{{over, "3/SECOND", 0, 1}}},
		}},
		{"key and value beat key alone; 0 requests per unit blocks", []step{
			{0, 0, ds(d("remote_address=50.0.0.5")), over, []st{{over, "0/SECOND", 0, 1}}},
			{0, 0, ds(d("remote_address=1.2.3.4")), ok, []st{{ok, "10/SECOND", 9, 1}}},
			{sec, 0, ds(d("remote_address=50.0.0.5")), over, []st{{over, "0/SECOND", 0, 1}}},
		}},
		{"nested descriptors and depth", []step{
			{0, 0, ds(d("message_type=marketing", "to_number=2061111111")), ok, []st{{ok, "5/DAY", 4, 6420}}},
			{0, 0, ds(d("to_number=2061111111")), ok, []st{{ok, "100/DAY", 99, 6420}}},
			// Depth 1 on a node without its own limit: no limit.
			{0, 0, ds(d("message_type=marketing")), ok, []st{{ok, "", 0, 0}}},
			// Deeper than the tree: no limit.
			{0, 0, ds(d("to_number=1", "extra=2")), ok, []st{{ok, "", 0, 0}}},
			{0, 0, ds(d("nothing=here")), ok, []st{{ok, "", 0, 0}}},
		}},
		{"wildcards", []step{
			{0, 0, ds(d("path=/api/users")), ok, []st{{ok, "2/MINUTE", 1, 60}}},
			{0, 0, ds(d("path=/api/users")), ok, []st{{ok, "2/MINUTE", 0, 60}}},
			{0, 0, ds(d("path=/api/users")), over, []st{{over, "2/MINUTE", 0, 60}}},
			{0, 0, ds(d("path=/api/orders")), ok, []st{{ok, "2/MINUTE", 1, 60}}},
			{0, 0, ds(d("path=/other")), ok, []st{{ok, "", 0, 0}}},
			// share_threshold: every matching value shares one counter.
			{0, 0, ds(d("shared_path=/static/a.css")), ok, []st{{ok, "2/MINUTE", 1, 60}}},
			{0, 0, ds(d("shared_path=/static/b.js")), ok, []st{{ok, "2/MINUTE", 0, 60}}},
			{0, 0, ds(d("shared_path=/static/c.png")), over, []st{{over, "2/MINUTE", 0, 60}}},
			{60 * sec, 0, ds(d("shared_path=/static/c.png")), ok, []st{{ok, "2/MINUTE", 1, 60}}},
		}},
		{"unlimited, shadow mode, replaces", []step{
			{0, 0, ds(d("internal=x")), ok, []st{{ok, "", math.MaxUint32, 0}}},
			{0, 0, ds(d("shadowed=x")), ok, []st{{ok, "1/SECOND", 0, 1}}},
			// Over the limit, but shadow: OK with the limit and nothing left.
			{0, 0, ds(d("shadowed=x")), ok, []st{{ok, "1/SECOND", 0, 1}}},
			{0, 0, ds(d("tenant=a")), ok, []st{{ok, "1/MINUTE", 0, 60}}},
			{0, 0, ds(d("tenant=a")), over, []st{{over, "1/MINUTE", 0, 60}}},
			// premium replaces tenant_limit: the tenant descriptor is not
			// checked (OK, no limit), premium is.
			{0, 0, ds(d("tenant=a"), d("premium=a")), ok, []st{{ok, "", 0, 0}, {ok, "100/MINUTE", 99, 60}}},
		}},
		{"every descriptor is evaluated and incremented", []step{
			{0, 0, ds(d("tenant=b"), d("basic=m")), ok, []st{{ok, "1/MINUTE", 0, 60}, {ok, "3/SECOND", 2, 1}}},
			// tenant=b is over; basic=m is still counted.
			{0, 0, ds(d("tenant=b"), d("basic=m")), over, []st{{over, "1/MINUTE", 0, 60}, {ok, "3/SECOND", 1, 1}}},
			{0, 0, ds(d("basic=m")), ok, []st{{ok, "3/SECOND", 0, 1}}},
		}},
		{"every unit", []step{
			{0, 0, ds(d("unit=minute"), d("unit=hour"), d("unit=day"), d("unit=week"), d("unit=month"), d("unit=year")), ok, []st{
				{ok, "5/MINUTE", 4, 60}, {ok, "5/HOUR", 4, 2820}, {ok, "5/DAY", 4, 6420},
				{ok, "5/WEEK", 4, 92820}, {ok, "5/MONTH", 4, 352020}, {ok, "5/YEAR", 4, 2944020},
			}},
			// 2820 s later the hour has turned: only the hour counter is new.
			{2820 * sec, 0, ds(d("unit=hour"), d("unit=day")), ok, []st{{ok, "5/HOUR", 4, 3600}, {ok, "5/DAY", 3, 3600}}},
		}},
		{"descriptors of one counter are decided in request order", []step{
			{0, 0, repeat(d("basic=o"), 40), over, append([]st{{ok, "3/SECOND", 2, 1}, {ok, "3/SECOND", 1, 1}, {ok, "3/SECOND", 0, 1}},
				fill(st{over, "3/SECOND", 0, 1}, 37)...)},
			{0, 0, ds(d("basic=p"), d("basic=o"), d("basic=p"), d("basic=p"), d("basic=p")), over, []st{
				{ok, "3/SECOND", 2, 1}, {over, "3/SECOND", 0, 1}, {ok, "3/SECOND", 1, 1}, {ok, "3/SECOND", 0, 1}, {over, "3/SECOND", 0, 1},
			}},
		}},
		{"quota_mode: over only when every quota descriptor is", []step{
			{0, 0, ds(d("quota_a=x"), d("quota_b=x")), ok, []st{{ok, "1/MINUTE", 0, 60}, {ok, "2/MINUTE", 1, 60}}},
			// quota_a is over, quota_b is not: the request passes, and the
			// status still says OVER_LIMIT (as the reference's).
			{0, 0, ds(d("quota_a=x"), d("quota_b=x")), ok, []st{{over, "1/MINUTE", 0, 60}, {ok, "2/MINUTE", 0, 60}}},
			{0, 0, ds(d("quota_a=x"), d("quota_b=x")), over, []st{{over, "1/MINUTE", 0, 60}, {over, "2/MINUTE", 0, 60}}},
			// A rate-limit descriptor over its limit is over whatever the quotas say.
			{0, 0, ds(d("quota_a=y"), d("remote_address=50.0.0.5")), over, []st{{ok, "1/MINUTE", 0, 60}, {over, "0/SECOND", 0, 1}}},
			// Quota descriptors only, one of them: over when it is.
			{0, 0, ds(d("quota_a=y")), over, []st{{over, "1/MINUTE", 0, 60}}},
			// A descriptor without a limit is not a quota descriptor.
			{0, 0, ds(d("quota_a=y"), d("nothing=here")), over, []st{{over, "1/MINUTE", 0, 60}, {ok, "", 0, 0}}},
			{60 * sec, 0, ds(d("quota_a=y")), ok, []st{{ok, "1/MINUTE", 0, 60}}},
		}},
		{"limit override from Envoy", []step{
			{0, 0, ds(withLimit(d("anything=1"), 2, 2)), ok, []st{{ok, "2/MINUTE", 1, 60}}},
			{0, 0, ds(withLimit(d("anything=1"), 2, 2)), ok, []st{{ok, "2/MINUTE", 0, 60}}},
			{0, 0, ds(withLimit(d("anything=1"), 2, 2)), over, []st{{over, "2/MINUTE", 0, 60}}},
		}},
	}
	for _, parallel := range []int{1, 8} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/parallel=%d", tt.name, parallel), func(t *testing.T) {
				s, clk := newTestServer(t, "testdata/reference.yaml", false)
				s.SetParallel(parallel)
				run(t, s, clk, "ref", tt.steps)
			})
		}
	}
	// The same answers from the Redis store, one descriptor at a time and
	// 64 at once as weir serve decides them on Redis (issue 19: statuses in
	// request order on every store).
	srv := redistest.Start(t)
	for _, parallel := range []int{1, 64} {
		for i, tt := range tests {
			t.Run(fmt.Sprintf("redis/%s/parallel=%d", tt.name, parallel), func(t *testing.T) {
				clk := &clock{now: t0}
				client := redis.NewClient(srv.Options())
				t.Cleanup(func() { client.Close() })
				store, err := redisstore.New(client, redisstore.WithClock(clk.Now), redisstore.WithDeadline(30*time.Second), redisstore.WithPrefix(fmt.Sprintf("t%d-%d:", parallel, i)))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { store.Close() })
				domains, _, err := config.LoadEnvoy("testdata/reference.yaml")
				if err != nil {
					t.Fatal(err)
				}
				s := New(store, domains, Options{}, nil)
				s.now = clk.Now
				s.SetParallel(parallel)
				run(t, s, clk, "ref", tt.steps)
			})
		}
	}
}

func ds(d ...*rlcommon.RateLimitDescriptor) []*rlcommon.RateLimitDescriptor { return d }

// repeat returns n copies of one descriptor.
func repeat(desc *rlcommon.RateLimitDescriptor, n int) []*rlcommon.RateLimitDescriptor {
	out := make([]*rlcommon.RateLimitDescriptor, n)
	for i := range out {
		out[i] = desc
	}
	return out
}

// fill returns n copies of one expected status.
func fill(s st, n int) []st {
	out := make([]st, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func withHits(d *rlcommon.RateLimitDescriptor, n uint64) *rlcommon.RateLimitDescriptor {
	d.HitsAddend = wrapperspb.UInt64(n)
	return d
}

func withLimit(d *rlcommon.RateLimitDescriptor, rpu uint32, unit int32) *rlcommon.RateLimitDescriptor {
	d.Limit = &rlcommon.RateLimitDescriptor_RateLimitOverride{RequestsPerUnit: rpu}
	d.Limit.Unit = typeUnit(unit)
	return d
}

func TestGlobalShadowAndUnknownDomain(t *testing.T) {
	s, clk := newTestServer(t, "testdata/reference.yaml", true)
	run(t, s, clk, "ref", []step{
		{0, 0, ds(d("remote_address=50.0.0.5")), ok, []st{{over, "0/SECOND", 0, 1}}},
	})
	run(t, s, clk, "elsewhere", []step{
		{0, 0, ds(d("basic=x")), ok, []st{{ok, "", 0, 0}}},
		// An override needs a known domain.
		{0, 0, ds(withLimit(d("basic=x"), 1, 1)), ok, []st{{ok, "", 0, 0}}},
	})
}

// TestInvalidRequests: the only requests refused are those with nothing to
// limit (as the reference refuses them).
func TestInvalidRequests(t *testing.T) {
	s, _ := newTestServer(t, "testdata/reference.yaml", false)
	for _, req := range []*rlv3.RateLimitRequest{
		{Descriptors: ds(d("basic=x"))},
		{Domain: "ref"},
	} {
		if _, err := s.ShouldRateLimit(context.Background(), req); err == nil {
			t.Errorf("%d descriptors in %q: no error", len(req.Descriptors), req.Domain)
		}
	}
}

// TestBadInputDecides (issue 19: no way around a limit through an error):
// each input the server used to refuse with INVALID_ARGUMENT, which Envoy
// (failure_mode_deny: false) turns into an unlimited pass, now gets a
// decision that counts.
func TestBadInputDecides(t *testing.T) {
	long := strings.Repeat("x", MaxKeyBytes)
	t.Run("descriptor longer than MaxKeyBytes is counted under its hash", func(t *testing.T) {
		s, clk := newTestServer(t, "testdata/reference.yaml", false)
		run(t, s, clk, "ref", []step{
			{0, 0, ds(d("basic=" + long + "a")), ok, []st{{ok, "3/SECOND", 2, 1}}},
			{0, 2, ds(d("basic=" + long + "a")), ok, []st{{ok, "3/SECOND", 0, 1}}},
			{0, 0, ds(d("basic=" + long + "a")), over, []st{{over, "3/SECOND", 0, 1}}},
			// Another long value has its own counter, and so has a short one.
			{0, 0, ds(d("basic=" + long + "b")), ok, []st{{ok, "3/SECOND", 2, 1}}},
			{0, 0, ds(d("basic=x")), ok, []st{{ok, "3/SECOND", 2, 1}}},
		})
		if k := hashedKey("basic=" + long); len(k) != len("#sha256:")+64 || strings.Contains(k, "=") {
			t.Errorf("hashedKey = %q: want a fixed-size key without '='", k)
		}
	})
	t.Run("descriptors beyond MaxDescriptors with a limit are over it, uncounted", func(t *testing.T) {
		s, clk := newTestServer(t, "testdata/reference.yaml", false)
		descs := repeat(d("nothing=here"), MaxDescriptors+3)
		descs[0] = d("basic=m")
		descs[MaxDescriptors] = d("basic=n")
		descs[MaxDescriptors+1] = d("internal=x")
		want := append([]st{{ok, "3/SECOND", 2, 1}}, fill(st{ok, "", 0, 0}, MaxDescriptors-1)...)
		want = append(want, st{over, "3/SECOND", 0, 1}, st{ok, "", math.MaxUint32, 0}, st{ok, "", 0, 0})
		run(t, s, clk, "ref", []step{
			{0, 0, descs, over, want},
			// basic=n was not counted.
			{0, 0, ds(d("basic=n")), ok, []st{{ok, "3/SECOND", 2, 1}}},
		})
		// An unknown domain has no limits, however many descriptors.
		run(t, s, clk, "elsewhere", []step{{0, 0, repeat(d("basic=x"), MaxDescriptors+1), ok, fill(st{ok, "", 0, 0}, MaxDescriptors+1)}})
	})
	t.Run("override with an unknown unit applies the configured limit", func(t *testing.T) {
		s, clk := newTestServer(t, "testdata/reference.yaml", false)
		run(t, s, clk, "ref", []step{
			{0, 0, ds(withLimit(d("basic=u"), 100, 0)), ok, []st{{ok, "3/SECOND", 2, 1}}},
			{0, 2, ds(withLimit(d("basic=u"), 100, 99)), ok, []st{{ok, "3/SECOND", 0, 1}}},
			{0, 0, ds(withLimit(d("basic=u"), 100, 0)), over, []st{{over, "3/SECOND", 0, 1}}},
		})
	})
}

// TestGlobalQuotaMode: with QUOTA_MODE every descriptor is a quota one; a
// descriptor without a limit passes and so keeps the request OK.
func TestGlobalQuotaMode(t *testing.T) {
	s, clk := newTestServer(t, "testdata/reference.yaml", false)
	s.Load(s.domainList(), Options{QuotaMode: true})
	run(t, s, clk, "ref", []step{
		{0, 0, ds(d("remote_address=50.0.0.5")), over, []st{{over, "0/SECOND", 0, 1}}},
		{0, 0, ds(d("remote_address=50.0.0.5"), d("nothing=here")), ok, []st{{over, "0/SECOND", 0, 1}, {ok, "", 0, 0}}},
		{0, 0, ds(d("remote_address=50.0.0.5"), d("basic=q")), ok, []st{{over, "0/SECOND", 0, 1}, {ok, "3/SECOND", 2, 1}}},
		// Unlimited descriptors are not counted as quotas.
		{0, 0, ds(d("remote_address=50.0.0.5"), d("internal=x")), over, []st{{over, "0/SECOND", 0, 1}, {ok, "", math.MaxUint32, 0}}},
	})
}

// TestResponseHeaders: the reference's LIMIT_RESPONSE_HEADERS_ENABLED: the
// headers of the descriptor with the fewest units left, or of the last
// rate-limit descriptor over its limit.
func TestResponseHeaders(t *testing.T) {
	s, clk := newTestServer(t, "testdata/reference.yaml", false)
	clk.now = t0
	hdr := func(opts Options, descs ...*rlcommon.RateLimitDescriptor) string {
		t.Helper()
		s.Load(s.domainList(), opts)
		resp, err := s.ShouldRateLimit(context.Background(), &rlv3.RateLimitRequest{Domain: "ref", Descriptors: descs})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, h := range resp.ResponseHeadersToAdd {
			out = append(out, h.Key+": "+h.Value)
		}
		return strings.Join(out, ", ")
	}
	on := Options{Headers: config.EnvoyHeaders{Enabled: true}}
	tests := []struct {
		opts  Options
		descs []*rlcommon.RateLimitDescriptor
		want  string
	}{
		{Options{}, ds(d("basic=h1")), ""},
		{on, ds(d("nothing=here")), ""},
		{on, ds(d("unit=minute"), d("basic=h2")), "RateLimit-Limit: 3, RateLimit-Remaining: 2, RateLimit-Reset: 1"},
		{on, ds(d("basic=h3"), d("unit=minute"), d("unit=hour")), "RateLimit-Limit: 3, RateLimit-Remaining: 2, RateLimit-Reset: 1"},
		{on, ds(d("remote_address=50.0.0.5"), d("basic=h4")), "RateLimit-Limit: 0, RateLimit-Remaining: 0, RateLimit-Reset: 1"},
		{Options{Headers: config.EnvoyHeaders{Enabled: true, Limit: "X-L", Remaining: "X-R", Reset: "X-T"}}, ds(d("basic=h5")), "X-L: 3, X-R: 2, X-T: 1"},
	}
	for i, tt := range tests {
		if got := hdr(tt.opts, tt.descs...); got != tt.want {
			t.Errorf("%d: headers %q, want %q", i, got, tt.want)
		}
	}
}

// domainList returns the loaded domains, to reload them with other options.
func (s *Server) domainList() []config.Domain {
	var out []config.Domain
	for _, d := range s.snap.Load().domains {
		out = append(out, d.cfg)
	}
	return out
}

// Descriptor rules are matched by key and value, never by the two joined:
// the reference joins them with '_', so there key "a_b" with value "c" and
// key "a" with value "b_c" are one rule (a duplicate when both are
// configured), and an entry a=b finds the rule of key "a_b". Weir keeps
// them apart.
func TestRulesMatchKeyAndValueApart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "amb.yaml")
	yaml := `domain: amb
descriptors:
  - key: a_b
    value: c
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: a
    value: b_c
    rate_limit: {unit: minute, requests_per_unit: 2}
  - key: x_y
    rate_limit: {unit: minute, requests_per_unit: 3}
  - key: p_q
    value: r*
    rate_limit: {unit: minute, requests_per_unit: 4}
`
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	s, clk := newTestServer(t, file, false)
	run(t, s, clk, "amb", []step{
		{0, 0, ds(d("a_b=c")), ok, []st{{ok, "1/MINUTE", 0, 60}}},
		{0, 0, ds(d("a=b_c")), ok, []st{{ok, "2/MINUTE", 1, 60}}},
		{0, 0, ds(d("a_b=c")), over, []st{{over, "1/MINUTE", 0, 60}}},
		// x=y_z is not x_y (any value); p=q_rs is not p_q=r*.
		{0, 0, ds(d("x=y_z")), ok, []st{{ok, "", 0, 0}}},
		{0, 0, ds(d("x_y=z")), ok, []st{{ok, "3/MINUTE", 2, 60}}},
		{0, 0, ds(d("p=q_rs")), ok, []st{{ok, "", 0, 0}}},
		{0, 0, ds(d("p_q=rs")), ok, []st{{ok, "4/MINUTE", 3, 60}}},
	})
	bad := filepath.Join(t.TempDir(), "nul.yaml")
	if err := os.WriteFile(bad, []byte("domain: n\ndescriptors:\n  - key: \"a\\0b\"\n    rate_limit: {unit: minute, requests_per_unit: 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := config.LoadEnvoy(bad); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Fatalf("a key with a NUL: %v, want an error naming it", err)
	}
}
