package dashboard

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/weir-go/weir/server/httpapi"
	"github.com/weir-go/weir/server/service"
)

// TestOverridesAdminOnly lists overrides on the dashboard to admin tokens
// only: a decision token, no token and a wrong one never see a key.
func TestOverridesAdminOnly(t *testing.T) {
	d, svc := newTestDashboard(t)
	if _, err := svc.SetOverride(context.Background(), &service.OverrideRequest{Policy: "secretpolicy", Key: "secret-customer", Limits: []string{"9/m"}, Reason: "boost"}, "ops", true); err != nil {
		t.Fatal(err)
	}
	const admin, decide = "admin-token-0123456789", "decide-token-0123456789"
	h := httpapi.New(httpapi.Options{Service: svc, Auth: service.NewAuth([]string{decide}, []string{admin}), Dashboard: d})
	for _, tc := range []struct {
		token string
		code  int
		shows bool
	}{{admin, 200, true}, {decide, 200, false}, {"", 401, false}, {"wrong-token-0123456789", 401, false}} {
		r := httptest.NewRequest("GET", "/dashboard/overrides", nil)
		if tc.token != "" {
			r.Header.Set("Authorization", "Bearer "+tc.token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		shows := strings.Contains(w.Body.String(), "secret-customer")
		if w.Code != tc.code || shows != tc.shows {
			t.Errorf("token %q: %d %s; want %d, key shown %v", tc.token, w.Code, w.Body, tc.code, tc.shows)
		}
		if tc.shows && (!strings.Contains(w.Body.String(), `"limits":["9/m"]`) || !strings.Contains(w.Body.String(), `"reason":"boost"`)) {
			t.Errorf("admin listing: %s", w.Body)
		}
		if tc.token == decide && strings.TrimSpace(w.Body.String()) != `{"overrides":null}` {
			t.Errorf("decision token: %s, want {\"overrides\":null}", w.Body)
		}
	}
	// The page itself never carries override data; its script fetches it.
	r := httptest.NewRequest("GET", "/dashboard", nil)
	r.Header.Set("Authorization", "Bearer "+decide)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if strings.Contains(w.Body.String(), "secret-customer") || !strings.Contains(w.Body.String(), `id="overrides-sec" hidden`) {
		t.Errorf("page: overrides section missing or carries data")
	}
}
