package memstore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/internal/algo"
	"github.com/weir-go/weir/internal/engine"
)

// ErrFull is returned by Take when a request needs a new state, the key cap
// ([WithMaxKeys]) is reached and no stored state is fresh enough to evict.
// Nothing is charged. It matches [weir.ErrUnavailable], so a Limiter's
// failure policy treats it as a store failure.
var ErrFull = fmt.Errorf("memstore: key cap reached and no idle state to evict: %w", weir.ErrUnavailable)

var errCollision = fmt.Errorf("memstore: two checks of one request hash alike: %w", weir.ErrUnavailable)

// Store is the in-memory [weir.Store]: limiter state for one process, kept
// in a sharded hash table. The zero-configuration New() is ready to use;
// options add a clock, a key cap and an eviction goroutine.
//
// State identity is the pair (Limit.Name, Key), hashed to 128 bits (two
// 64-bit hashes with independent per-store random seeds, hash/maphash).
// A decision locks the shard of each check (several shards are locked in
// ascending order, so a multi-limit request is atomic and deadlock-free),
// runs internal/algo and writes the state back. Deciding on an existing
// key allocates nothing.
//
// A state is fresh when it admits exactly what a new key would (a full
// bucket, an empty window, no live lease): only fresh states are ever
// evicted, so eviction never admits a request more. Fresh states are
// removed when a request finds them, a little at every insertion (two more
// entries of the shard are examined), by the [WithSweep] goroutine, and
// shard by shard when the [WithMaxKeys] cap is reached.
//
// The default clock reads the monotonic clock, anchored at the wall time
// of New: wall-clock steps do not move limiter time ([WithClock] replaces
// it). Take never blocks on anything but its shard locks and ignores its
// context. A Store is safe for concurrent use; Close stops the sweep
// goroutine (the store keeps working afterwards).
type Store struct {
	now       func() time.Time
	seedName  maphash.Seed // the seeds of id.lo
	seedKey   maphash.Seed
	seedName2 maphash.Seed // the seeds of id.hi
	seedKey2  maphash.Seed
	// lowHash, when set (by tests only: export_test.go), replaces id.lo.
	lowHash   func(name, key string) uint64
	shards    []shard
	shift     uint // 64 - log2(len(shards))
	maxKeys   int64
	keys      atomic.Int64  // states stored (plus reservations in flight)
	cursor    atomic.Uint32 // where makeRoom starts sweeping
	evicted   atomic.Uint64
	refused   atomic.Uint64
	notes     noteBook // notes.go
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	ov        overrides
}

var (
	_ weir.Store                 = (*Store)(nil)
	_ weir.OverrideStore         = (*Store)(nil)
	_ interface{ Close() error } = (*Store)(nil)
)

// shard is one lock and the tables it guards, padded to two cache lines
// so neighbouring shards never share one.
type shard struct {
	shardState
	_ [128 - unsafe.Sizeof(shardState{})%128]byte
}

type shardState struct {
	mu  sync.Mutex
	tb  tbTable          // token buckets
	win map[id]winEntry  // fixed windows and sliding counters
	ptr map[id]*ptrEntry // sliding logs and concurrency leases
	// next is a lower bound on the instant (ns) the first state of the
	// shard becomes fresh: a sweep before then would find nothing.
	next int64
}

// tbEntry is a token bucket's whole state: algo.State A and B (the TAT).
type tbEntry struct{ a, b int64 }

// winEntry is a window state and the instant it becomes fresh.
type winEntry struct{ a, b, c, exp int64 }

// ptrEntry holds a state with variable-size parts (log events, leases).
type ptrEntry struct {
	st  algo.State
	exp int64
}

func (e tbEntry) expires() int64 {
	if e.b > 0 {
		return e.a + 1
	}
	return e.a
}

// class says which table holds an algorithm's states.
type class uint8

const (
	classTB class = iota
	classWin
	classPtr
)

func classOf(a weir.Algorithm) class {
	switch a {
	case weir.TokenBucket:
		return classTB
	case weir.FixedWindow, weir.SlidingWindowCounter:
		return classWin
	}
	return classPtr
}

