package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-go/weir"
)

// Factory returns a new, empty store whose clock is now: every decision the
// store makes must read the instant from now (the suite's fake clock). The
// factory registers its own cleanup with t.Cleanup. Run calls it many times,
// once per subtest.
type Factory func(t *testing.T, now func() time.Time) weir.Store

// base is the instant fake clocks start at: a whole day since the Unix
// epoch, so epoch-aligned windows of 1 s, 1 min, 1 h and 1 day all start
// there.
var base = time.Unix(1_700_006_400, 0).UTC()

// clock is a fake clock for one store. It moves only when the suite says,
// and only by whole microseconds.
type clock struct{ off atomic.Int64 } // ns since base

func (c *clock) now() time.Time { return base.Add(time.Duration(c.off.Load())) }

// set moves the clock to base+d; d must be whole microseconds.
func (c *clock) set(t testing.TB, d time.Duration) {
	t.Helper()
	if d%time.Microsecond != 0 {
		t.Fatalf("storetest bug: instant %v is not whole microseconds", d)
	}
	c.off.Store(int64(d))
}

func (c *clock) add(t testing.TB, d time.Duration) { c.set(t, time.Duration(c.off.Load())+d) }

// harness is one store with its fake clock.
type harness struct {
	t     *testing.T
	clk   *clock
	store weir.Store
}

func newHarness(t *testing.T, f Factory) *harness {
	t.Helper()
	c := &clock{}
	s := f(t, c.now)
	if s == nil {
		t.Fatal("Factory returned a nil store")
	}
	return &harness{t: t, clk: c, store: s}
}

// Run runs the conformance suite against the stores newStore makes. Each
// subtest gets a fresh store.
func Run(t *testing.T, newStore Factory) {
	t.Helper()
	for _, tt := range suite {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore) })
	}
}

// RunOnly runs the named subtests of Run ("Vectors", "Bound", ...) and
// fails on an unknown name. It is for stores to which only part of the
// contract applies (a store that decides from local allowances reports its
// own Remaining, for one); such a store documents why each subtest it
// leaves out cannot hold.
func RunOnly(t *testing.T, newStore Factory, names ...string) {
	t.Helper()
	for _, name := range names {
		i := slices.IndexFunc(suite, func(s subtest) bool { return s.name == name })
		if i < 0 {
			t.Fatalf("storetest: no subtest %q", name)
		}
		tt := suite[i]
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore) })
	}
}

type subtest struct {
	name string
	fn   func(*testing.T, Factory)
}

var suite = []subtest{
	{"Vectors", testVectors},
	{"MultiLimit", testMultiLimit},
	{"Statuses", testStatuses},
	{"Reservation", testReservation},
	{"RefundCeiling", testRefundCeiling},
	{"Lease", testLease},
	{"LeaseLine", testLeaseLine},
	{"Reset", testReset},
	{"Notes", testNotes},
	{"Invalid", testInvalid},
	{"Keys", testKeys},
	{"Model", testModel},
	{"Bound", testBound},
	{"Concurrency", testConcurrency},
	{"Limiter", testLimiter},
	{"IdleThenBurst", testIdleThenBurst},
	{"Charge", testCharge},
	{"Settle", testSettle},
	{"DebtBound", testDebtBound},
	{"ChangedLimit", testChangedLimit},
	{"Overrides", testOverrides},
	{"OverrideBound", testOverrideBound},
	{"PlanTable", testPlanTable},
}

// take runs one Take and fails the test on error.
func (h *harness) take(req *weir.Request) weir.Decision {
	h.t.Helper()
	d, err := h.store.Take(context.Background(), req)
	if err != nil {
		h.t.Fatalf("Take(%s) at +%v: %v", describe(req), h.elapsed(), err)
	}
	return d
}

func (h *harness) refund(req *weir.Request) {
	h.t.Helper()
	if err := h.store.Refund(context.Background(), req); err != nil {
		h.t.Fatalf("Refund(%s) at +%v: %v", describe(req), h.elapsed(), err)
	}
}

func (h *harness) reset(checks ...weir.Check) {
	h.t.Helper()
	if err := h.store.Reset(context.Background(), checks); err != nil {
		h.t.Fatalf("Reset at +%v: %v", h.elapsed(), err)
	}
}

func (h *harness) elapsed() time.Duration { return h.clk.now().Sub(base) }

