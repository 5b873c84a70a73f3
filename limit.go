package weir

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/weir-go/weir/internal/algo"
)

// Algorithm selects how a [Limit] counts.
type Algorithm uint8

// The algorithms. See docs/algorithms.md for each one's exact bound.
const (
	// TokenBucket is a token bucket implemented as GCRA: Quota per Period
	// refilled continuously, holding at most Burst. It is the zero value and
	// the only algorithm that supports reservations (Wait and Reserve that
	// take now and act later).
	TokenBucket Algorithm = iota
	// SlidingWindowLog is exact: never more than Quota in any window of
	// length Period. Memory grows with the number of requests in a window.
	SlidingWindowLog
	// SlidingWindowCounter approximates a sliding window with the current
	// and previous fixed windows, weighting the previous one linearly.
	SlidingWindowCounter
	// FixedWindow counts in windows aligned to the Unix epoch, as Envoy's
	// reference rate-limit service does. Up to 2*Quota can pass around a
	// window boundary.
	FixedWindow
	// Concurrency holds at most Quota units at once. Units are taken with
	// [Limiter.Acquire] and given back with [Lease.Release], or after Period
	// (the lease TTL) if the holder never releases them.
	Concurrency
)

var algoNames = [...]string{
	TokenBucket:          "token-bucket",
	SlidingWindowLog:     "sliding-log",
	SlidingWindowCounter: "sliding-window",
	FixedWindow:          "fixed-window",
	Concurrency:          "concurrency",
}

// String returns the algorithm's name as ParseAlgorithm accepts it.
func (a Algorithm) String() string {
	if int(a) < len(algoNames) {
		return algoNames[a]
	}
	return "Algorithm(" + strconv.Itoa(int(a)) + ")"
}

// ParseAlgorithm parses an algorithm name: token-bucket (or gcra, tb),
// sliding-log (or log), sliding-window (or sliding-counter, swc),
// fixed-window (or fixed), concurrency (or semaphore). Case is ignored.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "token-bucket", "tokenbucket", "gcra", "tb":
		return TokenBucket, nil
	case "sliding-log", "sliding-window-log", "log":
		return SlidingWindowLog, nil
	case "sliding-window", "sliding-window-counter", "sliding-counter", "swc":
		return SlidingWindowCounter, nil
	case "fixed-window", "fixed":
		return FixedWindow, nil
	case "concurrency", "semaphore", "concurrent":
		return Concurrency, nil
	}
	return 0, &FieldError{Field: "algorithm", Reason: fmt.Sprintf("unknown algorithm %q", s)}
}