// New returns an empty store. With no options it reads the monotonic
// clock, keeps any number of keys and starts no goroutine.
func New(opts ...Option) *Store {
	c := defaults()
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	n := 64
	for n < 4*runtime.GOMAXPROCS(0) {
		n *= 2
	}
	s := &Store{
		now:       c.now,
		seedName:  maphash.MakeSeed(),
		seedKey:   maphash.MakeSeed(),
		seedName2: maphash.MakeSeed(),
		seedKey2:  maphash.MakeSeed(),
		shards:    make([]shard, n),
		shift:     uint(64 - bits.TrailingZeros(uint(n))),
		maxKeys:   c.maxKeys,
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.next = math.MaxInt64
		sh.tb.init()
		sh.win = map[id]winEntry{}
		sh.ptr = map[id]*ptrEntry{}
	}
	if c.sweep > 0 {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.sweeper(c.sweep)
	}
	return s
}

// Close stops the sweep goroutine, if any, and waits for it. It always
// returns nil; the store remains usable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
	})
	return nil
}

// Stats are counters of a store's key table.
type Stats struct {
	Keys    int64  // states stored now
	Evicted uint64 // fresh states removed by sweeps (not counting Reset)
	Refused uint64 // requests that failed with ErrFull
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{Keys: s.keys.Load(), Evicted: s.evicted.Load(), Refused: s.refused.Load()}
}

// id is the 128-bit identity of a state: two 64-bit hashes of (name,
// key) under independent seeds. lo chooses the shard (top bits) and the
// token-bucket slot (low bits); lo == 0 marks an empty slot of tbTable.
type id struct{ lo, hi uint64 }

// hash is the identity of (name, key). Each string is hashed with its own
// seeds, so no concatenation of them can collide by construction; two
// distinct pairs share an identity with probability 2⁻¹²⁸.
func (s *Store) hash(c *weir.Check) id {
	name := engine.Name(c.Limit)
	h := id{
		lo: maphash.String(s.seedName, name) ^ bits.RotateLeft64(maphash.String(s.seedKey, c.Key), 17),
		hi: maphash.String(s.seedName2, name) ^ bits.RotateLeft64(maphash.String(s.seedKey2, c.Key), 17),
	}
	if s.lowHash != nil {
		h.lo = s.lowHash(name, c.Key)
	}
	if h.lo == 0 {
		h.lo = 1 // 0 marks an empty slot of tbTable
	}
	return h
}

// loc is where one check's state lives.
type loc struct {
	h     id
	shard uint32
	cls   class
	found bool
}

// scratch is the per-request working memory, one element per check. The
// slices are passed to helpers one by one, never inside a struct, so that
// escape analysis can keep small requests' arrays on the stack.
type scratch struct {
	ps    []algo.Params
	out   []algo.Result
	st    []algo.State  // token-bucket and window states, by value
	sp    []*algo.State // the state each check works on
	pes   []*ptrEntry   // pointer states
	locs  []loc
	locks []uint32 // shards to lock, ascending
}

const small = 4

func newScratch(n int) scratch {
	sc := scratch{make([]algo.Params, n), make([]algo.Result, n), make([]algo.State, n),
		make([]*algo.State, n), make([]*ptrEntry, n), make([]loc, n), make([]uint32, 0, n)}
	for i := range sc.st {
		sc.sp[i] = &sc.st[i]
	}
	return sc
}

// Take implements [weir.Store]. It decides at one reading of the store's
// clock, atomically over every check of req.
func (s *Store) Take(_ context.Context, req *weir.Request) (weir.Decision, error) {
	if err := engine.Validate(req); err != nil {
		return weir.Decision{}, err
	}
	now := s.now()
	n := len(req.Checks)
	if n == 1 {
		// The common case, with the least scratch to clear.
		var (
			ps    [1]algo.Params
			out   [1]algo.Result
			st    [1]algo.State
			pes   [1]*ptrEntry
			locs  [1]loc
			locks [1]uint32
		)
		sp := [1]*algo.State{&st[0]}
		return s.take(req, now, ps[:], out[:], sp[:], st[:], pes[:], locs[:], locks[:0])
	}
	if n > small {
		sc := newScratch(n)
		return s.take(req, now, sc.ps, sc.out, sc.sp, sc.st, sc.pes, sc.locs, sc.locks)
	}
	// Scratch space on the stack: the pointers into st are set here, in
	// the frame that owns the arrays.
	var (
		ps    [small]algo.Params
		out   [small]algo.Result
		st    [small]algo.State
		sp    [small]*algo.State
		pes   [small]*ptrEntry
		locs  [small]loc
		locks [small]uint32
	)
	for i := range st {
		sp[i] = &st[i]
	}
	return s.take(req, now, ps[:n], out[:n], sp[:n], st[:n], pes[:n], locs[:n], locks[:0])
}

