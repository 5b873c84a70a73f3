package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestReport: POST /v1/report settles the actual cost of work; its input
// is checked like every call's, and "reserved" is refused elsewhere.
func TestReport(t *testing.T) {
	h := newHandler(t, nil)
	down := newHandler(t, downStore{})
	for _, tc := range []struct {
		name string
		h    http.Handler
		path string
		body string
		code int
		want string // a substring of the answer
	}{
		{"charge into debt", h, "/v1/report", `{"policy":"api","key":"debt","cost":100200}`, 200, `"remaining":0,"retry_after_ms":1000010,"reset_after_ms":1002000,"limit_name":"100/s burst=200","debt":100000}`},
		{"settle down", h, "/v1/report", `{"policy":"api","key":"down","cost":0,"reserved":0}`, 200, `"allowed":true`},
		{"cost required", h, "/v1/report", `{"policy":"api","key":"k"}`, 400, `"field":"cost"`},
		{"negative cost", h, "/v1/report", `{"policy":"api","key":"k","cost":-1}`, 400, `"field":"cost"`},
		{"reserved above capacity", h, "/v1/report", `{"policy":"api","key":"k","cost":1,"reserved":201}`, 400, `"field":"reserved"`},
		{"negative reserved", h, "/v1/report", `{"policy":"api","key":"k","cost":1,"reserved":-1}`, 400, `"field":"reserved"`},
		{"reserved not a number", h, "/v1/report", `{"policy":"api","key":"k","cost":1,"reserved":"x"}`, 400, `"field":"reserved"`},
		{"reserved twice", h, "/v1/report", `{"policy":"api","key":"k","cost":1,"reserved":1,"reserved":2}`, 400, `"field":"reserved"`},
		{"concurrency policy", h, "/v1/report", `{"policy":"jobs","key":"k","cost":1}`, 400, `"field":"policy"`},
		{"missing template field", h, "/v1/report", `{"policy":"t","key":"k","cost":1}`, 400, `"field":"fields.tenant"`},
		{"no batch", h, "/v1/report", `[{"policy":"api","key":"k","cost":1}]`, 400, `"field":"body"`},
		{"no lease", h, "/v1/report", `{"policy":"api","key":"k","cost":1,"lease":"x"}`, 400, `"field":"lease"`},
		{"no wait", h, "/v1/report", `{"policy":"api","key":"k","cost":1,"wait_ms":5}`, 400, `"field":"wait_ms"`},
		{"check refuses reserved", h, "/v1/check", `{"policy":"api","key":"k","reserved":1}`, 400, `"field":"reserved"`},
		{"batch refuses reserved", h, "/v1/check", `[{"policy":"api","key":"k"},{"policy":"api","key":"k","reserved":1}]`, 400, `"field":"checks[1].reserved"`},
		{"acquire refuses reserved", h, "/v1/acquire", `{"policy":"jobs","key":"k","reserved":1}`, 400, `"field":"reserved"`},
		{"store down", down, "/v1/report", `{"policy":"api","key":"k","cost":1}`, 503, `"unavailable"`},
	} {
		w := serve(tc.h, "POST", tc.path, tc.body)
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, w.Code, w.Body, tc.code, tc.want)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Errorf("%s: answer is not JSON: %s", tc.name, w.Body)
		}
	}
	// The debt denies the key's next check.
	if w := serve(h, "POST", "/v1/check", `{"policy":"api","key":"debt"}`); !strings.Contains(w.Body.String(), `"allowed":false`) {
		t.Errorf("check in debt: %s", w.Body)
	}
}