// peek returns the store's answer to a cost-0 request on one check.
func (h *harness) peek(c weir.Check) weir.Decision {
	h.t.Helper()
	return h.take(&weir.Request{Checks: []weir.Check{c}})
}

func describe(req *weir.Request) string {
	if req == nil {
		return "nil"
	}
	s := fmt.Sprintf("cost=%d", req.Cost)
	if req.MaxWait != 0 {
		s += fmt.Sprintf(" maxWait=%v", req.MaxWait)
	}
	if req.Lease != "" {
		s += fmt.Sprintf(" lease=%q", req.Lease)
	}
	if req.Queue != 0 {
		s += fmt.Sprintf(" queue=%v", req.Queue)
	}
	if req.Force {
		s += " force"
	}
	for _, c := range req.Checks {
		s += fmt.Sprintf(" [%q %q %s]", c.Limit.Name, c.Key, c.Limit)
	}
	return s
}

// closeDur reports whether two durations differ by at most 1µs (a store
// may keep time in microseconds).
func closeDur(a, b time.Duration) bool {
	d := a - b
	return d >= -time.Microsecond && d <= time.Microsecond
}

// want is the expected outcome of one decision.
type want struct {
	allowed    bool
	remaining  int64
	retryAfter time.Duration
	resetAfter time.Duration
	delay      time.Duration
}

// diff describes how d differs from w, or returns "".
func (w want) diff(d weir.Decision) string {
	var s string
	if d.Allowed != w.allowed {
		s += fmt.Sprintf(" Allowed=%v want %v;", d.Allowed, w.allowed)
	}
	if d.Remaining != w.remaining {
		s += fmt.Sprintf(" Remaining=%d want %d;", d.Remaining, w.remaining)
	}
	if !closeDur(d.RetryAfter, w.retryAfter) {
		s += fmt.Sprintf(" RetryAfter=%v want %v;", d.RetryAfter, w.retryAfter)
	}
	if !closeDur(d.ResetAfter, w.resetAfter) {
		s += fmt.Sprintf(" ResetAfter=%v want %v;", d.ResetAfter, w.resetAfter)
	}
	if !closeDur(d.Delay, w.delay) {
		s += fmt.Sprintf(" Delay=%v want %v;", d.Delay, w.delay)
	}
	return s
}

// sameDecision compares a store's decision with the model's: everything
// exactly except durations (±1µs).
func sameDecision(got, want weir.Decision) string {
	w := wantOf(want)
	s := w.diff(got)
	if got.Limit != want.Limit {
		s += fmt.Sprintf(" Limit=%+v want %+v;", got.Limit, want.Limit)
	}
	if !got.Time.Equal(want.Time) {
		s += fmt.Sprintf(" Time=%v want %v;", got.Time, want.Time)
	}
	if got.Debt != want.Debt || got.Clamped != want.Clamped {
		s += fmt.Sprintf(" Debt=%d Clamped=%v want %d %v;", got.Debt, got.Clamped, want.Debt, want.Clamped)
	}
	if got.Source != weir.SourceStore {
		s += fmt.Sprintf(" Source=%v want store;", got.Source)
	}
	return s
}

func wantOf(d weir.Decision) want {
	return want{d.Allowed, d.Remaining, d.RetryAfter, d.ResetAfter, d.Delay}
}

func sameStatus(got, want weir.Status) bool {
	return got.Allowed == want.Allowed && got.Remaining == want.Remaining &&
		closeDur(got.RetryAfter, want.RetryAfter) && closeDur(got.ResetAfter, want.ResetAfter) &&
		closeDur(got.Delay, want.Delay) && got.Debt == want.Debt && got.Clamped == want.Clamped
}

// wantField checks that err is a *weir.FieldError matching ErrInvalid whose
// field contains field.
func wantField(t *testing.T, err error, field string, also error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one naming %q", field)
	}
	if !errors.Is(err, weir.ErrInvalid) {
		t.Fatalf("error %v does not match weir.ErrInvalid", err)
	}
	if also != nil && !errors.Is(err, also) {
		t.Fatalf("error %v does not match %v", err, also)
	}
	var fe *weir.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *weir.FieldError", err, err)
	}
	if !containsFold(fe.Field, field) {
		t.Fatalf("error %v names field %q, want one containing %q", err, fe.Field, field)
	}
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// scale picks n normally and short under testing.Short.
func scale(n, short int) int {
	if testing.Short() {
		return short
	}
	return n
}