func (s *Store) take(req *weir.Request, now time.Time, ps []algo.Params, out []algo.Result,
	sp []*algo.State, st []algo.State, pes []*ptrEntry, locs []loc, locks []uint32) (weir.Decision, error) {
	locks, err := s.locate(req, locs, locks)
	if err != nil {
		return weir.Decision{}, err
	}
	t := now.UnixNano()
	for attempt := 0; ; attempt++ {
		s.lock(locks)
		missing := s.load(locs, st, sp, pes)
		var reserved int64
		if missing > 0 && req.Cost > 0 && s.maxKeys > 0 {
			if s.keys.Add(missing) > s.maxKeys {
				s.keys.Add(-missing)
				s.unlock(locks)
				if attempt == 0 && s.makeRoom(t, missing) {
					continue
				}
				s.refused.Add(1)
				return weir.Decision{}, ErrFull
			}
			reserved = missing
		}
		d, changed := engine.Decide(req, ps, sp, out, now)
		inserted := false
		for i := range locs {
			if changed || locs[i].found {
				inserted = s.save(&locs[i], &ps[i], sp[i], pes[i], t, changed, &reserved) || inserted
			}
		}
		if reserved > 0 {
			s.keys.Add(-reserved)
		}
		if inserted {
			// Pay for each insertion by examining a few random entries.
			for i := range locs {
				if !locs[i].found {
					s.lazySweep(&s.shards[locs[i].shard], locs[i].cls, t)
				}
			}
		}
		s.unlock(locks)
		return d, nil
	}
}

// locate hashes every check into locs and returns the sorted, deduplicated
// set of shards to lock, in locks's array (of capacity len(req.Checks)).
func (s *Store) locate(req *weir.Request, locs []loc, locks []uint32) ([]uint32, error) {
	for i := range req.Checks {
		c := &req.Checks[i]
		h := s.hash(c)
		l := loc{h: h, shard: uint32(h.lo >> s.shift), cls: classOf(c.Limit.Algorithm)}
		for j := range i {
			if locs[j].h == h && locs[j].cls == l.cls {
				o := &req.Checks[j]
				if o.Key == c.Key && engine.Name(o.Limit) == engine.Name(c.Limit) {
					return nil, &weir.FieldError{Field: fmt.Sprintf("checks[%d]", i),
						Reason: fmt.Sprintf("same Limit.Name %q and Key as checks[%d]: one state cannot be checked twice", engine.Name(c.Limit), j)}
				}
				return nil, errCollision
			}
		}
		locs[i] = l
		k := len(locks)
		for k > 0 && locks[k-1] > l.shard {
			k--
		}
		if k > 0 && locks[k-1] == l.shard {
			continue
		}
		locks = locks[:len(locks)+1]
		copy(locks[k+1:], locks[k:])
		locks[k] = l.shard
	}
	return locks, nil
}

func (s *Store) lock(set []uint32) {
	for _, i := range set {
		s.shards[i].mu.Lock()
	}
}

func (s *Store) unlock(set []uint32) {
	for _, i := range set {
		s.shards[i].mu.Unlock()
	}
}

// load copies each check's state into st (token buckets and windows), or
// points sp at it (pointer states; a new entry when missing), and returns
// how many states are not stored yet. The shards are locked.
func (s *Store) load(locs []loc, st []algo.State, sp []*algo.State, pes []*ptrEntry) (missing int64) {
	for i := range locs {
		l := &locs[i]
		sh := &s.shards[l.shard]
		switch l.cls {
		case classTB:
			// find, not get: find is small enough to be inlined here.
			j, ok := sh.tb.find(l.h)
			if ok {
				e := &sh.tb.slots[j]
				st[i] = algo.State{A: e.a, B: e.b}
			} else {
				st[i] = algo.State{}
			}
			l.found = ok
		case classWin:
			e, ok := sh.win[l.h]
			st[i] = algo.State{A: e.a, B: e.b, C: e.c}
			l.found = ok
		case classPtr:
			pe := sh.ptr[l.h]
			l.found = pe != nil
			if pe == nil {
				pe = new(ptrEntry)
			}
			pes[i] = pe
			sp[i] = &pe.st
		}
		if !l.found {
			missing++
		}
	}
	return missing
}

