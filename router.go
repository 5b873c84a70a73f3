package weir

import (
	"context"
	"math"
)

// A Router sends items of any type to a key and a limiter, so one call site
// can apply per-user, per-tenant or per-route policies:
//
//	r := weir.NewRouter(func(j Job) (string, *weir.Limiter) {
//		if j.Premium {
//			return "tenant:" + j.Tenant, premium
//		}
//		return "tenant:" + j.Tenant, standard
//	})
//	err := r.Do(ctx, job, run)
//
// A route that returns a nil Limiter means the item is not limited.
type Router[T any] struct {
	route func(T) (string, *Limiter)
}

// NewRouter returns a Router that asks route for each item's key and limiter.
func NewRouter[T any](route func(item T) (key string, lim *Limiter)) *Router[T] {
	return &Router[T]{route: route}
}

var unlimited = Decision{Allowed: true, Remaining: math.MaxInt64}

// Allow routes item and calls Allow.
func (r *Router[T]) Allow(ctx context.Context, item T) (Decision, error) {
	key, lim := r.route(item)
	if lim == nil {
		return unlimited, nil
	}
	return lim.Allow(ctx, key)
}

// Wait routes item and calls Wait.
func (r *Router[T]) Wait(ctx context.Context, item T) (Decision, error) {
	key, lim := r.route(item)
	if lim == nil {
		return unlimited, nil
	}
	return lim.Wait(ctx, key)
}

// Do routes item and calls Do with fn.
func (r *Router[T]) Do(ctx context.Context, item T, fn func(context.Context) error) error {
	key, lim := r.route(item)
	if lim == nil {
		return fn(ctx)
	}
	return lim.Do(ctx, key, fn)
}
