package httplimit

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/weir-go/weir"
)

// An Outcome is what the handler made of a request, as a policy that
// charges after the handler ([Policy.Cost], [Policy.Count]) reads it.
//
// A policy reads the outcome twice: when the response head is sent (the
// handler's first WriteHeader, Write or Flush, or its return if it wrote
// nothing), so that the RateLimit fields of the response carry the
// charge, and when the handler has returned (Done), so that a cost learnt
// while the body was written (a stream that reports its size or its
// tokens at the end) is charged too. Only the difference between the two
// readings is charged the second time.
type Outcome struct {
	// Request is the request the handler served.
	Request *http.Request
	// Status is the response status: the code the handler wrote, or 200
	// when it wrote a body without one or nothing at all.
	Status int
	// Header is the response header: as it was sent, or, when Done, as
	// it stands at the handler's return. Read it; do not change it.
	Header http.Header
	// Written counts the body bytes written so far.
	Written int64
	// Estimate is what the policy took before the handler ran
	// ([Policy.Estimate]; 0 when it only checked).
	Estimate int64
	// Done is false while the response head is being sent and true once
	// the handler has returned.
	Done bool

	reported *costCell
}

// Reported returns the cost the handler reported with [ReportCost], and
// whether it reported one (yet).
func (o *Outcome) Reported() (int64, bool) {
	if o.reported == nil {
		return 0, false
	}
	return o.reported.get()
}

// costCell holds the cost a handler reported.
type costCell struct {
	n   atomic.Int64
	set atomic.Bool
}

func (c *costCell) get() (int64, bool) {
	if !c.set.Load() {
		return 0, false
	}
	return c.n.Load(), true
}

type costKey struct{}

// ReportCost tells the middleware what the request in ctx cost, for the
// policies that read it ([ReportedCost]). Call it from the handler with
// the request's context, before the response head is sent for the cost
// to show in the RateLimit fields of this response, or later (even after
// the body is written, before the handler returns) for it to be charged
// all the same. A later call replaces an earlier one. It reports whether
// ctx belongs to a request under such a middleware; elsewhere it does
// nothing.
func ReportCost(ctx context.Context, n int64) bool {
	c, ok := ctx.Value(costKey{}).(*costCell)
	if !ok {
		return false
	}
	c.n.Store(n)
	c.set.Store(true)
	return true
}

// ReportedCost is a [Policy.Cost] that charges what the handler reported
// with [ReportCost], or the estimate when it reported nothing.
func ReportedCost(o *Outcome) int64 {
	if n, ok := o.Reported(); ok {
		return n
	}
	return o.Estimate
}

// HeaderCost returns a [Policy.Cost] that charges the integer in the
// response header field name (as an upstream's "X-Tokens-Used: 731"). A
// missing field, or one that is not a non-negative decimal integer,
// charges the estimate.
func HeaderCost(name string) func(*Outcome) int64 {
	name = http.CanonicalHeaderKey(name)
	return func(o *Outcome) int64 {
		if vs := o.Header[name]; len(vs) > 0 {
			if n, err := strconv.ParseInt(strings.TrimSpace(vs[0]), 10, 64); err == nil && n >= 0 {
				return n
			}
		}
		return o.Estimate
	}
}

// StatusIn returns a [Policy.Count] that counts the responses with one of
// the given status codes: StatusIn(401, 403) for a login limit that only
// failed attempts use up.
func StatusIn(codes ...int) func(*Outcome) bool {
	set := append([]int(nil), codes...)
	return func(o *Outcome) bool {
		for _, c := range set {
			if o.Status == c {
				return true
			}
		}
		return false
	}
}

// cost is what the policy charges for o: Cost (or 1) when Count admits
// it, else 0, never negative nor above weir.MaxDebtUnits.
func (p *policy) cost(o *Outcome) int64 {
	if p.count != nil && !p.count(o) {
		return 0
	}
	n := int64(1)
	if p.costFn != nil {
		n = p.costFn(o)
	}
	return min(max(n, 0), weir.MaxDebtUnits)
}

// afterWriter watches the handler's response for the policies that charge
// after it: it charges them when the head is sent, so that the RateLimit
// fields carry the charge, and counts the body.
type afterWriter struct {
	http.ResponseWriter
	m       *Middleware
	s       *scratch
	r       *http.Request
	cell    *costCell
	status  int
	written int64
}

