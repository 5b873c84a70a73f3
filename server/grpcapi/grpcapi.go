// Package grpcapi serves the weir.v1.Weir gRPC service over a
// [service.Service], and the interceptors that authenticate bearer tokens
// and map weir's error vocabulary to gRPC status codes.
package grpcapi

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/server/gen/weirv1"
	"github.com/weir-go/weir/server/service"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Server implements weirv1.WeirServer. Register it with
// weirv1.RegisterWeirServer; call Drain before the grpc.Server's
// GracefulStop so that open CheckStream calls end.
type Server struct {
	weirv1.UnimplementedWeirServer
	svc       *service.Service
	auth      *service.Auth
	gate      *service.Gate
	drain     chan struct{}
	drainOnce sync.Once
}

var _ weirv1.WeirServer = (*Server)(nil)

// An Option configures a Server.
type Option func(*Server)

// WithGate makes every CheckStream message take a place in gate while it
// is decided, and answers it with RESOURCE_EXHAUSTED when gate is full,
// as GateInterceptor does for unary calls (use the same gate for both).
// The default is no bound.
func WithGate(gate *service.Gate) Option { return func(s *Server) { s.gate = gate } }

// New returns the gRPC service over svc; auth decides the admin scope of
// Reset (nil: no authentication, everyone is admin, loopback only).
func New(svc *service.Service, auth *service.Auth, opts ...Option) *Server {
	s := &Server{svc: svc, auth: auth, drain: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Drain ends every open CheckStream, once the message in hand is
// answered, with UNAVAILABLE, and refuses new ones the same way. Call it
// when shutdown starts, before grpc.Server.GracefulStop, which otherwise
// waits for the streams to end on their own. Drain may be called more
// than once.
func (s *Server) Drain() { s.drainOnce.Do(func() { close(s.drain) }) }

func toRequest(policy, key string, fields map[string]string, cost *int64) *service.Request {
	c := int64(1)
	if cost != nil {
		c = *cost
	}
	return &service.Request{Policy: policy, Key: key, Fields: fields, Cost: c}
}

// fromCheck converts a CheckRequest, wait_ms included (which only Acquire
// accepts; the service refuses it elsewhere).
func fromCheck(req *weirv1.CheckRequest) *service.Request {
	r := toRequest(req.GetPolicy(), req.GetKey(), req.GetFields(), req.Cost)
	r.Wait = service.WaitMS(req.GetWaitMs())
	return r
}

func toResponse(r *service.Result) *weirv1.CheckResponse {
	return &weirv1.CheckResponse{
		Allowed:      r.Allowed,
		Policy:       r.Policy,
		Limit:        r.Limit,
		LimitName:    r.LimitName,
		Remaining:    r.Remaining,
		RetryAfterMs: ceilMS(int64(r.RetryAfter)),
		ResetAfterMs: ceilMS(int64(r.ResetAfter)),
		Shadow:       r.Shadowed,
		Source:       r.Source.String(),
		Lease:        r.Lease,
		Debt:         r.Debt,
		Clamped:      r.Clamped,
	}
}

func ceilMS(ns int64) int64 {
	if ns <= 0 {
		return 0
	}
	return (ns + 999_999) / 1_000_000
}

// Check implements weirv1.WeirServer.
func (s *Server) Check(ctx context.Context, req *weirv1.CheckRequest) (*weirv1.CheckResponse, error) {
	res, err := s.check(ctx, req)
	if err != nil {
		return nil, Status(err)
	}
	return res, nil
}

// check is Check with the error of the weir vocabulary (CheckStream
// shares it).
func (s *Server) check(ctx context.Context, req *weirv1.CheckRequest) (*weirv1.CheckResponse, error) {
	res, err := s.svc.Check(ctx, fromCheck(req))
	if err != nil {
		return nil, err
	}
	return toResponse(&res), nil
}

// CheckBatch implements weirv1.WeirServer.
func (s *Server) CheckBatch(ctx context.Context, req *weirv1.CheckBatchRequest) (*weirv1.CheckBatchResponse, error) {
	reqs := make([]service.Request, len(req.GetChecks()))
	for i, c := range req.GetChecks() {
		reqs[i] = *fromCheck(c)
	}
	results, err := s.svc.CheckBatch(ctx, reqs)
	if err != nil {
		return nil, Status(err)
	}
	out := &weirv1.CheckBatchResponse{Results: make([]*weirv1.CheckResponse, len(results))}
	for i := range results {
		out.Results[i] = toResponse(&results[i])
	}
	return out, nil
}

// Acquire implements weirv1.WeirServer.
func (s *Server) Acquire(ctx context.Context, req *weirv1.CheckRequest) (*weirv1.CheckResponse, error) {
	res, err := s.svc.Acquire(ctx, fromCheck(req))
	if err != nil {
		return nil, Status(err)
	}
	return toResponse(&res), nil
}

// Release implements weirv1.WeirServer.
func (s *Server) Release(ctx context.Context, req *weirv1.ReleaseRequest) (*weirv1.ReleaseResponse, error) {
	err := s.svc.Release(ctx, toRequest(req.GetPolicy(), req.GetKey(), req.GetFields(), nil), req.GetLease())
	if err != nil {
		return nil, Status(err)
	}
	return &weirv1.ReleaseResponse{}, nil
}

// Report implements weirv1.WeirServer: it settles the actual cost of
// work (service.Service.Report). cost is required.
func (s *Server) Report(ctx context.Context, req *weirv1.ReportRequest) (*weirv1.CheckResponse, error) {
	if req.Cost == nil {
		return nil, Status(&weir.FieldError{Field: "cost", Reason: "is required: the actual cost of the work"})
	}
	res, err := s.svc.Report(ctx, toRequest(req.GetPolicy(), req.GetKey(), req.GetFields(), req.Cost), req.GetReserved())
	if err != nil {
		return nil, Status(err)
	}
	return toResponse(&res), nil
}

// ListPolicies implements weirv1.WeirServer.
func (s *Server) ListPolicies(ctx context.Context, _ *weirv1.ListPoliciesRequest) (*weirv1.ListPoliciesResponse, error) {
	out := &weirv1.ListPoliciesResponse{}
	for _, p := range s.svc.Policies() {
		pp := &weirv1.Policy{Name: p.Name, Key: p.Key, Fields: p.Fields, Shadow: p.Shadow, OnStoreError: p.OnError, Concurrency: p.Concurrency, Description: p.Description}
		for _, l := range p.Limits {
			s := l.String()
			if l.Name != s {
				s += " name=" + l.Name
			}
			pp.Limits = append(pp.Limits, s)
		}
		out.Policies = append(out.Policies, pp)
	}
	return out, nil
}

// Reset implements weirv1.WeirServer; it needs the admin scope.
func (s *Server) Reset(ctx context.Context, req *weirv1.ResetRequest) (*weirv1.ResetResponse, error) {
	admin := !s.auth.Enabled() || scopeOf(s.auth, ctx) >= service.ScopeAdmin
	err := s.svc.Reset(ctx, toRequest(req.GetPolicy(), req.GetKey(), req.GetFields(), nil), admin)
	if err != nil {
		return nil, Status(err)
	}
	return &weirv1.ResetResponse{}, nil
}

// Status maps an error of the weir vocabulary to a gRPC status: invalid
// input → INVALID_ARGUMENT naming the field, a failed store → UNAVAILABLE,
// missing admin scope → PERMISSION_DENIED, a full gate
// (service.ErrOverloaded) → RESOURCE_EXHAUSTED.
func Status(err error) error { return status.Error(classify(err)) }

// classify is Status as a code and a message (CheckStream puts them in a
// CheckStreamError).
func classify(err error) (codes.Code, string) {
	var fe *weir.FieldError
	switch {
	case errors.As(err, &fe):
		return codes.InvalidArgument, fe.Field + ": " + fe.Reason
	case errors.Is(err, service.ErrOverloaded):
		return codes.ResourceExhausted, err.Error()
	case errors.Is(err, service.ErrPermission):
		return codes.PermissionDenied, err.Error()
	case errors.Is(err, weir.ErrNoOverride):
		return codes.NotFound, err.Error()
	case errors.Is(err, service.ErrNoOverrides):
		return codes.Unimplemented, err.Error()
	case errors.Is(err, weir.ErrUnavailable):
		return codes.Unavailable, "the rate-limit store is unavailable"
	case errors.Is(err, context.Canceled):
		return codes.Canceled, err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded, err.Error()
	}
	return codes.Internal, "internal error"
}

func authHeader(ctx context.Context) string {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// scopeOf is the caller's scope: its bearer token, or a verified TLS
// client certificate when auth accepts them.
func scopeOf(auth *service.Auth, ctx context.Context) service.Scope {
	verified := false
	if p, ok := peer.FromContext(ctx); ok {
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			verified = len(info.State.VerifiedChains) > 0
		}
	}
	return auth.ScopeOf(authHeader(ctx), verified)
}

// open lists full method names that need no credentials.
func open(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.") || strings.HasPrefix(method, "/grpc.reflection.")
}

// AuthInterceptor checks the "authorization: Bearer TOKEN" metadata:
// UNAUTHENTICATED without a valid token (Reset checks the admin scope
// itself). Health and reflection are open.
func AuthInterceptor(auth *service.Auth) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !auth.Enabled() || open(info.FullMethod) || scopeOf(auth, ctx) != service.ScopeNone {
			return handler(ctx, req)
		}
		return nil, status.Error(codes.Unauthenticated, "a valid bearer token is required")
	}
}

