package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/server/service"
)

// overrideBody is the body of POST /v1/override, /v1/override/get and
// /v1/override/delete. Unknown fields are rejected.
type overrideBody struct {
	Policy string            `json:"policy"`
	Key    string            `json:"key"`
	Fields map[string]string `json:"fields"`
	Plan   string            `json:"plan"`
	Limits []string          `json:"limits"`
	ForMS  int64             `json:"for_ms"`
	Reason string            `json:"reason"`
	By     string            `json:"by"`
}

// OverrideJSON is an override as the API answers it. Limits are in the
// text form, named; times are RFC 3339, omitted when zero.
type OverrideJSON struct {
	Policy  string   `json:"policy"`
	Key     string   `json:"key"`
	Plan    string   `json:"plan,omitempty"`
	Limits  []string `json:"limits,omitempty"`
	Expires string   `json:"expires,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	By      string   `json:"by,omitempty"`
	Updated string   `json:"updated,omitempty"`
}

// OverrideOf converts an override for the API.
func OverrideOf(o weir.Override) OverrideJSON {
	j := OverrideJSON{Policy: o.Scope, Key: o.Key, Plan: o.Plan, Reason: o.Reason, By: o.By, Expires: rfc3339(o.Expires), Updated: rfc3339(o.Updated)}
	for _, l := range o.Limits {
		s := l.String()
		if l.Name != "" {
			s += " name=" + l.Name
		}
		j.Limits = append(j.Limits, s)
	}
	return j
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (a *api) decodeOverride(w http.ResponseWriter, r *http.Request) (*overrideBody, bool) {
	var buf bytes.Buffer
	if !readBody(w, r, &buf, MaxBodyBytes) {
		return nil, false
	}
	var b overrideBody
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		a.fail(w, &weir.FieldError{Field: "body", Reason: "want a JSON object {policy, key, fields, plan, limits, for_ms, reason, by}: " + err.Error()})
		return nil, false
	}
	return &b, true
}

// who names the author of a change: the body's "by", and where it came from.
func who(r *http.Request, by string) string {
	if by == "" {
		return "admin@" + r.RemoteAddr
	}
	return by + "@" + r.RemoteAddr
}

func (a *api) writeOverride(w http.ResponseWriter, o weir.Override) {
	b, _ := json.Marshal(OverrideOf(o))
	writeJSON(w, b)
}

func (a *api) setOverride(w http.ResponseWriter, r *http.Request) {
	b, ok := a.decodeOverride(w, r)
	if !ok {
		return
	}
	if b.ForMS < 0 || b.ForMS > service.MaxOverrideFor.Milliseconds() {
		a.fail(w, &weir.FieldError{Field: "for_ms", Reason: "must be from 0 (no end) to " + service.MaxOverrideFor.String()})
		return
	}
	req := &service.OverrideRequest{Policy: b.Policy, Key: b.Key, Fields: b.Fields, Plan: b.Plan, Limits: b.Limits,
		For: time.Duration(b.ForMS) * time.Millisecond, Reason: b.Reason}
	o, err := a.Service.SetOverride(r.Context(), req, who(r, b.By), a.scope(r) >= service.ScopeAdmin)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.writeOverride(w, o)
}

func (a *api) getOverride(w http.ResponseWriter, r *http.Request) {
	b, ok := a.decodeOverride(w, r)
	if !ok {
		return
	}
	o, err := a.Service.GetOverride(r.Context(), b.Policy, b.Key, b.Fields, a.scope(r) >= service.ScopeAdmin)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.writeOverride(w, o)
}

func (a *api) deleteOverride(w http.ResponseWriter, r *http.Request) {
	b, ok := a.decodeOverride(w, r)
	if !ok {
		return
	}
	if err := a.Service.DeleteOverride(r.Context(), b.Policy, b.Key, b.Fields, b.Reason, who(r, b.By), a.scope(r) >= service.ScopeAdmin); err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, []byte(`{"deleted":true}`))
}

func (a *api) listOverrides(w http.ResponseWriter, r *http.Request) {
	list, err := a.Service.ListOverrides(r.Context(), r.URL.Query().Get("policy"), a.scope(r) >= service.ScopeAdmin)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := struct {
		Overrides []OverrideJSON `json:"overrides"`
	}{Overrides: make([]OverrideJSON, 0, len(list))}
	for _, o := range list {
		out.Overrides = append(out.Overrides, OverrideOf(o))
	}
	b, _ := json.Marshal(out)
	writeJSON(w, b)
}

// overrideError maps the override errors that are not in the common
// vocabulary; false when err is not one of them.
func overrideError(w http.ResponseWriter, err error) bool {
	switch {
	case errors.Is(err, weir.ErrNoOverride):
		writeError(w, http.StatusNotFound, "not_found", "", err.Error())
	case errors.Is(err, service.ErrNoOverrides):
		writeError(w, http.StatusNotImplemented, "unimplemented", "", err.Error())
	default:
		return false
	}
	return true
}
