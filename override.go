package weir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxOverrides is the most overrides an [OverrideStore] keeps, across all
// scopes; expired ones do not count. Setting one more fails with a
// *[FieldError] naming "overrides" (matching [ErrInvalid] and
// [ErrTooManyOverrides]).
const MaxOverrides = 10000

// Bounds on the fields of an [Override] and a [Plan].
const (
	// MaxOverrideKey is the longest Override.Key, in bytes.
	MaxOverrideKey = 4096
	// MaxReason is the longest Override.Reason or Override.By, in bytes.
	MaxReason = 512
	// MaxPlanLimits is the most limits a Plan or an Override holds.
	MaxPlanLimits = 16
)

// ErrNoOverride is returned by [OverrideStore.GetOverride] and
// [OverrideStore.DeleteOverride] when no live override exists for the
// scope and key.
var ErrNoOverride = errors.New("weir: no such override")

// ErrTooManyOverrides is matched by the error of
// [OverrideStore.SetOverride] when the store already holds
// [MaxOverrides] live overrides.
var ErrTooManyOverrides = errors.New("weir: too many overrides")

// An Override gives one key of one scope (a server policy, or the name a
// [PlanTable] was made with) other limits than its plan's, until it
// expires: a boost for a customer, a pin to 0 for an abusive key (a limit
// whose quota is 1 per 100 years), or a move to another plan.
//
// Exactly one of Plan and Limits is set. Limits without a Name are named
// as the [PlanTable] names plan limits, so a key's state carries over
// when its limits change (see [PlanTable]).
type Override struct {
	// Scope is the policy (server) or table (library) the override
	// belongs to: 1 to 64 letters, digits, '.', '_' or '-'.
	Scope string
	// Key is the state key the override applies to (1 to MaxOverrideKey
	// bytes of UTF-8).
	Key string
	// Plan names the plan the key uses instead of its own.
	Plan string
	// Limits are explicit limits the key uses instead of its plan's (at
	// most MaxPlanLimits).
	Limits []Limit
	// Expires, when not zero, is when the override ends by itself: from
	// then on it is ignored, and stores remove it later.
	Expires time.Time
	// Reason says why, for the log and listings (at most MaxReason bytes).
	Reason string
	// By says who set it (an admin token's label, a user), if known.
	By string
	// Updated is when the store recorded it; stores set it.
	Updated time.Time
}

// Expired reports whether o has ended at now.
func (o *Override) Expired(now time.Time) bool {
	return !o.Expires.IsZero() && !now.Before(o.Expires)
}

// Validate reports whether o can be stored. The error is a *[FieldError]
// naming the field ("Override.Limits[1].Quota", "Override.Key", ...).
func (o *Override) Validate() error {
	if !validScope(o.Scope) {
		return &FieldError{Field: "Override.Scope", Reason: fmt.Sprintf("%q: use 1 to 64 letters, digits, '.', '_' or '-'", o.Scope)}
	}
	if o.Key == "" || len(o.Key) > MaxOverrideKey || !utf8.ValidString(o.Key) {
		return &FieldError{Field: "Override.Key", Reason: fmt.Sprintf("must be 1 to %d bytes of UTF-8 (got %d bytes)", MaxOverrideKey, len(o.Key))}
	}
	switch {
	case o.Plan == "" && len(o.Limits) == 0:
		return &FieldError{Field: "Override.Plan", Reason: "give a plan or limits"}
	case o.Plan != "" && len(o.Limits) > 0:
		return &FieldError{Field: "Override.Plan", Reason: "give a plan or limits, not both"}
	case o.Plan != "" && !validScope(o.Plan):
		return &FieldError{Field: "Override.Plan", Reason: fmt.Sprintf("%q is not a plan name", o.Plan)}
	}
	if err := validateLimits("Override.Limits", o.Limits); err != nil {
		return err
	}
	for i, l := range o.Limits {
		// The stored form is the text form with " name=NAME".
		if strings.ContainsAny(l.Name, " ,\t=") {
			return &FieldError{Field: fmt.Sprintf("Override.Limits[%d].Name", i), Reason: fmt.Sprintf("%q: a name has no spaces, commas or '='", l.Name)}
		}
	}
	if len(o.Reason) > MaxReason || !utf8.ValidString(o.Reason) {
		return &FieldError{Field: "Override.Reason", Reason: fmt.Sprintf("must be at most %d bytes of UTF-8", MaxReason)}
	}
	if len(o.By) > MaxReason || !utf8.ValidString(o.By) {
		return &FieldError{Field: "Override.By", Reason: fmt.Sprintf("must be at most %d bytes of UTF-8", MaxReason)}
	}
	return nil
}

