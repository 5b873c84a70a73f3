package service

import (
	"context"
	"strings"
	"time"

	"github.com/weir-go/weir"
)

// An Observer is told about every call the service's store answers: the
// native HTTP and gRPC APIs and the Envoy service (which shares
// Service.Store) all decide through it, so one hook sees every decision.
// Observe runs on the caller's goroutine after the store call returns; it
// must be safe for concurrent use and quick.
type Observer interface {
	Observe(ctx context.Context, o Observation)
}

// An Observation describes one store call.
type Observation struct {
	// Op is the store operation: "take" (a decision; Cost 0 is a peek),
	// "refund" or "reset".
	Op string
	// Policy is the policy name, or "envoy:DOMAIN" for an Envoy
	// descriptor. Limit is the limit's name within it (the deciding limit
	// of a take, else the first limit of the call). Both come from the
	// configuration, never from a caller's key.
	Policy, Limit string
	// Cost is the number of units asked for.
	Cost int64
	// Outcome is "allowed", "limited" or "error" for a take, "ok" or
	// "error" otherwise. It is the store's answer, before the policy's
	// shadow mode or store-failure mode is applied.
	Outcome string
	// Start is when the call began; Duration how long it took.
	Start    time.Time
	Duration time.Duration
	// Err is the store's error, if any.
	Err error
}

// SetObserver makes o see every store call (nil: none, the default, which
// costs one nil check per call). Call it before serving.
func (s *Service) SetObserver(o Observer) { s.store.obs = o }

// splitName splits a store limit name into policy and limit: service
// limits are "POLICY:LIMIT", Envoy limits "envoy:DOMAIN:UNIT".
func splitName(name string) (policy, limit string) {
	i := strings.IndexByte(name, ':')
	if strings.HasPrefix(name, "envoy:") {
		i = strings.LastIndexByte(name, ':')
	}
	if i < 0 {
		return name, ""
	}
	return name[:i], name[i+1:]
}

func (t *timedStore) notify(ctx context.Context, op string, checks []weir.Check, cost int64, d *weir.Decision, start time.Time, dur time.Duration, err error) {
	o := Observation{Op: op, Cost: cost, Start: start, Duration: dur, Err: err}
	name := ""
	if len(checks) > 0 {
		name = checks[0].Limit.Name
	}
	switch {
	case err != nil:
		o.Outcome = "error"
	case d == nil:
		o.Outcome = "ok"
	case d.Allowed:
		o.Outcome = "allowed"
	default:
		o.Outcome = "limited"
	}
	if d != nil && err == nil && d.Limit.Name != "" {
		name = d.Limit.Name
	}
	o.Policy, o.Limit = splitName(name)
	t.obs.Observe(ctx, o)
}
