package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weir-go/weir/server/service"
)

// newKeysDashboard returns a dashboard with top keys over a login policy
// (2 a minute per key), after traffic: alice 10 times, bob once.
func newKeysDashboard(t *testing.T, o Options) *Dashboard {
	t.Helper()
	svc, m := newService(t, "policies:\n  login: {limits: [\"2/m\"], key: \"user:{key}\"}\n")
	d := New(svc, m, o)
	t.Cleanup(d.Close)
	for _, k := range append(strings.Split(strings.Repeat("alice,", 10), ",")[:10], "bob") {
		if _, err := svc.Check(context.Background(), &service.Request{Policy: "login", Key: k, Cost: 1}); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func getTopKeys(t *testing.T, d *Dashboard, authorization string) (TopKeysJSON, string) {
	t.Helper()
	r := httptest.NewRequest("GET", "/dashboard/topkeys", nil)
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	w := httptest.NewRecorder()
	d.ServeHTTP(w, r)
	var out TopKeysJSON
	if w.Code != 200 {
		t.Fatalf("GET /dashboard/topkeys: %d %s", w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s: %v", w.Body, err)
	}
	return out, w.Body.String()
}

// TestTopKeysScope: the keys go to admin tokens, and to everyone on a
// server without tokens; a decision token gets none; with the sketch off
// nobody does.
func TestTopKeysScope(t *testing.T) {
	auth := service.NewAuth([]string{"decide-tok"}, []string{"admin-tok"})
	for _, tc := range []struct {
		name           string
		o              Options
		authorization  string
		enabled, shown bool
	}{
		{"admin token", Options{Auth: auth, TopKeys: true}, "Bearer admin-tok", true, true},
		{"decision token", Options{Auth: auth, TopKeys: true}, "Bearer decide-tok", true, false},
		{"wrong token", Options{Auth: auth, TopKeys: true}, "Bearer nope", true, false},
		{"no tokens on the server", Options{TopKeys: true}, "", true, true},
		{"sketch off, admin", Options{Auth: auth}, "Bearer admin-tok", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newKeysDashboard(t, tc.o)
			got, body := getTopKeys(t, d, tc.authorization)
			if got.Enabled != tc.enabled || got.Visible != tc.shown {
				t.Fatalf("enabled %v visible %v, want %v %v: %s", got.Enabled, got.Visible, tc.enabled, tc.shown, body)
			}
			if !tc.shown {
				if strings.Contains(body, "alice") || len(got.Policies) != 0 {
					t.Fatalf("keys sent to a caller who may not see them: %s", body)
				}
				return
			}
			l := got.Policies["login"]
			if l.Total != 11 || l.Denied != 8 || len(l.Keys) != 2 || l.Keys[0].Key != "user:alice" || l.Keys[0].Count != 10 ||
				len(l.Denials) != 1 || l.Denials[0].Key != "user:alice" || l.Denials[0].Count != 8 {
				t.Fatalf("login top keys: %+v", l)
			}
		})
	}
}

// TestNoKeysInStream: the event stream, the history and the page never
// carry a key, even for an admin.
func TestNoKeysInStream(t *testing.T) {
	d := newKeysDashboard(t, Options{TopKeys: true})
	d.Close()
	for _, path := range []string{"/dashboard", "/dashboard/events", "/dashboard/history", "/dashboard/policies"} {
		w := httptest.NewRecorder()
		d.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if strings.Contains(w.Body.String(), "alice") {
			t.Errorf("%s carries a key: %s", path, w.Body)
		}
	}
}

func TestPingAndLocal(t *testing.T) {
	svc, m := newService(t, "policies:\n  api:\n    limits: [\"100000/h algo=fixed-window\"]\n    local: {hold: 1s}\n")
	defer svc.Close()
	d := New(svc, m, Options{Store: "redis"})
	defer d.Close()
	for range 25 {
		if _, err := svc.Check(context.Background(), &service.Request{Policy: "api", Key: "k", Cost: 1}); err != nil {
			t.Fatal(err)
		}
	}
	svc.Close() // the local store gives back its units and stops taking blocks: the counters hold still
	t0 := time.UnixMilli(1_700_000_000_000)
	d.RecordPing(t0, 1500*time.Microsecond, errors.New("dial tcp: connection refused"))
	d.RecordPing(t0.Add(time.Second), 250*time.Microsecond, nil)
	s := d.Snapshot()
	wantPing := Ping{Store: "redis", OK: true, AtMS: t0.UnixMilli() + 1000, LatencyMS: 0.25, LastError: "dial tcp: connection refused", LastErrorMS: t0.UnixMilli()}
	if s.Ping == nil || *s.Ping != wantPing {
		t.Errorf("ping %+v, want %+v", s.Ping, wantPing)
	}
	// The numbers are those of /metrics.
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var want LocalBlocks
	for _, mf := range mfs {
		for _, mm := range mf.GetMetric() {
			v := mm.GetCounter().GetValue()
			switch mf.GetName() {
			case "weir_local_blocks_total":
				want.Blocks = v
			case "weir_local_units_taken_total":
				want.Taken = v
			case "weir_local_units_returned_total":
				want.Returned = v
			case "weir_local_units_wasted_total":
				want.Wasted = v
			}
		}
	}
	if l := s.Local["api"]; l != want || l.Blocks < 1 || l.Taken < 25 || len(s.Local) != 1 {
		t.Errorf("local blocks %v, want api: %+v (of /metrics) with a block or more and 25 units or more", s.Local, want)
	}
}
