package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/server/config"
)

// ErrNoOverrides is returned by the override operations when the store
// keeps no overrides (weir.OverrideStore).
var ErrNoOverrides = errors.New("weir: the store keeps no overrides")

// MaxOverrideFor is the longest an override may last when it is given a
// duration (--for): one year. Without one it lasts until deleted.
const MaxOverrideFor = 366 * 24 * time.Hour

// An OverrideRequest sets one key's limits under a policy at runtime.
type OverrideRequest struct {
	// Policy, Key and Fields name the key as Check does: the override is
	// kept for the rendered state key.
	Policy string
	Key    string
	Fields map[string]string
	// Plan names a plan of the configuration; Limits are explicit limits
	// in the text form ("100/s burst=200"). Exactly one is given.
	Plan   string
	Limits []string
	// For, when positive, ends the override that long from now.
	For time.Duration
	// Reason says why (logged and listed).
	Reason string
}

// SetLogger sets the logger that records every override change (default
// slog.Default()).
func (s *Service) SetLogger(l *slog.Logger) {
	if l != nil {
		s.log = l
	}
}

// SetRefresh sets how often each policy's cached overrides are refreshed
// from the store (default weir.DefaultRefresh, 1 s). Call it before New's
// first decisions; it takes effect at the next reload (Compile/Apply).
func (s *Service) SetRefresh(d time.Duration) { s.refresh = d }

func (s *Service) overrideStore() (weir.OverrideStore, error) {
	os, ok := s.store.Store.(weir.OverrideStore)
	if !ok {
		return nil, ErrNoOverrides
	}
	return os, nil
}

// overridable returns the policy and state key an override request names.
func (s *Service) overridable(policy, key string, fields map[string]string) (*policy, string, error) {
	p, k, err := s.lookup(&Request{Policy: policy, Key: key, Fields: fields})
	if err != nil {
		return nil, "", err
	}
	if p.plans == nil {
		return nil, "", fieldErr("policy", "%q holds concurrency units: overrides are for rate limits", p.cfg.Name)
	}
	return p, k, nil
}

// SetOverride validates and stores an override, and logs it with who set
// it. admin must be true (the caller holds the admin scope). It returns
// the override as stored.
func (s *Service) SetOverride(ctx context.Context, req *OverrideRequest, who string, admin bool) (weir.Override, error) {
	if !admin {
		return weir.Override{}, ErrPermission
	}
	os, err := s.overrideStore()
	if err != nil {
		return weir.Override{}, err
	}
	p, key, err := s.overridable(req.Policy, req.Key, req.Fields)
	if err != nil {
		return weir.Override{}, err
	}
	o := weir.Override{Scope: p.cfg.Name, Key: key, Plan: req.Plan, Reason: req.Reason, By: who}
	switch {
	case req.Plan == "" && len(req.Limits) == 0:
		return o, fieldErr("plan", "give a plan or limits")
	case req.Plan != "" && len(req.Limits) > 0:
		return o, fieldErr("plan", "give a plan or limits, not both")
	case req.Plan != "":
		if _, ok := s.Config().Plan(req.Plan); !ok && !(req.Plan == config.ReservedPlan && p.cfg.Plans == nil) {
			return o, fieldErr("plan", "no plan %q in the configuration", clip(req.Plan))
		}
	}
	if len(req.Limits) > weir.MaxPlanLimits {
		return o, fieldErr("limits", "at most %d limits (got %d)", weir.MaxPlanLimits, len(req.Limits))
	}
	for i, text := range req.Limits {
		l, err := weir.ParseLimit(text)
		if err != nil {
			var fe *weir.FieldError
			if errors.As(err, &fe) {
				return o, &weir.FieldError{Field: fmt.Sprintf("limits[%d].%s", i, fe.Field), Reason: fe.Reason}
			}
			return o, err
		}
		if l.Algorithm == weir.Concurrency {
			return o, fieldErr(fmt.Sprintf("limits[%d]", i), "overrides hold rate limits only")
		}
		o.Limits = append(o.Limits, l)
	}
	switch {
	case req.For < 0:
		return o, fieldErr("for", "must not be negative")
	case req.For > MaxOverrideFor:
		return o, fieldErr("for", "at most %v", MaxOverrideFor)
	case req.For > 0:
		o.Expires = time.Now().Add(req.For)
	}
	if err := os.SetOverride(ctx, o); err != nil {
		return o, err
	}
	expires := "never"
	if !o.Expires.IsZero() {
		expires = o.Expires.UTC().Format(time.RFC3339)
	}
	s.log.Info("override set", "policy", o.Scope, "key", o.Key, "plan", o.Plan, "limits", req.Limits,
		"expires", expires, "reason", o.Reason, "by", who)
	if err := p.plans.Refresh(ctx); err != nil {
		s.log.Warn("override set but this server's copy was not refreshed", "policy", o.Scope, "err", err)
	}
	got, err := os.GetOverride(ctx, o.Scope, o.Key)
	if err != nil {
		return o, nil // stored; reading it back is a courtesy
	}
	return got, nil
}

// GetOverride returns the live override of a policy's key.
func (s *Service) GetOverride(ctx context.Context, policy, key string, fields map[string]string, admin bool) (weir.Override, error) {
	if !admin {
		return weir.Override{}, ErrPermission
	}
	os, err := s.overrideStore()
	if err != nil {
		return weir.Override{}, err
	}
	p, k, err := s.overridable(policy, key, fields)
	if err != nil {
		return weir.Override{}, err
	}
	return os.GetOverride(ctx, p.cfg.Name, k)
}

// ListOverrides returns the live overrides of policy ("" for every
// policy), ordered by policy and key.
func (s *Service) ListOverrides(ctx context.Context, policy string, admin bool) ([]weir.Override, error) {
	if !admin {
		return nil, ErrPermission
	}
	os, err := s.overrideStore()
	if err != nil {
		return nil, err
	}
	if policy != "" {
		if _, ok := s.snap.Load().policies[policy]; !ok {
			return nil, fieldErr("policy", "unknown policy %q", clip(policy))
		}
	}
	return os.ListOverrides(ctx, policy)
}

// DeleteOverride removes the override of a policy's key, and logs it.
func (s *Service) DeleteOverride(ctx context.Context, policy, key string, fields map[string]string, reason, who string, admin bool) error {
	if !admin {
		return ErrPermission
	}
	os, err := s.overrideStore()
	if err != nil {
		return err
	}
	p, k, err := s.overridable(policy, key, fields)
	if err != nil {
		return err
	}
	if err := os.DeleteOverride(ctx, p.cfg.Name, k); err != nil {
		return err
	}
	s.log.Info("override deleted", "policy", p.cfg.Name, "key", k, "reason", reason, "by", who)
	if err := p.plans.Refresh(ctx); err != nil {
		s.log.Warn("override deleted but this server's copy was not refreshed", "policy", p.cfg.Name, "err", err)
	}
	return nil
}
