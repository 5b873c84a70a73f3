package service_test

import (
	"testing"

	"github.com/weir-go/weir/server/service"
)

func TestAuthScopeOf(t *testing.T) {
	tokens := service.NewAuth([]string{"dec"}, []string{"adm"})
	certs := tokens.WithClientCerts()
	certsOnly := service.NewAuth(nil, nil).WithClientCerts()
	open := service.NewAuth(nil, nil)
	tests := []struct {
		name     string
		auth     *service.Auth
		header   string
		verified bool
		want     service.Scope
	}{
		{"no auth configured: admin to all", open, "", false, service.ScopeAdmin},
		{"tokens: none sent", tokens, "", false, service.ScopeNone},
		{"tokens: a certificate alone is not enough", tokens, "", true, service.ScopeNone},
		{"tokens: decision token", tokens, "Bearer dec", false, service.ScopeDecide},
		{"tokens: admin token", tokens, "Bearer adm", true, service.ScopeAdmin},
		{"tokens: wrong token", tokens, "Bearer nope", false, service.ScopeNone},
		{"certs: verified certificate, no token", certs, "", true, service.ScopeDecide},
		{"certs: no certificate, no token", certs, "", false, service.ScopeNone},
		{"certs: a wrong token is refused despite the certificate", certs, "Bearer nope", true, service.ScopeNone},
		{"certs: admin token keeps admin", certs, "Bearer adm", true, service.ScopeAdmin},
		{"certs only: certificate gives decide, never admin", certsOnly, "", true, service.ScopeDecide},
		{"certs only: nothing", certsOnly, "", false, service.ScopeNone},
	}
	for _, tt := range tests {
		if got := tt.auth.ScopeOf(tt.header, tt.verified); got != tt.want {
			t.Errorf("%s: ScopeOf(%q, %v) = %v, want %v", tt.name, tt.header, tt.verified, got, tt.want)
		}
	}
	if !certsOnly.Enabled() {
		t.Error("an Auth that accepts client certificates must be Enabled (it refuses callers without one)")
	}
	if tokens.ScopeOf("", true) != service.ScopeNone {
		t.Error("WithClientCerts must not change the Auth it copies")
	}
}