func (w *afterWriter) head(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if w.m.settleAfter(w.r.Context(), w.s, w.outcome(false), true) {
		w.m.writeHeaders(w.ResponseWriter.Header(), w.s)
	}
}

func (w *afterWriter) outcome(done bool) Outcome {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	return Outcome{Request: w.r, Status: status, Header: w.ResponseWriter.Header(), Written: w.written, Done: done, reported: w.cell}
}

// WriteHeader charges the policies with the outcome known so far, then
// sends the head. Informational codes (1xx but 101) pass through.
func (w *afterWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.head(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *afterWriter) Write(p []byte) (int, error) {
	w.head(http.StatusOK)
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

// Flush sends the head, charging first, and flushes if the underlying
// writer can.
func (w *afterWriter) Flush() {
	w.head(http.StatusOK)
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands the connection over: the outcome is then status 101.
func (w *afterWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.head(http.StatusSwitchingProtocols)
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *afterWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serveAfter runs next for a request that some policy charges after it.
func (m *Middleware) serveAfter(w http.ResponseWriter, r *http.Request, next http.Handler, s *scratch) {
	cell := new(costCell)
	r2 := r.WithContext(context.WithValue(r.Context(), costKey{}, cell))
	aw := &afterWriter{ResponseWriter: w, m: m, s: s, r: r2, cell: cell}
	next.ServeHTTP(aw, r2)
	// A handler that panics skips this: it stays charged its estimate.
	if aw.status == 0 {
		aw.head(http.StatusOK) // net/http sends 200 for a handler that wrote nothing
	}
	m.settleAfter(r.Context(), s, aw.outcome(true), false)
}

// settleAfter charges every matched policy that charges after the
// handler what o says it cost, less what it was charged already, and
// records the charge in s. head says whether the response head is still
// to be sent (then the statuses in s are refreshed for the RateLimit
// fields). It reports whether it charged or gave back anything.
func (m *Middleware) settleAfter(ctx context.Context, s *scratch, o Outcome, head bool) bool {
	changed := false
	ctx = context.WithoutCancel(ctx)
	for _, i := range s.matched {
		p := &m.policies[i]
		if !p.after {
			continue
		}
		g := p.group
		o.Estimate = s.cost[g]
		want := p.cost(&o)
		have := s.charged[g]
		if want == have {
			continue
		}
		err := m.settle(ctx, g, s, have, want, head)
		if err != nil {
			if m.onChargeError != nil {
				m.onChargeError(o.Request, err)
			}
			continue
		}
		s.charged[g] = want
		changed = true
	}
	return changed
}

// settle moves group g's charge from have to want units: the excess is
// charged whatever is left (a limit may go into debt), a shortfall is
// given back. With head, the group's statuses are refreshed.
func (m *Middleware) settle(ctx context.Context, g int, s *scratch, have, want int64, head bool) error {
	req := &s.reqs[g]
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st := m.stores[g]
	if want > have {
		charge := &weir.Request{Checks: req.Checks, Cost: want - have, Force: true}
		if head {
			charge.Statuses = req.Statuses
		}
		d, err := st.Take(rctx, charge)
		if err != nil {
			return err
		}
		if head {
			m.noteSettled(s, g, d)
		}
		return nil
	}
	at := s.dec[g].Time.Add(s.dec[g].Delay)
	if err := st.Refund(rctx, &weir.Request{Checks: req.Checks, Cost: have - want, At: at, Force: true}); err != nil {
		return err
	}
	if head {
		d, err := st.Take(rctx, &weir.Request{Checks: req.Checks, Statuses: req.Statuses})
		if err != nil {
			return err
		}
		m.noteSettled(s, g, d)
	}
	return nil
}

// noteSettled makes d, group g's decision after a settle, the deciding
// one when it leaves fewer units than the current one.
func (m *Middleware) noteSettled(s *scratch, g int, d weir.Decision) {
	d.Allowed = true // the request was admitted; d describes what is left
	d.RetryAfter = 0
	if s.res.Decision.Source == weir.SourceFailOpen || d.Remaining < s.res.Decision.Remaining {
		s.res.Decision = d
	}
}