// save writes one state back at t: a fresh state is deleted, a changed one
// stored. reserved counts key slots taken in advance for new states. It
// reports whether it inserted a new state. The shard is locked.
func (s *Store) save(l *loc, p *algo.Params, st *algo.State, pe *ptrEntry, t int64, changed bool, reserved *int64) bool {
	sh := &s.shards[l.shard]
	if l.cls == classPtr {
		algo.Prune(p, st, t)
	}
	exp := algo.ExpiresAt(p, st)
	if exp <= t {
		if l.found {
			s.remove(sh, l)
		}
		return false
	}
	if !changed {
		return false
	}
	switch l.cls {
	case classTB:
		sh.tb.put(l.h, tbEntry{st.A, st.B})
	case classWin:
		sh.win[l.h] = winEntry{st.A, st.B, st.C, exp}
	case classPtr:
		pe.exp = exp
		if !l.found {
			sh.ptr[l.h] = pe
		}
	}
	if l.found {
		return false
	}
	if *reserved > 0 {
		*reserved--
	} else {
		s.keys.Add(1)
	}
	sh.next = min(sh.next, exp)
	return true
}

func (s *Store) remove(sh *shard, l *loc) {
	switch l.cls {
	case classTB:
		sh.tb.del(l.h)
	case classWin:
		delete(sh.win, l.h)
	case classPtr:
		delete(sh.ptr, l.h)
	}
	s.keys.Add(-1)
}

// Refund implements [weir.Store]: it gives back req.Cost units charged at
// req.At (the decision's Time plus its Delay) to every check, never above
// a limit's quota, and releases req.Lease from Concurrency checks.
func (s *Store) Refund(_ context.Context, req *weir.Request) error {
	if req == nil || len(req.Checks) == 0 {
		return &weir.FieldError{Field: "checks", Reason: "at least one Check is needed"}
	}
	if req.Cost < 0 {
		return &weir.FieldError{Field: "cost", Reason: fmt.Sprintf("must not be negative (got %d)", req.Cost)}
	}
	for i := range req.Checks {
		if err := req.Checks[i].Limit.Validate(); err != nil {
			var fe *weir.FieldError
			if errors.As(err, &fe) {
				return &weir.FieldError{Field: fmt.Sprintf("checks[%d].%s", i, fe.Field), Reason: fe.Reason}
			}
			return err
		}
	}
	// Settlements (Request.Force) make refunds common: scratch on the
	// stack for a few checks, as Take does.
	n := len(req.Checks)
	var (
		ps   [small]algo.Params
		out  [small]algo.Result
		st   [small]algo.State
		sp   [small]*algo.State
		pes  [small]*ptrEntry
		locs [small]loc
		lk   [small]uint32
	)
	var sc scratch
	if n <= small {
		for i := range st {
			sp[i] = &st[i]
		}
		sc = scratch{ps[:n], out[:n], st[:n], sp[:n], pes[:n], locs[:n], lk[:0]}
	} else {
		sc = newScratch(n)
	}
	locks, err := s.locate(req, sc.locs, sc.locks)
	if err != nil {
		return err
	}
	now := s.now()
	t := now.UnixNano()
	s.lock(locks)
	s.load(sc.locs, sc.st, sc.sp, sc.pes)
	engine.Refund(req, sc.sp, now)
	for i := range sc.locs {
		if sc.locs[i].found {
			// Store the state back; a refund may make it fresh sooner.
			p := engine.Params(req.Checks[i].Limit)
			s.saveRefunded(&sc.locs[i], &p, sc.sp[i], sc.pes[i], t)
		}
	}
	s.unlock(locks)
	return nil
}

func (s *Store) saveRefunded(l *loc, p *algo.Params, st *algo.State, pe *ptrEntry, t int64) {
	sh := &s.shards[l.shard]
	if l.cls == classPtr {
		algo.Prune(p, st, t)
	}
	exp := algo.ExpiresAt(p, st)
	if exp <= t {
		s.remove(sh, l)
		return
	}
	switch l.cls {
	case classTB:
		sh.tb.put(l.h, tbEntry{st.A, st.B})
	case classWin:
		sh.win[l.h] = winEntry{st.A, st.B, st.C, exp}
	case classPtr:
		pe.exp = exp
	}
	sh.next = min(sh.next, exp)
}

