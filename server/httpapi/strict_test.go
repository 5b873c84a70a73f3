package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// errorOf decodes the API's error shape and checks that the body ends
// with a newline.
func errorOf(t *testing.T, body string) (code, field, msg string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Field, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" {
		t.Fatalf("body %q is not {\"error\":{...}}: %v", body, err)
	}
	if !strings.HasSuffix(body, "}\n") {
		t.Errorf("body %q does not end with a newline", body)
	}
	return e.Error.Code, e.Error.Field, e.Error.Message
}

// Parsing is strict: a member given twice (encoding/json keeps the last)
// and a name that matches only when case is ignored (encoding/json
// accepts it) are 400s naming the field, on the fast path's shapes and on
// the general decoder's, in batches and in "fields".
func TestStrictJSON(t *testing.T) {
	h := newHandler(t, nil)
	for _, c := range []struct{ path, body, field string }{
		{"/v1/check", `{"policy":"api","key":"a","key":"b"}`, "key"},
		{"/v1/check", `{"policy":"api","policy":"t","key":"a"}`, "policy"},
		{"/v1/check", `{"policy":"api","key":"a","cost":1,"cost":500}`, "cost"},
		{"/v1/check", `{"Policy":"api","key":"a"}`, "Policy"},
		{"/v1/check", `{"policy":"api","KEY":"a"}`, "KEY"},
		{"/v1/check", `{"policy":"api","key":"a\u0062","key":"b"}`, "key"},
		{"/v1/check", `{"policy":"t","key":"a","fields":{"tenant":"x","tenant":"y"}}`, "fields.tenant"},
		{"/v1/check", `{"policy":"t","key":"a","Fields":{"tenant":"x"}}`, "Fields"},
		{"/v1/check", `[{"policy":"api","key":"a"},{"policy":"api","key":"b","key":"c"}]`, "checks[1].key"},
		{"/v1/check", `[{"policy":"api","key":"a","Cost":2}]`, "checks[0].Cost"},
		{"/v1/acquire", `{"policy":"jobs","key":"a","wait_ms":1,"wait_ms":2}`, "wait_ms"},
		{"/v1/release", `{"policy":"jobs","key":"a","lease":"x","Lease":"y"}`, "Lease"},
	} {
		w := serve(h, "POST", c.path, c.body)
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s %s: %d %s, want 400", c.path, c.body, w.Code, w.Body)
			continue
		}
		if _, field, _ := errorOf(t, w.Body.String()); field != c.field {
			t.Errorf("%s %s: field %q, want %q (%s)", c.path, c.body, field, c.field, w.Body)
		}
	}
	// The strict checks refuse nothing valid.
	for _, body := range []string{
		`{"policy":"api","key":"a","cost":1}`,
		`{"policy":"t","key":"a\u0062","fields":{"tenant":"x","other":"y"}}`,
		`[{"policy":"api","key":"a"},{"policy":"api","key":"a"}]`,
	} {
		if w := serve(h, "POST", "/v1/check", body); w.Code != http.StatusOK {
			t.Errorf("%s: %d %s", body, w.Code, w.Body)
		}
	}
}

