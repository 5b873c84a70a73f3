package topk

import (
	"cmp"
	"slices"
	"strings"
)

// MaxKeyBytes is the longest key a sketch stores: a longer key is cut to
// its first MaxKeyBytes bytes (then it shares a counter with the keys
// that begin the same way), so that a sketch's memory is bounded by
// k*MaxKeyBytes whatever the callers send.
const MaxKeyBytes = 256

// A Counter is one key held by a sketch.
type Counter struct {
	// Key is the key, cut to MaxKeyBytes.
	Key string `json:"key"`
	// Count is an upper bound of the key's weight: its true weight is in
	// [Count-Err, Count].
	Count uint64 `json:"count"`
	// Err is how much of Count may belong to keys this counter replaced.
	Err uint64 `json:"err"`
}

// A Sketch is a space-saving heavy-hitter sketch of at most k counters
// (see the package documentation for its guarantee). Its zero value is
// not usable: call NewSketch. It is not safe for concurrent use.
type Sketch struct {
	k     int
	nodes []node           // the counters, in no order
	heap  []int32          // indexes into nodes: a min-heap by Count
	idx   map[string]int32 // key -> index into nodes
	n     uint64           // total weight added
}

// node is a counter and its place in the heap, so that moving it in the
// heap writes no map.
type node struct {
	Counter
	pos int32
}

// NewSketch returns a sketch of k counters; k below 1 is taken as 1.
func NewSketch(k int) *Sketch {
	k = max(k, 1)
	return &Sketch{k: k, nodes: make([]node, 0, k), heap: make([]int32, 0, k), idx: make(map[string]int32, k)}
}

// Add adds weight w to key.
func (s *Sketch) Add(key string, w uint64) {
	if len(key) > MaxKeyBytes {
		key = key[:MaxKeyBytes]
	}
	s.n += w
	if i, ok := s.idx[key]; ok {
		s.nodes[i].Count += w
		s.down(int(s.nodes[i].pos))
		return
	}
	key = strings.Clone(key) // never keep a caller's buffer alive
	if len(s.nodes) < s.k {
		i := int32(len(s.nodes))
		s.nodes = append(s.nodes, node{Counter{Key: key, Count: w}, int32(len(s.heap))})
		s.heap = append(s.heap, i)
		s.idx[key] = i
		s.up(len(s.heap) - 1)
		return
	}
	i := s.heap[0]
	m := &s.nodes[i]
	delete(s.idx, m.Key)
	m.Counter = Counter{Key: key, Count: m.Count + w, Err: m.Count}
	s.idx[key] = i
	s.down(0)
}

// N returns the total weight added since the sketch was made or reset.
func (s *Sketch) N() uint64 { return s.n }

// Min returns the smallest count held when all k counters are taken, and
// 0 otherwise: an upper bound of the weight of any key not held.
func (s *Sketch) Min() uint64 {
	if len(s.nodes) < s.k {
		return 0
	}
	return s.nodes[s.heap[0]].Count
}

// Len returns the number of counters held (at most k).
func (s *Sketch) Len() int { return len(s.nodes) }

// Get returns the counter of key and whether the sketch holds it.
func (s *Sketch) Get(key string) (Counter, bool) {
	if len(key) > MaxKeyBytes {
		key = key[:MaxKeyBytes]
	}
	i, ok := s.idx[key]
	if !ok {
		return Counter{}, false
	}
	return s.nodes[i].Counter, true
}

// Top returns up to n counters, largest count first (ties by key).
func (s *Sketch) Top(n int) []Counter {
	out := make([]Counter, len(s.nodes))
	for i := range s.nodes {
		out[i] = s.nodes[i].Counter
	}
	sortCounters(out)
	return out[:min(max(n, 0), len(out))]
}

// Reset empties the sketch, keeping its memory.
func (s *Sketch) Reset() {
	clear(s.idx)
	clear(s.nodes) // drop the keys
	s.nodes, s.heap = s.nodes[:0], s.heap[:0]
	s.n = 0
}

func sortCounters(c []Counter) {
	slices.SortFunc(c, func(a, b Counter) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		return strings.Compare(a.Key, b.Key)
	})
}

func (s *Sketch) count(h int) uint64 { return s.nodes[s.heap[h]].Count }

func (s *Sketch) swap(i, j int) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.nodes[s.heap[i]].pos = int32(i)
	s.nodes[s.heap[j]].pos = int32(j)
}

func (s *Sketch) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if s.count(p) <= s.count(i) {
			return
		}
		s.swap(i, p)
		i = p
	}
}

func (s *Sketch) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(s.heap) {
			return
		}
		c := l
		if r := l + 1; r < len(s.heap) && s.count(r) < s.count(l) {
			c = r
		}
		if s.count(i) <= s.count(c) {
			return
		}
		s.swap(i, c)
		i = c
	}
}
