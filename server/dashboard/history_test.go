package dashboard

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/weir-go/weir/server/service"
)

var sA = Series{"decisions", "api", "allowed"}
var sL = Series{"decisions", "api", "limited"}

type rec struct {
	t int64
	v map[Series]float64
}

func TestHistoryRates(t *testing.T) {
	for _, tc := range []struct {
		name       string
		step, span int64
		recs       []rec
		times      []int64
		want       map[Series][]float64
	}{
		{"empty", 1000, 5000, nil, nil, map[Series][]float64{}},
		{"one sample has no rate", 1000, 5000, []rec{{1000, map[Series]float64{sA: 5}}}, nil, map[Series][]float64{}},
		{"rates between samples", 1000, 5000, []rec{
			{1000, map[Series]float64{sA: 5}},
			{2000, map[Series]float64{sA: 15, sL: 2}},
			{4000, map[Series]float64{sA: 25, sL: 2}},
		}, []int64{2000, 4000}, map[Series][]float64{sA: {10, 5}, sL: {2, 0}}},
		{"same step replaces the newest", 1000, 5000, []rec{
			{1000, map[Series]float64{sA: 0}},
			{2000, map[Series]float64{sA: 1}},
			{2500, map[Series]float64{sA: 4}},
		}, []int64{2500}, map[Series][]float64{sA: {4 / 1.5}}},
		{"clock going back is ignored", 1000, 5000, []rec{
			{3000, map[Series]float64{sA: 0}},
			{2000, map[Series]float64{sA: 100}},
			{4000, map[Series]float64{sA: 1}},
		}, []int64{4000}, map[Series][]float64{sA: {1}}},
		{"counter reset gives 0, not negative", 1000, 5000, []rec{
			{1000, map[Series]float64{sA: 50}},
			{2000, map[Series]float64{sA: 3}},
		}, []int64{2000}, map[Series][]float64{sA: {0}}},
		{"wraps around, keeps the newest span/step samples", 1000, 3000, []rec{
			{1000, map[Series]float64{sA: 0}},
			{2000, map[Series]float64{sA: 100}},
			{3000, map[Series]float64{sA: 101}},
			{4000, map[Series]float64{sA: 103}},
			{5000, map[Series]float64{sA: 106}},
		}, []int64{4000, 5000}, map[Series][]float64{sA: {2, 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistory(tc.step, tc.span)
			for _, r := range tc.recs {
				h.Record(r.t, r.v)
			}
			got := h.Rates()
			if !slices.Equal(got.Times, tc.times) {
				t.Errorf("times %v, want %v", got.Times, tc.times)
			}
			if len(got.Values) != len(tc.want) {
				t.Errorf("series %v, want %v", got.Values, tc.want)
			}
			for s, w := range tc.want {
				if !slices.Equal(got.Values[s], w) {
					t.Errorf("%v: %v, want %v", s, got.Values[s], w)
				}
			}
		})
	}
}

// TestHistoryBounded records far more samples than the ring holds and
// checks that it never holds more than span/step of them.
func TestHistoryBounded(t *testing.T) {
	h := NewHistory(1000, 900_000)
	for i := range int64(10_000) {
		h.Record(i*1000, map[Series]float64{sA: float64(i * 7)})
	}
	if len(h.slots) != 900 || h.n != 900 {
		t.Fatalf("%d slots, %d held, want 900", len(h.slots), h.n)
	}
	r := h.Rates()
	if len(r.Times) != 899 || r.Times[0] != 9101*1000 || r.Times[898] != 9999*1000 {
		t.Errorf("times: %d, first %d, last %d", len(r.Times), r.Times[0], r.Times[len(r.Times)-1])
	}
	for _, v := range r.Values[sA] {
		if v != 7 {
			t.Fatalf("rate %v, want 7", v)
		}
	}
}

// TestHistoryRecordCopies checks that a caller reusing its map does not
// rewrite the past.
func TestHistoryRecordCopies(t *testing.T) {
	h := NewHistory(1000, 5000)
	m := map[Series]float64{sA: 1}
	h.Record(1000, m)
	m[sA] = 1000
	h.Record(2000, map[Series]float64{sA: 3})
	if got := h.Rates().Values[sA]; !slices.Equal(got, []float64{2}) {
		t.Errorf("rates %v, want [2]", got)
	}
}

// TestHistoryEndpoint checks GET /dashboard/history after real decisions:
// the sampler recorded the counters, and the JSON carries them by policy.
func TestHistoryEndpoint(t *testing.T) {
	d, svc := newTestDashboard(t)
	d.Close() // stop the sampler; record by hand on fixed instants
	d.hist = NewHistory(1000, 900_000)
	d.hist.Record(1000, d.Snapshot().totals())
	for range 5 {
		svc.Check(t.Context(), &service.Request{Policy: "secretpolicy", Key: "k", Cost: 1})
	}
	d.hist.Record(3000, d.Snapshot().totals())
	w := httptest.NewRecorder()
	d.ServeHTTP(w, httptest.NewRequest("GET", "/dashboard/history", nil))
	var got HistoryJSON
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
		t.Fatalf("%d %s: %v", w.Code, w.Body, err)
	}
	p := got.Decisions["secretpolicy"]
	// 2/m: 2 allowed, 3 limited over 2 seconds.
	if got.StepMS != 1000 || !slices.Equal(got.Times, []int64{3000}) || !slices.Equal(p["allowed"], []float64{1}) ||
		!slices.Equal(p["limited"], []float64{1.5}) {
		t.Errorf("history %s", w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}