// StreamAuthInterceptor is AuthInterceptor for streams: CheckStream needs
// a valid token when the stream opens (reflection and health watch are
// open).
func StreamAuthInterceptor(auth *service.Auth) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !auth.Enabled() || open(info.FullMethod) || scopeOf(auth, ss.Context()) != service.ScopeNone {
			return handler(srv, ss)
		}
		return status.Error(codes.Unauthenticated, "a valid bearer token is required")
	}
}

// GateInterceptor sheds calls with RESOURCE_EXHAUSTED when gate is full
// (health and reflection are never shed).
func GateInterceptor(gate *service.Gate) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if open(info.FullMethod) {
			return handler(ctx, req)
		}
		if !gate.Enter() {
			return nil, status.Error(codes.ResourceExhausted, service.ErrOverloaded.Error())
		}
		defer gate.Leave()
		return handler(ctx, req)
	}
}

// admin reports whether the caller holds the admin scope.
func (s *Server) admin(ctx context.Context) bool {
	return !s.auth.Enabled() || scopeOf(s.auth, ctx) >= service.ScopeAdmin
}

// who names the author of an override change: by, and the peer address.
func who(ctx context.Context, by string) string {
	addr := "unknown"
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	if by == "" {
		by = "admin"
	}
	return by + "@" + addr
}

