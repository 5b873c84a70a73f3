package weir

import (
	"errors"
	"fmt"
)

// Sentinel errors, for errors.Is.
var (
	// ErrInvalid is matched by every error caused by bad input: a bad
	// limit, a negative cost, a cost above a limit's capacity. Retrying
	// cannot help. Servers map it to 400 / INVALID_ARGUMENT.
	ErrInvalid = errors.New("weir: invalid argument")
	// ErrExceedsCapacity is matched when a request costs more than a limit
	// can ever admit (more than its burst or quota).
	ErrExceedsCapacity = errors.New("weir: cost exceeds the limit's capacity")
	// ErrLimited is matched when Wait, Acquire or Do gave up because the
	// request could not be admitted in time. The error is a *LimitError
	// carrying the Decision.
	ErrLimited = errors.New("weir: rate limited")
	// ErrUnavailable is matched when the store could not decide: the
	// backend is down, slow, or answered nonsense. Servers map it to
	// 503 / UNAVAILABLE; failure policies act on it.
	ErrUnavailable = errors.New("weir: store unavailable")
	// ErrConcurrency is returned by Allow, Wait and Reserve on a limiter
	// that has a Concurrency limit: such units must be given back, so use
	// Acquire (or Do) instead.
	ErrConcurrency = errors.New("weir: limiter has a concurrency limit; use Acquire or Do")
	// ErrSettled is returned by [Reservation.Settle] on a reservation
	// already settled or cancelled: its units were accounted for once.
	ErrSettled = errors.New("weir: reservation already settled or cancelled")
)

// A FieldError reports bad input and names the field at fault. It matches
// [ErrInvalid], and whatever Err matches.
type FieldError struct {
	Field  string // e.g. "Limit.Quota", "cost", "key"
	Reason string // what is wrong, with the value given
	Err    error  // a more specific sentinel such as ErrExceedsCapacity, or nil
}

// Error reports the field and the reason.
func (e *FieldError) Error() string { return "weir: invalid " + e.Field + ": " + e.Reason }

// Is reports whether target is ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns e.Err.
func (e *FieldError) Unwrap() error { return e.Err }

// A LimitError is returned when a waiting call gives up. It matches
// [ErrLimited], and context.DeadlineExceeded when the context's deadline
// was the reason.
type LimitError struct {
	Decision Decision
	Cause    error // context.DeadlineExceeded, or nil when MaxWait was the reason
}

// Error reports the deciding limit and the retry delay.
func (e *LimitError) Error() string {
	d := e.Decision
	msg := fmt.Sprintf("weir: rate limited by %q: retry after %v", d.Limit.Name, d.RetryAfter)
	if e.Cause != nil {
		msg += " (" + e.Cause.Error() + ")"
	}
	return msg
}

// Is reports whether target is ErrLimited.
func (e *LimitError) Is(target error) bool { return target == ErrLimited }

// Unwrap returns the cause.
func (e *LimitError) Unwrap() error { return e.Cause }
