package memstore

// tbTable holds token-bucket states: an open-addressing hash table with
// linear probing and backward-shift deletion, keyed by the 128-bit state
// identity (id.lo is never 0, which marks an empty slot; id.lo's low 32
// bits give the home slot, see home). A slot is 32 bytes and holds the
// identity and the whole state; slots go in pairs, one pair to a 64-byte
// cache line, and an identity's home is the first slot of a pair, so that
// a probe uses the whole line it pays for. A lookup of an existing key
// usually touches one cache line, and the write-back touches the same one.
//
// The number of pairs is not a power of two: the home pair is the identity
// scaled to it (a multiply, not a mask), so the table can grow by half
// rather than double. It grows when it would be more than 4/5 full, so it
// is between 8/15 and 4/5 full once grown: 40 to 60 bytes per key
// (doubling would give 40 to 80).
type tbTable struct {
	slots  []tbSlot // an even number of them
	n      int
	cursor uint64 // next slot the lazy sweep examines, < len(slots)
}

type tbSlot struct {
	h    id    // h.lo == 0: empty
	a, b int64 // algo.State A and B
}

const tbMinSize = 8 // slots; sizes are 2 × 4, 6, 9, 13, 19, ... pairs

// grown is the size after size when growing: half as large again, in
// pairs.
func grown(size int) int {
	pairs := size / 2
	return 2 * (pairs + pairs/2)
}

func (t *tbTable) init() { t.setSlots(tbMinSize) }

func (t *tbTable) setSlots(size int) {
	t.slots = make([]tbSlot, size)
	t.cursor = 0
}

// home is h's home slot, the first of a pair: the low 32 bits of lo
// (which the shard index, lo's top bits, does not use) read as a fraction
// of the table.
func (t *tbTable) home(h id) uint64 {
	return home(h, uint64(len(t.slots)/2))
}

// home is the first slot of h's home pair among pairs: h.lo's low 32 bits
// scaled to pairs. (Past 2³² pairs, 256 GiB in one shard, the product would
// wrap: the pair would still be one of the table's, only less evenly
// spread.)
func home(h id, pairs uint64) uint64 {
	return (uint64(uint32(h.lo)) * pairs >> 32) * 2
}

// next is the slot after i, wrapping around.
func (t *tbTable) next(i uint64) uint64 {
	if i++; i == uint64(len(t.slots)) {
		return 0
	}
	return i
}

// find returns the index of h's slot, or of the empty slot where h would
// go, and whether h is there. (It is written to stay cheap enough for the
// compiler to inline get, which calls it on every decision.)
func (t *tbTable) find(h id) (uint64, bool) {
	slots := t.slots
	i := home(h, uint64(len(slots)/2))
	for {
		if s := &slots[i]; s.h == h {
			return i, true
		} else if s.h.lo == 0 {
			return i, false
		}
		if i++; i == uint64(len(slots)) {
			i = 0
		}
	}
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

// grow makes the table half as large again.
func (t *tbTable) grow() { t.resize(grown(len(t.slots))) }

// shrink makes the table smaller when it is less than 1/8 full, so that
// memory follows the live keys down after a flood of idle ones: to the
// size a table grown from tbMinSize would have at 2/5 full.
func (t *tbTable) shrink() {
	if len(t.slots) <= tbMinSize || t.n*8 >= len(t.slots) {
		return
	}
	size := tbMinSize
	for size*2 < t.n*5 { // more than 2/5 full
		size = grown(size)
	}
	if size < len(t.slots) {
		t.resize(size)
	}
}

func (t *tbTable) resize(size int) {
	old := t.slots
	t.setSlots(size)
	for _, s := range old {
		if s.h.lo != 0 {
			i := t.home(s.h)
			for t.slots[i].h.lo != 0 {
				i = t.next(i)
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

// dist is how many slots forward from i j lies, wrapping around.
func (t *tbTable) dist(i, j uint64) uint64 {
	if j >= i {
		return j - i
	}
	return j + uint64(len(t.slots)) - i
}

// deleteAt empties slot i and shifts back the entries after it that
// probed past it, so that every entry stays reachable from its home slot.
// Entries only ever move to slots at or after i (cyclically).
func (t *tbTable) deleteAt(i uint64) {
	hole := i
	for j := t.next(i); ; j = t.next(j) {
		s := t.slots[j]
		if s.h.lo == 0 {
			break
		}
		// s may fill the hole unless its home lies cyclically in (hole, j].
		if t.dist(t.home(s.h), j) >= t.dist(hole, j) {
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
		i := t.cursor
		s := &t.slots[i]
		if s.h.lo == 0 {
			t.cursor = t.next(i)
			continue
		}
		seen++
		if (tbEntry{s.a, s.b}).expires() <= now {
			t.deleteAt(i)
			gone++
			continue
		}
		t.cursor = t.next(i)
	}
	return gone
}
