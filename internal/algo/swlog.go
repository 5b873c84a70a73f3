package algo

import "sort"

// The sliding-window log: every admitted request is recorded with its
// instant and cost, and a request of cost n is admitted when the units
// admitted in (now-Period, now] plus n are at most Quota. It is exact: no
// interval of length Period ever holds more than Quota units. Memory per key
// is one Event (16 bytes) per admitted request still in the window, at most
// Quota events (requests at the same instant share one event).

// logFirstLive is the index of the first event inside (from, ...].
func logFirstLive(log []Event, from int64) int {
	return sort.Search(len(log), func(i int) bool { return log[i].At > from })
}

func logCheck(p *Params, s *State, now, cost int64) Result {
	live := s.Log[logFirstLive(s.Log, now-p.Period):]
	var used int64
	for _, e := range live {
		used = satAdd(used, e.Cost)
	}
	n := max(cost, 1)
	reset := int64(0)
	if len(live) > 0 {
		reset = max(0, live[len(live)-1].At+p.Period-now)
	}
	if n <= p.Quota-used { // not used+n: Quota may be MaxInt64
		if cost > 0 {
			reset = max(reset, p.Period)
		}
		return Result{Allowed: true, Remaining: p.Quota - used - cost, ResetAfter: reset}
	}
	// Walk from the oldest event until enough units have left the window.
	need := n - (p.Quota - used)
	var freed int64
	wait := reset
	for _, e := range live {
		freed += e.Cost
		if freed >= need {
			wait = e.At + p.Period - now
			break
		}
	}
	return Result{Remaining: max(0, p.Quota-used), RetryAfter: max(1, wait), ResetAfter: reset}
}

func logCommit(p *Params, s *State, now, cost int64) {
	Prune(p, s, now)
	if k := len(s.Log); k > 0 && s.Log[k-1].At >= now {
		// Same instant, or the clock went back: record it at the latest
		// instant seen, which keeps it in the window at least as long.
		s.Log[k-1].Cost += cost
		return
	}
	s.Log = append(s.Log, Event{At: now, Cost: cost})
}

func logRefund(s *State, at, cost int64) {
	for i := len(s.Log) - 1; i >= 0; i-- {
		e := &s.Log[i]
		if e.At < at {
			return
		}
		if e.At == at {
			e.Cost -= min(cost, e.Cost)
			if e.Cost == 0 {
				s.Log = append(s.Log[:i], s.Log[i+1:]...)
			}
			return
		}
	}
}
