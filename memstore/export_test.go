package memstore

// SetLowHash makes s take the low 64 bits of every state's identity from
// f(name, key) instead of its seeded hash; the high 64 bits stay seeded.
// Tests use it to make distinct (name, key) pairs agree on the low 64
// bits, which choose the shard and the home slot. Call it before s is
// first used.
func SetLowHash(s *Store, f func(name, key string) uint64) { s.lowHash = f }
