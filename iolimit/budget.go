package iolimit

import (
	"context"
	"fmt"

	"github.com/weir-go/weir"
)

// A Budget hands out bytes. It is safe for concurrent use.
type Budget interface {
	// WaitN blocks until n bytes may pass and charges them, or returns
	// ctx's error as soon as ctx is done. n must be between 0 and Burst.
	WaitN(ctx context.Context, n int64) error
	// Burst is the most bytes one WaitN may ask for; readers and writers
	// split their buffers into pieces no larger.
	Burst() int64
}

// All returns a budget that charges every one of budgets, in order: put
// the per-stream budget first and the shared one last, so a stream takes
// its place in the shared queue only once its own budget lets it go. Its
// Burst is the smallest of theirs. If a wait fails, bytes already charged
// to earlier budgets are not given back. Nil budgets are an error at the
// first WaitN.
func All(budgets ...Budget) Budget {
	a := &all{budgets: append([]Budget(nil), budgets...), burst: -1}
	for i, b := range a.budgets {
		if b == nil {
			a.err = &weir.FieldError{Field: fmt.Sprintf("budgets[%d]", i), Reason: "is nil"}
			return a
		}
		if bb := b.Burst(); a.burst < 0 || bb < a.burst {
			a.burst = bb
		}
	}
	if len(a.budgets) == 0 {
		a.err = &weir.FieldError{Field: "budgets", Reason: "at least one Budget is needed"}
	}
	return a
}

type all struct {
	budgets []Budget
	burst   int64
	err     error
}

func (a *all) Burst() int64 { return max(a.burst, 1) }

func (a *all) WaitN(ctx context.Context, n int64) error {
	if a.err != nil {
		return a.err
	}
	for _, b := range a.budgets {
		if err := b.WaitN(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// checkBudget returns an error naming field when b is nil.
func checkBudget(b Budget, field string) error {
	if b == nil {
		return &weir.FieldError{Field: field, Reason: "is nil (no budget: nothing may pass)"}
	}
	if b.Burst() < 1 {
		return &weir.FieldError{Field: field, Reason: fmt.Sprintf("burst %d is below 1", b.Burst())}
	}
	return nil
}

func fieldErr(field, reason string) error {
	return &weir.FieldError{Field: field, Reason: reason}
}
