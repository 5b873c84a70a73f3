package memstore

// tbTable holds token-bucket states: an open-addressing hash table with
// linear probing and backward-shift deletion, keyed by the 128-bit state
// identity (id.lo is never 0, which marks an empty slot; id.lo's low bits
// give the home slot). A slot is 32 bytes, two to a 64-byte cache line,
// and holds the identity and the whole state, so a lookup of an existing
// key usually touches one cache line, and the write-back touches the same
// one.
//
// The table doubles when it would be more than 4/5 full, so it is between
// 2/5 and 4/5 full once grown: 40 to 80 bytes per key.
type tbTable struct {
	slots  []tbSlot
	mask   uint64
	n      int
	cursor uint64 // next slot the lazy sweep examines
}

type tbSlot struct {
	h    id    // h.lo == 0: empty
	a, b int64 // algo.State A and B
}

const tbMinSize = 8

func (t *tbTable) init() {
	t.slots = make([]tbSlot, tbMinSize)
	t.mask = tbMinSize - 1
}

// find returns the index of h's slot, or of the empty slot where h would
// go, and whether h is there.
func (t *tbTable) find(h id) (uint64, bool) {
	i := h.lo & t.mask
	for {
		s := &t.slots[i]
		if s.h == h {
			return i, true
		}
		if s.h.lo == 0 {
			return i, false
		}
		i = (i + 1) & t.mask
	}
}

func (t *tbTable) get(h id) (tbEntry, bool) {
	i, ok := t.find(h)
	if !ok {
		return tbEntry{}, false
	}
	s := &t.slots[i]
	return tbEntry{s.a, s.b}, true
}

// put stores e under h.
func (t *tbTable) put(h id, e tbEntry) {
	i, ok := t.find(h)
	if !ok {
		if (t.n+1)*5 > len(t.slots)*4 {
			t.grow()
			i, _ = t.find(h)
		}
		t.n++
	}
	t.slots[i] = tbSlot{h, e.a, e.b}
}

func (t *tbTable) grow() { t.resize(2 * len(t.slots)) }

// shrink makes the table smaller when it is less than 1/8 full, so that
// memory follows the live keys down after a flood of idle ones.
func (t *tbTable) shrink() {
	size := len(t.slots)
	for size > tbMinSize && t.n*5 <= size { // half the size: at most 2/5 full
		size /= 2
	}
	if size < len(t.slots) && t.n*8 < len(t.slots) {
		t.resize(size)
	}
}

func (t *tbTable) resize(size int) {
	old := t.slots
	t.slots = make([]tbSlot, size)
	t.mask = uint64(size - 1)
	for _, s := range old {
		if s.h.lo != 0 {
			i := s.h.lo & t.mask
			for t.slots[i].h.lo != 0 {
				i = (i + 1) & t.mask
			}
			t.slots[i] = s
		}
	}
}

// del removes h and reports whether it was there.
func (t *tbTable) del(h id) bool {
	i, ok := t.find(h)
	if ok {
		t.deleteAt(i)
	}
	return ok
}

// deleteAt empties slot i and shifts back the entries after it that
// probed past it, so that every entry stays reachable from its home slot.
// Entries only ever move to slots at or after i (cyclically).
func (t *tbTable) deleteAt(i uint64) {
	hole := i
	for j := (i + 1) & t.mask; ; j = (j + 1) & t.mask {
		s := t.slots[j]
		if s.h.lo == 0 {
			break
		}
		// s may fill the hole unless its home lies cyclically in (hole, j].
		home := s.h.lo & t.mask
		if (j-home)&t.mask >= (j-hole)&t.mask {
			t.slots[hole] = s
			hole = j
		}
	}
	t.slots[hole] = tbSlot{}
	t.n--
}

// sweep removes every entry that is fresh at now and returns the earliest
// instant a remaining entry becomes fresh.
func (t *tbTable) sweep(now int64) (gone int, next int64) {
	next = 1<<63 - 1
	for i := uint64(0); i < uint64(len(t.slots)); {
		s := &t.slots[i]
		if s.h.lo == 0 {
			i++
			continue
		}
		if x := (tbEntry{s.a, s.b}).expires(); x <= now {
			t.deleteAt(i) // an entry may have moved into slot i: look again
			gone++
			continue
		}
		next = min(next, (tbEntry{s.a, s.b}).expires())
		i++
	}
	return gone, next
}

// lazySweep examines up to two entries (and at most eight slots) from the
// cursor on, removing those fresh at now.
func (t *tbTable) lazySweep(now int64) (gone int) {
	seen := 0
	for k := 0; k < 8 && seen < 2 && t.n > 0; k++ {
		i := t.cursor & t.mask
		s := &t.slots[i]
		if s.h.lo == 0 {
			t.cursor++
			continue
		}
		seen++
		if (tbEntry{s.a, s.b}).expires() <= now {
			t.deleteAt(i)
			gone++
			continue
		}
		t.cursor++
	}
	return gone
}
