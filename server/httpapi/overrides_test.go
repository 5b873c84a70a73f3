package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/service"
)

const (
	adminToken  = "admin-token-0123456789"
	decideToken = "decide-token-0123456789"
)

func newOverrideHandler(t *testing.T) http.Handler {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(`
plans:
  free: ["1/h"]
  pro: ["3/h"]
policies:
  api: {plans: {default: free}}
`))
	if err != nil {
		t.Fatal(err)
	}
	ms := memstore.New()
	t.Cleanup(func() { ms.Close() })
	svc, err := service.New(ms, nil, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Service: svc, Auth: service.NewAuth([]string{decideToken}, []string{adminToken})})
}

func serveAs(h http.Handler, token, method, path, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+token)
	h.ServeHTTP(w, r)
	return w
}

func TestOverrideRoutes(t *testing.T) {
	h := newOverrideHandler(t)
	tests := []struct {
		name, token, method, path, body string
		code                            int
		want                            string
	}{
		{"decide scope may not set", decideToken, "POST", "/v1/override", `{"policy":"api","key":"k","plan":"pro"}`, 403, "permission_denied"},
		{"decide scope may not list", decideToken, "GET", "/v1/overrides", ``, 403, "permission_denied"},
		{"set a plan", adminToken, "POST", "/v1/override", `{"policy":"api","key":"acme","plan":"pro","for_ms":3600000,"reason":"trial","by":"ann"}`, 200, `"plan":"pro"`},
		{"the boost applies", decideToken, "POST", "/v1/check", `{"policy":"api","key":"acme","cost":3}`, 200, `"allowed":true`},
		{"get", adminToken, "POST", "/v1/override/get", `{"policy":"api","key":"acme"}`, 200, `"by":"ann@`},
		{"list", adminToken, "GET", "/v1/overrides?policy=api", ``, 200, `"key":"acme"`},
		{"set limits", adminToken, "POST", "/v1/override", `{"policy":"api","key":"b","limits":["5/h"]}`, 200, `"limits":["5/h"]`},
		{"unknown plan", adminToken, "POST", "/v1/override", `{"policy":"api","key":"k","plan":"gold"}`, 400, `"field":"plan"`},
		{"bad limit", adminToken, "POST", "/v1/override", `{"policy":"api","key":"k","limits":["x"]}`, 400, `"field":"limits[0].limit"`},
		{"negative for", adminToken, "POST", "/v1/override", `{"policy":"api","key":"k","plan":"pro","for_ms":-1}`, 400, `"field":"for_ms"`},
		{"unknown field", adminToken, "POST", "/v1/override", `{"policy":"api","key":"k","plna":"pro"}`, 400, `"field":"body"`},
		{"delete", adminToken, "POST", "/v1/override/delete", `{"policy":"api","key":"acme","reason":"trial over"}`, 200, `"deleted":true`},
		{"delete again", adminToken, "POST", "/v1/override/delete", `{"policy":"api","key":"acme"}`, 404, "not_found"},
		{"get deleted", adminToken, "POST", "/v1/override/get", `{"policy":"api","key":"acme"}`, 404, "not_found"},
	}
	for _, tt := range tests {
		w := serveAs(h, tt.token, tt.method, tt.path, tt.body)
		if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.want) {
			t.Errorf("%s: %d %s, want %d containing %s", tt.name, w.Code, w.Body, tt.code, tt.want)
		}
	}
	var list struct{ Overrides []OverrideJSON }
	w := serveAs(h, adminToken, "GET", "/v1/overrides", "")
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || len(list.Overrides) != 1 || list.Overrides[0].Key != "b" {
		t.Fatalf("final list: %s (%v)", w.Body, err)
	}
}
