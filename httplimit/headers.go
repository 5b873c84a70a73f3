package httplimit

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/weir-go/weir"
)

// Header names. The RateLimit fields follow the IETF draft
// draft-ietf-httpapi-ratelimit-headers-11; the X-RateLimit fields are the
// de-facto legacy set (GitHub's names).
const (
	HeaderRateLimit       = "RateLimit"
	HeaderRateLimitPolicy = "RateLimit-Policy"
	HeaderRetryAfter      = "Retry-After"
	HeaderXRateLimitLimit = "X-RateLimit-Limit"
	HeaderXRateLimitLeft  = "X-RateLimit-Remaining"
	HeaderXRateLimitReset = "X-RateLimit-Reset"
)

// Canonical forms, for direct map access without canonicalizing per request.
var (
	hRateLimit       = http.CanonicalHeaderKey(HeaderRateLimit)
	hRateLimitPolicy = http.CanonicalHeaderKey(HeaderRateLimitPolicy)
	hRetryAfter      = http.CanonicalHeaderKey(HeaderRetryAfter)
	hXLimit          = http.CanonicalHeaderKey(HeaderXRateLimitLimit)
	hXRemaining      = http.CanonicalHeaderKey(HeaderXRateLimitLeft)
	hXReset          = http.CanonicalHeaderKey(HeaderXRateLimitReset)
	hContentType     = http.CanonicalHeaderKey("Content-Type")
)

// A HeaderMode selects the rate-limit fields the middleware writes. Modes
// combine with |. Retry-After is written on every 429 whatever the mode.
type HeaderMode uint8

// The header modes.
const (
	// HeadersOff writes no rate-limit fields (Retry-After still goes with
	// a 429).
	HeadersOff HeaderMode = 0
	// HeadersDraft writes RateLimit-Policy and RateLimit per the IETF
	// draft-11, on every response. It is the default.
	HeadersDraft HeaderMode = 1 << 0
	// HeadersLegacy writes X-RateLimit-Limit, X-RateLimit-Remaining and
	// X-RateLimit-Reset for the deciding limit, Reset as Unix seconds (as
	// GitHub does).
	HeadersLegacy HeaderMode = 1 << 1
	// HeadersLegacyDelta is HeadersLegacy with X-RateLimit-Reset in seconds
	// from now (as Envoy does).
	HeadersLegacyDelta HeaderMode = 1 << 2
)

// A QuotaPolicy is one item of the RateLimit-Policy field: a named quota
// over a window.
type QuotaPolicy struct {
	// Name is the policy name (the Limit's Name); empty in the older
	// draft-07 form, which has no names.
	Name string
	// Quota is q: the units allowed per Window.
	Quota int64
	// Unit is qu: "" (meaning requests), "content-bytes" or
	// "concurrent-requests".
	Unit string
	// Window is w, in whole seconds; 0 when the field has none.
	Window time.Duration
}

// A QuotaStatus is one item of the RateLimit field: what is left of a
// policy.
type QuotaStatus struct {
	// Name is the policy name; empty in the draft-07 dictionary form.
	Name string
	// Remaining is r: units still available. A hint, not a promise.
	Remaining int64
	// Reset is t: the seconds within which Remaining applies (for the
	// draft-07 form: until the quota resets). Valid when HasReset.
	Reset    time.Duration
	HasReset bool
	// Limit is the draft-07 "limit" member; 0 otherwise.
	Limit int64
}