// MarshalText implements encoding.TextMarshaler.
func (a Algorithm) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with [ParseAlgorithm].
func (a *Algorithm) UnmarshalText(b []byte) error {
	v, err := ParseAlgorithm(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// A Limit is an algorithm with a quota per period: "100 per second, bursts
// of 200, as a token bucket". Build one with [PerSecond], [PerMinute],
// [PerHour], [PerDay], [Per], [Every] or [Concurrent], adjust it with the
// With methods, or parse the text form with [ParseLimit]. A Limit is a small
// comparable value; the zero Limit is invalid.
type Limit struct {
	// Name identifies the limit in decisions, headers and metrics, and keeps
	// its state apart from other limits on the same key: limits with the same
	// Name share state for a key. Empty means [Limit.String].
	Name string
	// Algorithm is how the limit counts; the zero value is TokenBucket.
	Algorithm Algorithm
	// Quota is the number of units admitted per Period; for Concurrency, the
	// number of units held at once. At least 1.
	Quota int64
	// Period is the window, from 1µs to 100 years, a whole number of
	// microseconds (so every store, Redis included, agrees on it). For
	// Concurrency it is the lease TTL.
	Period time.Duration
	// Burst is the token bucket's capacity: how many units can pass at once
	// after a quiet spell. 0 means Quota. Only TokenBucket uses it.
	Burst int64
	// MaxDebt caps the debt a [Limiter.Charge] (or the excess of a
	// [Reservation.Settle]) can leave, in units beyond an empty limit: a
	// charge that would owe more is clamped to it and the Decision says
	// Clamped. It bounds how long a key is locked out: for the token bucket
	// at most (MaxDebt+1)·Period/Quota until one unit is back. 0 means no
	// cap of its own: the debt is still bounded by MaxDebtUnits and, for
	// the token bucket, by a span of 100 years. Not for Concurrency limits.
	MaxDebt int64
}

// MaxDebtUnits is the largest debt any limit can hold, and the largest
// cost of one charge: 2^50 units, so that every store (Redis included,
// which computes in doubles) counts it exactly.
const MaxDebtUnits = algo.MaxDebtUnits

// Per returns a token-bucket limit of n units per period d.
func Per(n int64, d time.Duration) Limit { return Limit{Quota: n, Period: d} }

// PerSecond returns a token-bucket limit of n units per second.
func PerSecond(n int64) Limit { return Per(n, time.Second) }

// PerMinute returns a token-bucket limit of n units per minute.
func PerMinute(n int64) Limit { return Per(n, time.Minute) }

// PerHour returns a token-bucket limit of n units per hour.
func PerHour(n int64) Limit { return Per(n, time.Hour) }

// PerDay returns a token-bucket limit of n units per 24 hours.
func PerDay(n int64) Limit { return Per(n, 24*time.Hour) }

// Every returns a token-bucket limit of one unit every d.
func Every(d time.Duration) Limit { return Per(1, d) }

// Concurrent returns a concurrency limit: at most n units held at once, each
// lease expiring after ttl unless released sooner.
func Concurrent(n int64, ttl time.Duration) Limit {
	return Limit{Algorithm: Concurrency, Quota: n, Period: ttl}
}

// WithBurst returns l with burst b (token bucket only).
func (l Limit) WithBurst(b int64) Limit { l.Burst = b; return l }

// WithAlgorithm returns l counted by algorithm a.
func (l Limit) WithAlgorithm(a Algorithm) Limit { l.Algorithm = a; return l }

// WithMaxDebt returns l with its debt capped at n units (see
// [Limit.MaxDebt]).
func (l Limit) WithMaxDebt(n int64) Limit { l.MaxDebt = n; return l }

// WithName returns l named name.
func (l Limit) WithName(name string) Limit { l.Name = name; return l }

// Named returns l with its Name filled in: l itself when it has a Name,
// else l named by its text form ([Limit.String]). A store keeps a limit's
// state under this name, and a [Decision] reports its Limit named.
func (l Limit) Named() Limit {
	if l.Name == "" {
		l.Name = l.String()
	}
	return l
}

// Capacity is the largest cost a single request may have: Burst (or Quota
// when Burst is 0) for the token bucket, Quota for the others. A request
// that costs more can never be admitted.
func (l Limit) Capacity() int64 {
	if l.Algorithm == TokenBucket && l.Burst > 0 {
		return l.Burst
	}
	return l.Quota
}

// Params returns the limit in the form internal/algo works with.
func (l Limit) params() algo.Params {
	return algo.Params{Kind: algo.Kind(l.Algorithm), Quota: l.Quota, Period: int64(l.Period), Burst: l.Burst, MaxDebt: l.MaxDebt}
}

// Validate reports whether l can be used. The error is a *[FieldError]
// naming the field, and matches [ErrInvalid].
func (l Limit) Validate() error {
	if int(l.Algorithm) >= len(algoNames) {
		return &FieldError{Field: "Limit.Algorithm", Reason: fmt.Sprintf("unknown algorithm %d", l.Algorithm)}
	}
	if l.Period > 0 && l.Period%time.Microsecond != 0 {
		return &FieldError{Field: "Limit.Period", Reason: fmt.Sprintf("must be a whole number of microseconds (got %v)", l.Period)}
	}
	p := l.params()
	if err := p.Validate(); err != nil {
		pe := err.(*algo.ParamError)
		return &FieldError{Field: "Limit." + pe.Field, Reason: pe.Reason}
	}
	return nil
}

// String returns the text form of l, which [ParseLimit] reads back:
// "100/s", "5/2s burst=10", "10/15m algo=fixed-window", "1000/m debt=5000".
// The Name is not part of it.
func (l Limit) String() string {
	var b strings.Builder
	b.WriteString(strconv.FormatInt(l.Quota, 10))
	b.WriteByte('/')
	b.WriteString(formatPeriod(l.Period))
	if l.Burst != 0 {
		b.WriteString(" burst=")
		b.WriteString(strconv.FormatInt(l.Burst, 10))
	}
	if l.Algorithm != TokenBucket {
		b.WriteString(" algo=")
		b.WriteString(l.Algorithm.String())
	}
	if l.MaxDebt != 0 {
		b.WriteString(" debt=")
		b.WriteString(strconv.FormatInt(l.MaxDebt, 10))
	}
	return b.String()
}

func formatPeriod(d time.Duration) string {
	units := []struct {
		d    time.Duration
		name string
	}{
		{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"},
		{time.Millisecond, "ms"}, {time.Microsecond, "us"}, {1, "ns"},
	}
	if d <= 0 {
		return strconv.FormatInt(int64(d), 10) + "ns"
	}
	for _, u := range units {
		if d%u.d == 0 {
			if n := d / u.d; n != 1 {
				return strconv.FormatInt(int64(n), 10) + u.name
			}
			return u.name
		}
	}
	return d.String()
}

// MarshalText implements encoding.TextMarshaler with [Limit.String]; the
// name is not included.
func (l Limit) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with [ParseLimit].
func (l *Limit) UnmarshalText(b []byte) error {
	v, err := ParseLimit(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// ParseLimit parses the text form used by the CLI and config files:
//
//	QUOTA/PERIOD [burst=N] [algo=NAME] [debt=N] [name=NAME]
//
// PERIOD is a unit (s, m, h, d, w, ms, us; also sec, second, min, minute,
// hour, day, week), optionally preceded by a whole count ("2s", "15m"), or
// a Go duration ("1h30m"). Modifiers are separated by spaces or commas.
// Examples: "100/s", "5/2s", "500/h", "1000/day", "10/15m",
// "100/s burst=200", "60/m algo=sliding-log", "5/30s algo=concurrency",
// "10000/m debt=50000" (debt, or max-debt, sets [Limit.MaxDebt]).
// The result is validated.
func ParseLimit(s string) (Limit, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	if len(fields) == 0 {
		return Limit{}, &FieldError{Field: "limit", Reason: "empty"}
	}
	var l Limit
	q, per, ok := strings.Cut(fields[0], "/")
	if !ok {
		return Limit{}, &FieldError{Field: "limit", Reason: fmt.Sprintf("%q is not QUOTA/PERIOD", fields[0])}
	}
	n, err := strconv.ParseInt(q, 10, 64)
	if err != nil {
		return Limit{}, &FieldError{Field: "Limit.Quota", Reason: fmt.Sprintf("%q is not a whole number", q)}
	}
	l.Quota = n
	if l.Period, err = parsePeriod(per); err != nil {
		return Limit{}, err
	}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return Limit{}, &FieldError{Field: "limit", Reason: fmt.Sprintf("modifier %q is not KEY=VALUE", f)}
		}
		switch strings.ToLower(k) {
		case "burst":
			if l.Burst, err = strconv.ParseInt(v, 10, 64); err != nil {
				return Limit{}, &FieldError{Field: "Limit.Burst", Reason: fmt.Sprintf("%q is not a whole number", v)}
			}
		case "algo", "algorithm":
			if l.Algorithm, err = ParseAlgorithm(v); err != nil {
				return Limit{}, err
			}
		case "debt", "maxdebt", "max-debt":
			if l.MaxDebt, err = strconv.ParseInt(v, 10, 64); err != nil {
				return Limit{}, &FieldError{Field: "Limit.MaxDebt", Reason: fmt.Sprintf("%q is not a whole number", v)}
			}
		case "name":
			l.Name = v
		default:
			return Limit{}, &FieldError{Field: "limit", Reason: fmt.Sprintf("unknown modifier %q (want burst, algo, debt or name)", k)}
		}
	}
	if err := l.Validate(); err != nil {
		return Limit{}, err
	}
	return l, nil
}

func parsePeriod(s string) (time.Duration, error) {
	unit := strings.TrimLeft(s, "0123456789")
	count := int64(1)
	if digits := s[:len(s)-len(unit)]; digits != "" {
		n, err := strconv.ParseInt(digits, 10, 64)
		if err != nil || n <= 0 {
			return 0, &FieldError{Field: "Limit.Period", Reason: fmt.Sprintf("bad count in %q", s)}
		}
		count = n
	}
	var d time.Duration
	switch strings.ToLower(unit) {
	case "ns", "nanosecond", "nanoseconds":
		d = time.Nanosecond
	case "us", "µs", "microsecond", "microseconds":
		d = time.Microsecond
	case "ms", "millisecond", "milliseconds":
		d = time.Millisecond
	case "s", "sec", "secs", "second", "seconds":
		d = time.Second
	case "m", "min", "mins", "minute", "minutes":
		d = time.Minute
	case "h", "hr", "hour", "hours":
		d = time.Hour
	case "d", "day", "days":
		d = 24 * time.Hour
	case "w", "week", "weeks":
		d = 7 * 24 * time.Hour
	default:
		gd, err := time.ParseDuration(s)
		if err != nil || gd <= 0 {
			return 0, &FieldError{Field: "Limit.Period", Reason: fmt.Sprintf("%q is not a period (try s, m, h, d or a duration like 1h30m)", s)}
		}
		return gd, nil
	}
	if count > int64(algo.MaxPeriod)/int64(d) {
		return 0, &FieldError{Field: "Limit.Period", Reason: fmt.Sprintf("%q is longer than 100 years", s)}
	}
	return time.Duration(count) * d, nil
}
