package algo

import "testing"

// lineStep is one request to a concurrency limit in TestLeaseLine: a take
// (with a place in line when queue > 0 and it is denied), a peek, or a
// release.
type lineStep struct {
	at      int64 // ms after base
	op      string
	id      string
	cost    int64
	queue   int64 // ms
	allowed bool  // want, for take and peek
	rem     int64 // want Remaining, for take and peek
}

// TestLeaseLine: holders that wait keep their place in line, are served in
// the order they joined, are not overtaken by newcomers, and stop blocking
// the line when their place lapses or they refund.
func TestLeaseLine(t *testing.T) {
	tests := []struct {
		name  string
		quota int64
		steps []lineStep
	}{
		{"served in arrival order", 1, []lineStep{
			{at: 0, op: "take", id: "a", cost: 1, allowed: true, rem: 0},
			{at: 1, op: "take", id: "b", cost: 1, queue: 500, rem: 0},
			{at: 2, op: "take", id: "c", cost: 1, queue: 500, rem: 0},
			{at: 3, op: "release", id: "a"},
			// c asks first, but b joined before it.
			{at: 4, op: "take", id: "c", cost: 1, queue: 500, rem: 0},
			// A newcomer, in line or not, is behind both.
			{at: 4, op: "take", id: "d", cost: 1, rem: 0},
			{at: 4, op: "peek", allowed: false, rem: 0},
			{at: 5, op: "take", id: "b", cost: 1, queue: 500, allowed: true, rem: 0},
			{at: 6, op: "release", id: "b"},
			{at: 7, op: "take", id: "d", cost: 1, queue: 500, rem: 0},
			{at: 8, op: "take", id: "c", cost: 1, queue: 500, allowed: true, rem: 0},
		}},
		{"a lapsed place stops blocking", 1, []lineStep{
			{at: 0, op: "take", id: "a", cost: 1, allowed: true},
			{at: 1, op: "take", id: "b", cost: 1, queue: 100},
			{at: 2, op: "release", id: "a"},
			{at: 100, op: "take", id: "c", cost: 1}, // b's place lasts until 101
			{at: 101, op: "take", id: "c", cost: 1, allowed: true},
		}},
		{"renewing keeps the turn", 1, []lineStep{
			{at: 0, op: "take", id: "a", cost: 1, allowed: true},
			{at: 1, op: "take", id: "b", cost: 1, queue: 100},
			{at: 2, op: "take", id: "c", cost: 1, queue: 100},
			{at: 90, op: "take", id: "b", cost: 1, queue: 100}, // renewed to 190
			{at: 95, op: "take", id: "c", cost: 1, queue: 100}, // renewed to 195
			{at: 150, op: "release", id: "a"},
			{at: 150, op: "take", id: "c", cost: 1, queue: 100},
			{at: 150, op: "take", id: "b", cost: 1, queue: 100, allowed: true},
		}},
		{"a refund ends the place", 1, []lineStep{
			{at: 0, op: "take", id: "a", cost: 1, allowed: true},
			{at: 1, op: "take", id: "b", cost: 1, queue: 500},
			{at: 2, op: "release", id: "b"}, // b gives up
			{at: 3, op: "release", id: "a"},
			{at: 4, op: "take", id: "c", cost: 1, allowed: true},
		}},
		{"the head's size holds back smaller waiters", 3, []lineStep{
			{at: 0, op: "take", id: "a", cost: 2, allowed: true, rem: 1},
			{at: 1, op: "take", id: "b", cost: 2, queue: 500, rem: 1},
			{at: 2, op: "take", id: "c", cost: 1, queue: 500, rem: 0},
			{at: 3, op: "peek", rem: 0},
			{at: 4, op: "release", id: "a"},
			{at: 5, op: "take", id: "c", cost: 1, queue: 500, allowed: true, rem: 0},
			{at: 6, op: "take", id: "b", cost: 2, queue: 500, allowed: true, rem: 0},
		}},
		{"room for the line and a newcomer", 3, []lineStep{
			{at: 0, op: "take", id: "a", cost: 3, allowed: true, rem: 0},
			{at: 1, op: "take", id: "b", cost: 1, queue: 500, rem: 0},
			{at: 2, op: "release", id: "a"},
			{at: 3, op: "peek", allowed: true, rem: 2},
			{at: 3, op: "take", id: "c", cost: 2, allowed: true, rem: 0},
			{at: 4, op: "take", id: "b", cost: 1, queue: 500, allowed: true, rem: 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := []Params{{Kind: Concurrency, Quota: tt.quota, Period: 10 * sec}}
			s := &State{}
			ss := []*State{s}
			for i, st := range tt.steps {
				now := base + st.at*ms
				switch st.op {
				case "release":
					Refund(&ps[0], s, now, now, 0, st.id)
					continue
				case "peek":
					r := Check(&ps[0], s, now, 0, 0)
					if r.Allowed != st.allowed || r.Remaining != st.rem {
						t.Fatalf("step %d (%+v): peek %+v", i, st, r)
					}
					continue
				}
				ok, _, r := Decide(ps, ss, now, st.cost, 0, st.id, nil)
				if ok != st.allowed || r.Remaining != st.rem {
					t.Fatalf("step %d (%+v): allowed %v, %+v; state %+v", i, st, ok, r, *s)
				}
				if !ok {
					if r.RetryAfter <= 0 {
						t.Fatalf("step %d: denied with RetryAfter %d", i, r.RetryAfter)
					}
					Enqueue(ps, ss, now, st.cost, st.id, st.queue*ms)
				}
				for _, w := range s.Waiters {
					if ok && w.ID == st.id {
						t.Fatalf("step %d: %s admitted but still in line", i, st.id)
					}
				}
			}
		})
	}
}

// TestEnqueueBounds: a place never outlives the lease TTL, so ExpiresAt
// stays within now + Period; Enqueue ignores requests it cannot queue and
// kinds without a line.
func TestEnqueueBounds(t *testing.T) {
	ps := []Params{{Kind: Concurrency, Quota: 1, Period: sec}, {Kind: TokenBucket, Quota: 1, Period: sec}}
	c, tb := &State{Leases: []Lease{{ID: "a", Expires: base + sec, Cost: 1}}}, &State{}
	ss := []*State{c, tb}
	if !Enqueue(ps, ss, base, 1, "b", 60*sec) {
		t.Fatal("Enqueue reported no change")
	}
	if len(c.Waiters) != 1 || c.Waiters[0].Expires != base+sec || c.Waiters[0].Since != base {
		t.Fatalf("waiters %+v, want one until base+1s", c.Waiters)
	}
	if tb.A != 0 || tb.B != 0 || len(tb.Waiters) != 0 {
		t.Fatalf("token bucket changed: %+v", *tb)
	}
	if got := ExpiresAt(&ps[0], c); got != base+sec {
		t.Fatalf("ExpiresAt %d, want %d", got, base+sec)
	}
	for _, tt := range []struct {
		name        string
		cost, queue int64
		lease       string
	}{{"peek", 0, sec, "x"}, {"no lease", 1, sec, ""}, {"no queue", 1, 0, "x"}} {
		if Enqueue(ps, ss, base, tt.cost, tt.lease, tt.queue) {
			t.Errorf("%s: Enqueue changed state", tt.name)
		}
	}
	// Prune drops a lapsed place; a fresh state has no line left.
	Prune(&ps[0], c, base+sec)
	if c.Waiters != nil || c.Leases != nil || !Fresh(&ps[0], c, base+sec) {
		t.Fatalf("after Prune: %+v", *c)
	}
}