// Reset implements [weir.Store]: it forgets each check's state.
func (s *Store) Reset(_ context.Context, checks []weir.Check) error {
	for i := range checks {
		h := s.hash(&checks[i])
		sh := &s.shards[h.lo>>s.shift]
		sh.mu.Lock()
		n := sh.tb.n + len(sh.win) + len(sh.ptr)
		sh.tb.del(h)
		delete(sh.win, h)
		delete(sh.ptr, h)
		n -= sh.tb.n + len(sh.win) + len(sh.ptr)
		sh.mu.Unlock()
		s.keys.Add(-int64(n))
	}
	return nil
}

// lazySweep examines up to two entries of one table of sh (the next ones
// for token buckets, random ones for the other tables) and removes them if
// fresh at t. sh is locked.
func (s *Store) lazySweep(sh *shard, cls class, t int64) {
	gone := 0
	switch cls {
	case classTB:
		gone = sh.tb.lazySweep(t)
	case classWin:
		gone = lazySweepMap(sh.win, t)
	case classPtr:
		gone = lazySweepMap(sh.ptr, t)
	}
	if gone > 0 {
		s.keys.Add(-int64(gone))
		s.evicted.Add(uint64(gone))
	}
}

// sweepShard removes every fresh state of sh at t, if there can be any.
func (s *Store) sweepShard(sh *shard, t int64) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if t < sh.next {
		return
	}
	gone, next := sh.tb.sweep(t)
	sh.tb.shrink()
	winGone := sweepMap(sh.win, t, &next)
	ptrGone := sweepMap(sh.ptr, t, &next)
	// Go maps never give memory back: copy one that lost most of its
	// entries, so memory follows the live keys down.
	if winGone >= 1024 && len(sh.win)*4 < winGone {
		sh.win = copyMap(sh.win)
	}
	if ptrGone >= 1024 && len(sh.ptr)*4 < ptrGone {
		sh.ptr = copyMap(sh.ptr)
	}
	gone += winGone + ptrGone
	sh.next = next
	if gone > 0 {
		s.keys.Add(-int64(gone))
		s.evicted.Add(uint64(gone))
	}
}

// expirer is a stored map entry: it knows the instant it becomes fresh.
type expirer interface{ expiry() int64 }

func (e winEntry) expiry() int64  { return e.exp }
func (e *ptrEntry) expiry() int64 { return e.exp }

// lazySweepMap examines up to two entries of m (random ones: map order)
// and removes those fresh at t. It returns how many it removed.
func lazySweepMap[V expirer](m map[id]V, t int64) (gone int) {
	n := 0
	for k, e := range m {
		if n++; n > 2 {
			break
		}
		if e.expiry() <= t {
			delete(m, k)
			gone++
		}
	}
	return gone
}

// sweepMap removes every entry of m fresh at t, lowers *next to the
// earliest instant a remaining one becomes fresh, and returns how many it
// removed.
func sweepMap[V expirer](m map[id]V, t int64, next *int64) (gone int) {
	for k, e := range m {
		if x := e.expiry(); x <= t {
			delete(m, k)
			gone++
		} else {
			*next = min(*next, x)
		}
	}
	return gone
}

// makeRoom sweeps shards, one at a time and only those that may hold a
// fresh state, until need more states fit under the cap. It reports
// whether they do.
func (s *Store) makeRoom(t, need int64) bool {
	start := s.cursor.Add(1)
	for i := range uint32(len(s.shards)) {
		s.sweepShard(&s.shards[(start+i)%uint32(len(s.shards))], t)
		if s.keys.Load()+need <= s.maxKeys {
			return true
		}
	}
	return false
}

func (s *Store) sweeper(every time.Duration) {
	defer close(s.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			t := s.now().UnixNano()
			for i := range s.shards {
				s.sweepShard(&s.shards[i], t)
			}
		}
	}
}

// copyMap returns a copy of m sized for its entries (maps.Clone keeps the
// original's size).
func copyMap[V any](m map[id]V) map[id]V {
	c := make(map[id]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
