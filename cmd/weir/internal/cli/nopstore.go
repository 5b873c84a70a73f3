package cli

import (
	"context"

	"github.com/weir-go/weir"
)

// nopStore lets `weir config check` build limiters without a backend.
type nopStore struct{}

func (nopStore) Take(context.Context, *weir.Request) (weir.Decision, error) {
	return weir.Decision{}, weir.ErrUnavailable
}
func (nopStore) Refund(context.Context, *weir.Request) error { return nil }
func (nopStore) Reset(context.Context, []weir.Check) error   { return nil }