// 404 and 405 come in the {"error":{...}} shape (405 with Allow), and every
// JSON body ends with a newline.
func TestErrorShapeAndNewline(t *testing.T) {
	h := newHandler(t, nil)
	for _, c := range []struct {
		method, path string
		code         int
		kind, allow  string
	}{
		{"GET", "/v1/nope", 404, "not_found", ""},
		{"POST", "/nope", 404, "not_found", ""},
		{"GET", "/v1/check", 405, "method_not_allowed", "POST"},
		{"DELETE", "/v1/policies", 405, "method_not_allowed", "GET, HEAD"},
		{"POST", "/readyz", 405, "method_not_allowed", "GET, HEAD"},
	} {
		w := serve(h, c.method, c.path, "")
		if w.Code != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, w.Code, c.code)
			continue
		}
		if kind, _, _ := errorOf(t, w.Body.String()); kind != c.kind {
			t.Errorf("%s %s: code %q, want %q", c.method, c.path, kind, c.kind)
		}
		if got := w.Header().Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", c.method, c.path, ct)
		}
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/check", `{"policy":"api","key":"k"}`},
		{"POST", "/v1/check", `[{"policy":"api","key":"k"}]`},
		{"POST", "/v1/acquire", `{"policy":"jobs","key":"k"}`},
		{"POST", "/v1/release", `{"policy":"jobs","key":"k","lease":"x"}`},
		{"GET", "/v1/policies", ``},
		{"POST", "/v1/reset", `{"policy":"api","key":"k"}`},
	} {
		w := serve(h, c.method, c.path, c.body)
		if w.Code != 200 || !json.Valid(w.Body.Bytes()) || !strings.HasSuffix(w.Body.String(), "\n") {
			t.Errorf("%s %s: %d %q: want 200 and JSON ending in a newline", c.method, c.path, w.Code, w.Body)
		}
	}
}

// A batch of 1000 realistic checks (a 40-byte key and a field) fits the
// check body limit; the limit holds to the byte, and the other endpoints
// keep 64 KiB.
func TestBatchBodyBoundary(t *testing.T) {
	h := newHandler(t, nil)
	var b strings.Builder
	b.WriteByte('[')
	for i := range 1000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"policy":"t","key":"user-%035d","fields":{"tenant":"tenant-%04d"}}`, i, i%100)
	}
	b.WriteByte(']')
	batch := b.String()
	if len(batch) <= MaxBodyBytes {
		t.Fatalf("the batch is %d bytes: it proves nothing against the old 64 KiB limit", len(batch))
	}
	if w := serve(h, "POST", "/v1/check", batch); w.Code != 200 {
		t.Fatalf("1000-check batch of %d bytes: %d %.200s", len(batch), w.Code, w.Body)
	}
	// Exactly at the limit (padded with JSON whitespace): decoded, not 413.
	pad := func(body string, n int) string { return body + strings.Repeat(" ", n-len(body)) }
	one := `{"policy":"api","key":"k"}`
	for _, c := range []struct {
		path string
		body string
		code int
	}{
		{"/v1/check", pad(one, MaxBatchBodyBytes), 200},
		{"/v1/check", pad(one, MaxBatchBodyBytes+1), 413},
		{"/v1/reset", pad(one, MaxBodyBytes), 200},
		{"/v1/reset", pad(one, MaxBodyBytes+1), 413},
	} {
		if w := serve(h, "POST", c.path, c.body); w.Code != c.code {
			t.Errorf("%s with %d bytes: %d, want %d (%.200s)", c.path, len(c.body), w.Code, c.code, w.Body)
		}
	}
	over := batch[:len(batch)-1] + `,{"policy":"api","key":"k"}]`
	if w := serve(h, "POST", "/v1/check", over); w.Code != 400 {
		t.Errorf("1001 checks: %d, want 400", w.Code)
	} else if _, field, _ := errorOf(t, w.Body.String()); field != "checks" {
		t.Errorf("1001 checks: field %q, want checks", field)
	}
}

// /v1/acquire on a policy without a concurrency limit is refused, naming
// the policy field: a lease of a rate limit would hold nothing.
func TestAcquireRatePolicy(t *testing.T) {
	h := newHandler(t, nil)
	w := serve(h, "POST", "/v1/acquire", `{"policy":"api","key":"k"}`)
	if w.Code != 400 {
		t.Fatalf("acquire on a rate policy: %d %s, want 400", w.Code, w.Body)
	}
	if _, field, msg := errorOf(t, w.Body.String()); field != "policy" || !strings.Contains(msg, "concurrency") {
		t.Errorf("acquire on a rate policy: field %q message %q", field, msg)
	}
	if w := serve(h, "POST", "/v1/acquire", `{"policy":"jobs","key":"k"}`); w.Code != 200 {
		t.Errorf("acquire on a concurrency policy: %d %s", w.Code, w.Body)
	}
}
