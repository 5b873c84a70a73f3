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

// Auth checks bearer tokens and, with [Auth.WithClientCerts], verified TLS
// client certificates. The zero Auth (no tokens, no client certificates)
// grants the admin scope to everyone: it is only allowed on loopback
// listeners.
type Auth struct {
	decide [][32]byte
	admin  [][32]byte
	certs  bool // a verified client certificate grants ScopeDecide
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

// WithClientCerts returns a copy of a under which a request that comes
// over a connection with a verified TLS client certificate (mutual TLS)
// and sends no bearer token has the decision scope. The admin scope still
// needs an admin token, and a request that sends a token is judged by
// that token alone (a wrong one is refused even with a certificate).
func (a *Auth) WithClientCerts() *Auth {
	b := *a
	b.certs = true
	return &b
}

// Enabled reports whether any token is configured or client certificates
// are accepted.
func (a *Auth) Enabled() bool { return a != nil && (len(a.decide)+len(a.admin) > 0 || a.certs) }

// ScopeOf returns the scope of a request from its Authorization header
// value and whether its connection presented a verified TLS client
// certificate.
func (a *Auth) ScopeOf(authorization string, verifiedCert bool) Scope {
	if authorization == "" && verifiedCert && a.Enabled() && a.certs {
		return ScopeDecide
	}
	return a.Scope(authorization)
}

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