// validateLimits checks a plan's or override's limits; field prefixes the
// names in errors.
func validateLimits(field string, ls []Limit) error {
	if len(ls) > MaxPlanLimits {
		return &FieldError{Field: field, Reason: fmt.Sprintf("at most %d limits (got %d)", MaxPlanLimits, len(ls))}
	}
	for i, l := range ls {
		if err := l.Validate(); err != nil {
			fe := err.(*FieldError)
			return &FieldError{Field: fmt.Sprintf("%s[%d].%s", field, i, strings.TrimPrefix(fe.Field, "Limit.")), Reason: fe.Reason}
		}
	}
	return nil
}

func validScope(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// overrideJSON is the stored form of an Override: limits in their text
// form with the name as a modifier, times in Unix nanoseconds.
type overrideJSON struct {
	Scope   string   `json:"scope"`
	Key     string   `json:"key"`
	Plan    string   `json:"plan,omitempty"`
	Limits  []string `json:"limits,omitempty"`
	Expires int64    `json:"expires,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	By      string   `json:"by,omitempty"`
	Updated int64    `json:"updated,omitempty"`
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// MarshalJSON encodes o as stores keep it: each limit in its text form
// (with " name=NAME" when named), times in Unix nanoseconds.
func (o Override) MarshalJSON() ([]byte, error) {
	j := overrideJSON{Scope: o.Scope, Key: o.Key, Plan: o.Plan, Expires: unixNano(o.Expires), Reason: o.Reason, By: o.By, Updated: unixNano(o.Updated)}
	for _, l := range o.Limits {
		s := l.String()
		if l.Name != "" {
			s += " name=" + l.Name
		}
		j.Limits = append(j.Limits, s)
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (o *Override) UnmarshalJSON(b []byte) error {
	var j overrideJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*o = Override{Scope: j.Scope, Key: j.Key, Plan: j.Plan, Expires: fromUnixNano(j.Expires), Reason: j.Reason, By: j.By, Updated: fromUnixNano(j.Updated)}
	for i, s := range j.Limits {
		l, err := ParseLimit(s)
		if err != nil {
			return fmt.Errorf("limits[%d]: %w", i, err)
		}
		o.Limits = append(o.Limits, l)
	}
	return nil
}

// An OverrideStore is a [Store] that also keeps per-key overrides, shared
// by every process using the same backend (the memory store: one process;
// SQLite: every process on the file, across restarts; Redis: every process
// on the server). Discover it by type assertion:
//
//	os, ok := store.(weir.OverrideStore)
//
// Expired overrides are never returned and are removed by later writes.
type OverrideStore interface {
	// SetOverride validates o, stamps o.Updated with the store's clock,
	// and stores it, replacing any override of the same (Scope, Key). It
	// fails with a *FieldError when o is invalid, or when MaxOverrides
	// live overrides exist already and o is not one of them.
	SetOverride(ctx context.Context, o Override) error
	// GetOverride returns the live override of (scope, key), or
	// ErrNoOverride.
	GetOverride(ctx context.Context, scope, key string) (Override, error)
	// ListOverrides returns the live overrides of scope ("" for every
	// scope), ordered by scope and key.
	ListOverrides(ctx context.Context, scope string) ([]Override, error)
	// DeleteOverride removes the override of (scope, key); ErrNoOverride
	// when there is none.
	DeleteOverride(ctx context.Context, scope, key string) error
	// OverrideVersion returns a number that changes whenever an override
	// is set or deleted: readers poll it to refresh cached copies.
	OverrideVersion(ctx context.Context) (int64, error)
}
