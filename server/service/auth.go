package service

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// A Scope is what a caller may do.
type Scope uint8

// The scopes, each including the ones before it.
const (
	// ScopeNone: no valid credentials.
	ScopeNone Scope = iota
	// ScopeDecide: check, acquire, release, list policies.
	ScopeDecide
	// ScopeAdmin: also reset keys and reload the configuration.
	ScopeAdmin
)

// Auth checks bearer tokens. The zero Auth (no tokens) grants the admin
// scope to everyone: it is only allowed on loopback listeners.
type Auth struct {
	decide [][32]byte
	admin  [][32]byte
}

// NewAuth returns an Auth accepting the given decision and admin tokens.
func NewAuth(decide, admin []string) *Auth {
	a := &Auth{}
	for _, t := range decide {
		a.decide = append(a.decide, sha256.Sum256([]byte(t)))
	}
	for _, t := range admin {
		a.admin = append(a.admin, sha256.Sum256([]byte(t)))
	}
	return a
}

// Enabled reports whether any token is configured.
func (a *Auth) Enabled() bool { return a != nil && len(a.decide)+len(a.admin) > 0 }

// Scope returns the scope of an Authorization header value ("Bearer T").
// Comparisons are constant-time over token hashes.
func (a *Auth) Scope(authorization string) Scope {
	if !a.Enabled() {
		return ScopeAdmin
	}
	tok, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok || tok == "" {
		return ScopeNone
	}
	h := sha256.Sum256([]byte(tok))
	scope := ScopeNone
	for i := range a.admin {
		if subtle.ConstantTimeCompare(h[:], a.admin[i][:]) == 1 {
			scope = ScopeAdmin
		}
	}
	for i := range a.decide {
		if subtle.ConstantTimeCompare(h[:], a.decide[i][:]) == 1 && scope < ScopeDecide {
			scope = ScopeDecide
		}
	}
	return scope
}
