package redisstore

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/weir-go/weir"
)

// randomPart returns a string made to break naive key schemes: delimiters,
// braces, NUL, long UTF-8.
func randomPart(rng *rand.Rand) string {
	alphabet := []string{"a", "b", "_", ":", "{", "}", "\x00", "é", "日本", "=", "#", "1", "9", " ", "\\", "'", "\"", "]]", "--"}
	n := rng.IntN(12)
	if rng.IntN(20) == 0 {
		n = 100 + rng.IntN(300) // past the hashing threshold
	}
	var b strings.Builder
	for range n {
		b.WriteString(alphabet[rng.IntN(len(alphabet))])
	}
	return b.String()
}

// TestKeysProperty is R19: distinct (name, key, algorithm) triples map to
// distinct Redis keys, every key of one Key shares a hash slot, the slot
// comes from a hash (braces in input never choose it), and keys respect
// the maximum length.
func TestKeysProperty(t *testing.T) {
	for _, maxLen := range []int{256, 100} {
		s := &Store{opt: defaults()}
		s.opt.prefix = "app:"
		s.opt.maxKeyLen = maxLen
		rng := rand.New(rand.NewPCG(19, uint64(maxLen)))
		type id struct {
			name, key string
			a         weir.Algorithm
		}
		seen := map[string]id{}
		n := 20000
		if testing.Short() {
			n = 5000
		}
		for range n {
			x := id{randomPart(rng), randomPart(rng), weir.Algorithm(rng.IntN(5))}
			if rng.IntN(3) == 0 && len(x.name) > 0 { // shift bytes between name and key
				cut := rng.IntN(len(x.name) + 1)
				x = id{x.name[:cut], x.name[cut:] + x.key, x.a}
			}
			k := s.redisKey(x.name, x.key, x.a)
			if prev, ok := seen[k]; ok && prev != x {
				t.Fatalf("collision: %+v and %+v both map to %q", prev, x, k)
			}
			seen[k] = x
			if len(k) > maxLen {
				t.Fatalf("key %q is %d bytes, above the maximum %d", k, len(k), maxLen)
			}
			// Redis hashes the first {...} section: it must be our tag,
			// whatever braces the name or key hold.
			if got, want := redisSlot(k), slotOf(tagOf(x.key)); got != want {
				t.Fatalf("key %q is in slot %d, want %d", k, got, want)
			}
			other := s.redisKey(randomPart(rng), x.key, weir.Algorithm(rng.IntN(5)))
			if redisSlot(other) != redisSlot(k) {
				t.Fatalf("keys %q and %q of the same Key are in different slots", k, other)
			}
		}
	}
}

// TestCRC16 checks the slot hash against the Redis Cluster specification.
func TestCRC16(t *testing.T) {
	// Known value from the Redis Cluster specification: CRC16 of
	// "123456789" is 0x31C3.
	var crc uint16
	for _, c := range []byte("123456789") {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	if crc != 0x31C3 {
		t.Fatalf("crc16 = %#x", crc)
	}
}

// redisSlot computes a key's slot the way Redis does: CRC16 of the first
// non-empty {...} section, or of the whole key.
func redisSlot(k string) uint16 {
	if i := strings.IndexByte(k, '{'); i >= 0 {
		if j := strings.IndexByte(k[i+1:], '}'); j > 0 {
			k = k[i+1 : i+1+j]
		}
	}
	var crc uint16
	for _, c := range []byte(k) {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc & 16383
}
