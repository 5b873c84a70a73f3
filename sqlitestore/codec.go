package sqlitestore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/weir-go/weir/internal/algo"
)

// The extra column holds the variable part of an algo.State: the events of
// a sliding-window log, and the leases and waiters of a concurrency limit.
// Its layout, all integers as Go varints (encoding/binary):
//
//	version   byte, 1 (no waiters) or 2
//	nEvents   uvarint
//	events    nEvents × (at: varint, the first absolute and the others as
//	          the difference from the previous one; cost: uvarint)
//	nLeases   uvarint
//	leases    nLeases × (len(id): uvarint, id bytes, expires: varint, cost: uvarint)
//	(version 2 only)
//	nWaiters  uvarint
//	waiters   nWaiters × (len(id): uvarint, id bytes, since: varint,
//	          expires: varint, cost: uvarint)
//
// A state with no events, leases or waiters is stored as NULL. Sorted log
// instants make the differences small: a typical event takes 3–5 bytes.
// Version 1 is still written when there are no waiters, so a state without
// them reads the same in a build from before waiters.

const (
	codecVersion        = 1
	codecVersionWaiters = 2
)

// errCorrupt is wrapped by every decoding error.
var errCorrupt = errors.New("corrupt state")

// encodeExtra appends the variable part of s to dst, or returns nil when s
// has none.
func encodeExtra(dst []byte, s *algo.State) []byte {
	if len(s.Log) == 0 && len(s.Leases) == 0 && len(s.Waiters) == 0 {
		return nil
	}
	if len(s.Waiters) == 0 {
		dst = append(dst, codecVersion)
	} else {
		dst = append(dst, codecVersionWaiters)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.Log)))
	var prev int64
	for i, e := range s.Log {
		if i == 0 {
			dst = binary.AppendVarint(dst, e.At)
		} else {
			dst = binary.AppendVarint(dst, e.At-prev)
		}
		prev = e.At
		dst = binary.AppendUvarint(dst, uint64(e.Cost))
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.Leases)))
	for _, l := range s.Leases {
		dst = binary.AppendUvarint(dst, uint64(len(l.ID)))
		dst = append(dst, l.ID...)
		dst = binary.AppendVarint(dst, l.Expires)
		dst = binary.AppendUvarint(dst, uint64(l.Cost))
	}
	if len(s.Waiters) > 0 {
		dst = binary.AppendUvarint(dst, uint64(len(s.Waiters)))
		for _, w := range s.Waiters {
			dst = binary.AppendUvarint(dst, uint64(len(w.ID)))
			dst = append(dst, w.ID...)
			dst = binary.AppendVarint(dst, w.Since)
			dst = binary.AppendVarint(dst, w.Expires)
			dst = binary.AppendUvarint(dst, uint64(w.Cost))
		}
	}
	return dst
}

// decodeExtra sets s.Log, s.Leases and s.Waiters from b, which encodeExtra wrote. It
// never panics and never allocates more than b's length justifies; any
// inconsistency is an error wrapping errCorrupt.
func decodeExtra(b []byte, s *algo.State) error {
	s.Log, s.Leases, s.Waiters = nil, nil, nil
	if len(b) == 0 {
		return nil
	}
	d := decoder{b: b}
	v := d.byte()
	if v != codecVersion && v != codecVersionWaiters {
		return fmt.Errorf("%w: unknown encoding version %d", errCorrupt, v)
	}
	// Each event takes at least 2 bytes, each lease at least 3.
	n := d.count(2)
	if n > 0 {
		s.Log = make([]algo.Event, n)
	}
	var prev int64
	for i := range n {
		at := d.varint()
		if i > 0 {
			if at < 0 {
				d.fail("log events out of order")
			}
			at += prev
			if at < prev {
				d.fail("log instant overflows")
			}
		}
		prev = at
		s.Log[i] = algo.Event{At: at, Cost: d.cost()}
	}
	n = d.count(3)
	if n > 0 {
		s.Leases = make([]algo.Lease, n)
	}
	for i := range n {
		id := d.bytes()
		s.Leases[i] = algo.Lease{ID: string(id), Expires: d.varint(), Cost: d.cost()}
	}
	if v == codecVersionWaiters {
		// Each waiter takes at least 4 bytes.
		n = d.count(4)
		if n > 0 {
			s.Waiters = make([]algo.Waiter, n)
		}
		for i := range n {
			id := d.bytes()
			s.Waiters[i] = algo.Waiter{ID: string(id), Since: d.varint(), Expires: d.varint(), Cost: d.cost()}
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		s.Log, s.Leases, s.Waiters = nil, nil, nil
	}
	return d.err
}

// decoder reads varints from b; after the first error every read returns 0
// and err keeps that first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(reason string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errCorrupt, reason)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad or truncated varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad or truncated varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads an element count, each element taking at least min bytes.
func (d *decoder) count(min int) int {
	v := d.uvarint()
	if v > uint64(len(d.b)/min) {
		d.fail(fmt.Sprintf("count %d exceeds the %d bytes left", v, len(d.b)))
		return 0
	}
	return int(v)
}

func (d *decoder) cost() int64 {
	v := d.uvarint()
	if v > 1<<62 {
		d.fail(fmt.Sprintf("cost %d out of range", v))
		return 0
	}
	return int64(v)
}

func (d *decoder) bytes() []byte {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.fail(fmt.Sprintf("length %d exceeds the %d bytes left", v, len(d.b)))
		return nil
	}
	b := d.b[:v]
	d.b = d.b[v:]
	return b
}