// PolicyOf returns the RateLimit-Policy item that advertises l:
//
//   - q is Quota and w is Period in seconds, for every algorithm but
//     Concurrency. For a token bucket this is its sustained rate (Quota per
//     Period); its Burst is not part of the draft's vocabulary.
//   - A Period that is not a whole number of seconds is scaled up to the
//     smallest whole window with the same rate: 10 per 100ms is advertised
//     as q=100;w=1, 3 per 1500ms as q=6;w=3. If that cannot be written, w
//     is left out.
//   - A Concurrency limit is q=Quota;qu="concurrent-requests" and no w.
func PolicyOf(l weir.Limit) QuotaPolicy {
	p := QuotaPolicy{Name: l.Name, Quota: l.Quota}
	if p.Name == "" {
		p.Name = l.String()
	}
	if l.Algorithm == weir.Concurrency {
		p.Unit = "concurrent-requests"
		return p
	}
	if l.Period <= 0 {
		return p
	}
	k := int64(time.Second) / gcd(int64(l.Period), int64(time.Second))
	if l.Quota > math.MaxInt64/k || int64(l.Period) > math.MaxInt64/k {
		return p
	}
	q, w := l.Quota*k, int64(l.Period)*k/int64(time.Second)
	if q > sfMaxInt || w > sfMaxInt {
		return p
	}
	p.Quota, p.Window = q, time.Duration(w)*time.Second
	return p
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// AppendPolicy appends p as one RateLimit-Policy list item, for example
// "name";q=100;w=60. Characters of Name outside printable ASCII are written
// as '?'.
func AppendPolicy(b []byte, p QuotaPolicy) []byte {
	b = appendSFString(b, sanitize(p.Name))
	b = appendSFInt(b, "q", p.Quota)
	if p.Unit != "" {
		b = append(b, ";qu="...)
		b = appendSFString(b, sanitize(p.Unit))
	}
	if p.Window > 0 {
		b = appendSFInt(b, "w", int64(p.Window/time.Second))
	}
	return b
}

// AppendStatus appends s as one RateLimit list item, for example
// "name";r=42;t=17. Remaining below 0 is written as 0; Reset is rounded up
// to whole seconds.
func AppendStatus(b []byte, s QuotaStatus) []byte {
	b = appendSFString(b, sanitize(s.Name))
	b = appendSFInt(b, "r", max(s.Remaining, 0))
	if s.HasReset {
		b = appendSFInt(b, "t", ceilSeconds(s.Reset))
	}
	return b
}

func sanitize(s string) string {
	if validSFString(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// ceilSeconds is d in whole seconds, rounded up, never negative.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// combined joins the field lines of name with ", ", as RFC 9110 allows
// for list-based fields.
func combined(h http.Header, name string) (string, bool) {
	vs := h[http.CanonicalHeaderKey(name)]
	switch len(vs) {
	case 0:
		return "", false
	case 1:
		return vs[0], true
	}
	return strings.Join(vs, ", "), true
}

// ParsePolicies reads the RateLimit-Policy field of h, in the draft-08+
// form ("name";q=100;w=60, …) or the draft-07 form (100;w=60). It returns
// nil and no error when the field is absent, and an error when it is
// malformed (the draft says to ignore such a field).
func ParsePolicies(h http.Header) ([]QuotaPolicy, error) {
	v, ok := combined(h, HeaderRateLimitPolicy)
	if !ok {
		return nil, nil
	}
	items, err := parseSFList(v)
	if err != nil {
		return nil, &HeaderError{Field: HeaderRateLimitPolicy, Reason: err.Error()}
	}
	out := make([]QuotaPolicy, 0, len(items))
	for _, it := range items {
		var p QuotaPolicy
		switch it.kind {
		case sfString:
			p.Name = it.str
			q, ok := it.param("q")
			if !ok || q.kind != sfInteger || q.num < 0 {
				return nil, &HeaderError{Field: HeaderRateLimitPolicy, Reason: "policy " + strconv.Quote(p.Name) + " has no valid q"}
			}
			p.Quota = q.num
		case sfInteger: // draft-07: the quota is the item
			p.Quota = it.num
		default:
			return nil, &HeaderError{Field: HeaderRateLimitPolicy, Reason: "item is neither a name nor a quota"}
		}
		if w, ok := it.param("w"); ok {
			if w.kind != sfInteger || w.num <= 0 {
				return nil, &HeaderError{Field: HeaderRateLimitPolicy, Reason: "w must be a positive integer"}
			}
			if w.num > maxWindowSeconds {
				return nil, &HeaderError{Field: HeaderRateLimitPolicy, Reason: "w " + strconv.FormatInt(w.num, 10) + " is longer than a time.Duration holds (about 292 years)"}
			}
			p.Window = time.Duration(w.num) * time.Second
		}
		if qu, ok := it.param("qu"); ok {
			if qu.kind != sfString && qu.kind != sfToken {
				return nil, &HeaderError{Field: HeaderRateLimitPolicy, Reason: "qu must be a string"}
			}
			p.Unit = qu.str
		}
		out = append(out, p)
	}
	return out, nil
}

// maxWindowSeconds is the longest window, in seconds, a time.Duration
// holds.
const maxWindowSeconds = math.MaxInt64 / int64(time.Second)

// seconds converts n >= 0 seconds to a Duration, saturating (a reset time
// beyond 292 years is a hint of "not soon", not an error).
func seconds(n int64) time.Duration {
	return time.Duration(min(n, maxWindowSeconds)) * time.Second
}

// ParseRateLimit reads the RateLimit field of h, in the draft-08+ list
// form ("name";r=42;t=17, …) or the draft-07 dictionary form
// (limit=100, remaining=42, reset=17). It returns nil and no error when
// the field is absent, and an error when it is malformed.
func ParseRateLimit(h http.Header) ([]QuotaStatus, error) {
	v, ok := combined(h, HeaderRateLimit)
	if !ok {
		return nil, nil
	}
	if items, err := parseSFList(v); err == nil {
		out := make([]QuotaStatus, 0, len(items))
		for _, it := range items {
			if it.kind != sfString {
				return nil, &HeaderError{Field: HeaderRateLimit, Reason: "item is not a policy name"}
			}
			s := QuotaStatus{Name: it.str}
			r, ok := it.param("r")
			if !ok || r.kind != sfInteger || r.num < 0 {
				return nil, &HeaderError{Field: HeaderRateLimit, Reason: "policy " + strconv.Quote(s.Name) + " has no valid r"}
			}
			s.Remaining = r.num
			if t, ok := it.param("t"); ok {
				if t.kind != sfInteger || t.num < 0 {
					return nil, &HeaderError{Field: HeaderRateLimit, Reason: "t must be a non-negative integer"}
				}
				s.Reset, s.HasReset = seconds(t.num), true
			}
			out = append(out, s)
		}
		return out, nil
	}
	members, err := parseSFDict(v)
	if err != nil {
		return nil, &HeaderError{Field: HeaderRateLimit, Reason: err.Error()}
	}
	var s QuotaStatus
	seen := false
	for _, m := range members {
		if m.val.kind != sfInteger || m.val.num < 0 {
			continue
		}
		switch m.key {
		case "limit":
			s.Limit = m.val.num
		case "remaining":
			s.Remaining, seen = m.val.num, true
		case "reset":
			s.Reset, s.HasReset = seconds(m.val.num), true
		}
	}
	if !seen {
		return nil, &HeaderError{Field: HeaderRateLimit, Reason: "no remaining member"}
	}
	return []QuotaStatus{s}, nil
}

// ParseRetryAfter reads the Retry-After field of h, in delay-seconds or as
// an HTTP-date (measured from the response's Date field when it has one,
// else from now). The wait is never negative.
func ParseRetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get(HeaderRetryAfter))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return seconds(n), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		now = d
	}
	return max(t.Sub(now), 0), true
}

// A HeaderError reports a malformed rate-limit field.
type HeaderError struct {
	Field  string
	Reason string
}

// Error names the field and what is wrong with it.
func (e *HeaderError) Error() string { return "httplimit: malformed " + e.Field + ": " + e.Reason }
