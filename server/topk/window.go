package topk

// A Window is a heavy-hitter sketch of recent traffic: two sketches of k
// counters, the current period's and the previous one's, which Rotate
// moves along (see the package documentation). Times are Unix
// milliseconds passed by the caller; a Window reads no clock. It is not
// safe for concurrent use.
type Window struct {
	cur, prev *Sketch
	start     int64 // start of the current period
	period    int64
}

// NewWindow returns a window of two sketches of k counters each, periods
// of period milliseconds (at least 1), the first one starting at now.
func NewWindow(k int, period, now int64) *Window {
	return &Window{cur: NewSketch(k), prev: NewSketch(k), start: now, period: max(period, 1)}
}

// Add adds weight w to key in the current period.
func (w *Window) Add(key string, wt uint64) { w.cur.Add(key, wt) }

// Rotate starts a new period when now is a period or more past the start
// of the current one: the current sketch becomes the previous one (or,
// when two periods or more have passed with no rotation, both are
// emptied). A time before the current period's start changes nothing.
func (w *Window) Rotate(now int64) {
	switch d := now - w.start; {
	case d < w.period:
		return
	case d < 2*w.period:
		w.cur, w.prev = w.prev, w.cur
		w.cur.Reset()
		w.start += w.period
	default:
		w.cur.Reset()
		w.prev.Reset()
		w.start = now - now%w.period
	}
}

// N returns the total weight of the two periods held.
func (w *Window) N() uint64 { return w.cur.N() + w.prev.N() }

// Top returns up to n keys of the two periods held, by merged count,
// largest first. A key held by only one sketch is counted in the other at
// that sketch's Min (0 when it is not full), which goes into Err, so for
// every key Count-Err <= its true weight over the two periods <= Count;
// and every key with more than N()/k of the weight is among the keys held.
func (w *Window) Top(n int) []Counter {
	merged := make(map[string]Counter, w.cur.Len()+w.prev.Len())
	for _, a := range []*Sketch{w.cur, w.prev} {
		b := w.prev
		if a == w.prev {
			b = w.cur
		}
		for _, n := range a.nodes {
			c := n.Counter
			if _, done := merged[c.Key]; done {
				continue
			}
			if o, ok := b.Get(c.Key); ok {
				c.Count += o.Count
				c.Err += o.Err
			} else {
				c.Count += b.Min()
				c.Err += b.Min()
			}
			merged[c.Key] = c
		}
	}
	out := make([]Counter, 0, len(merged))
	for _, c := range merged {
		out = append(out, c)
	}
	sortCounters(out)
	return out[:min(max(n, 0), len(out))]
}