func toOverride(o weir.Override) *weirv1.Override {
	out := &weirv1.Override{Policy: o.Scope, Key: o.Key, Plan: o.Plan, Reason: o.Reason, By: o.By}
	if !o.Expires.IsZero() {
		out.ExpiresUnixMs = o.Expires.UnixMilli()
	}
	if !o.Updated.IsZero() {
		out.UpdatedUnixMs = o.Updated.UnixMilli()
	}
	for _, l := range o.Limits {
		t := l.String()
		if l.Name != "" {
			t += " name=" + l.Name
		}
		out.Limits = append(out.Limits, t)
	}
	return out
}

// SetOverride implements weirv1.WeirServer; it needs the admin scope.
func (s *Server) SetOverride(ctx context.Context, req *weirv1.SetOverrideRequest) (*weirv1.Override, error) {
	ms := req.GetForMs()
	if ms < 0 || ms > service.MaxOverrideFor.Milliseconds() {
		return nil, Status(&weir.FieldError{Field: "for_ms", Reason: "must be from 0 (no end) to " + service.MaxOverrideFor.String()})
	}
	o, err := s.svc.SetOverride(ctx, &service.OverrideRequest{
		Policy: req.GetPolicy(), Key: req.GetKey(), Fields: req.GetFields(), Plan: req.GetPlan(), Limits: req.GetLimits(),
		For: time.Duration(ms) * time.Millisecond, Reason: req.GetReason(),
	}, who(ctx, req.GetBy()), s.admin(ctx))
	if err != nil {
		return nil, Status(err)
	}
	return toOverride(o), nil
}

// GetOverride implements weirv1.WeirServer; it needs the admin scope.
func (s *Server) GetOverride(ctx context.Context, req *weirv1.OverrideKey) (*weirv1.Override, error) {
	o, err := s.svc.GetOverride(ctx, req.GetPolicy(), req.GetKey(), req.GetFields(), s.admin(ctx))
	if err != nil {
		return nil, Status(err)
	}
	return toOverride(o), nil
}

// ListOverrides implements weirv1.WeirServer; it needs the admin scope.
func (s *Server) ListOverrides(ctx context.Context, req *weirv1.ListOverridesRequest) (*weirv1.ListOverridesResponse, error) {
	list, err := s.svc.ListOverrides(ctx, req.GetPolicy(), s.admin(ctx))
	if err != nil {
		return nil, Status(err)
	}
	out := &weirv1.ListOverridesResponse{}
	for _, o := range list {
		out.Overrides = append(out.Overrides, toOverride(o))
	}
	return out, nil
}

// DeleteOverride implements weirv1.WeirServer; it needs the admin scope.
func (s *Server) DeleteOverride(ctx context.Context, req *weirv1.OverrideKey) (*weirv1.DeleteOverrideResponse, error) {
	err := s.svc.DeleteOverride(ctx, req.GetPolicy(), req.GetKey(), req.GetFields(), req.GetReason(), who(ctx, req.GetBy()), s.admin(ctx))
	if err != nil {
		return nil, Status(err)
	}
	return &weirv1.DeleteOverrideResponse{}, nil
}
