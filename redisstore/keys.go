package redisstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/weir-go/weir"
)

// Redis keys.
//
// The state of a Limit (by name) on a key lives under one Redis key:
//
//	PREFIX {TAG} KIND BODY
//
// TAG is 16 hex digits of the FNV-1a hash of the check's Key alone, so all
// the limits of one key share a cluster hash slot and one script can decide
// on them atomically, while no input can choose the slot: braces in user
// input are data after the tag. With WithSingleSlot, TAG is the hash of the
// prefix instead, the same for every key. KIND is one letter per algorithm (t, l, s,
// f, c), so a limit whose algorithm changes starts afresh instead of
// misreading old state. BODY is "=" LEN ":" NAME KEY, the length of the
// name in decimal then the name and the key, which no two distinct (name,
// key) pairs share; when that would make the Redis key longer than the
// store's maximum, BODY is "#" and the SHA-256 of "LEN:NAME KEY" in hex.

var kindLetter = [...]byte{
	weir.TokenBucket:          't',
	weir.SlidingWindowLog:     'l',
	weir.SlidingWindowCounter: 's',
	weir.FixedWindow:          'f',
	weir.Concurrency:          'c',
}

// tagLen is the length of "{" + 16 hex digits + "}".
const tagLen = 18

// hashedBodyLen is the length of a hashed body: "#" + 64 hex digits.
const hashedBodyLen = 1 + 64

// minKeyLength is the smallest maximum key length WithMaxKeyLength accepts
// beyond the prefix: enough for the tag, the kind and a hashed body.
const minKeyLength = tagLen + 1 + hashedBodyLen

// tagOf returns the 16 hex digits of the hash tag of key.
func tagOf(key string) [16]byte {
	// FNV-1a, 64-bit (hash/fnv's New64a), without its allocations.
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], h)
	var out [16]byte
	hex.Encode(out[:], sum[:])
	return out
}

// tag returns the hash tag of key's state: tagOf(key), or with
// WithSingleSlot the tag of the prefix.
func (s *Store) tag(key string) [16]byte {
	if s.opt.singleSlot {
		return s.slotTag
	}
	return tagOf(key)
}

// redisKey returns the Redis key of (name, key) under the given algorithm.
func (s *Store) redisKey(name, key string, a weir.Algorithm) string {
	tag := s.tag(key)
	var lenbuf [20]byte
	ln := strconv.AppendInt(lenbuf[:0], int64(len(name)), 10)
	size := len(s.opt.prefix) + tagLen + 1 + 1 + len(ln) + 1 + len(name) + len(key)
	hashed := size > s.opt.maxKeyLen
	if hashed {
		size = len(s.opt.prefix) + tagLen + 1 + hashedBodyLen
	}
	var b strings.Builder // one allocation: String does not copy
	b.Grow(size)
	b.WriteString(s.opt.prefix)
	b.WriteByte('{')
	b.Write(tag[:])
	b.WriteByte('}')
	b.WriteByte(kindLetter[a])
	if !hashed {
		b.WriteByte('=')
		b.Write(ln)
		b.WriteByte(':')
		b.WriteString(name)
		b.WriteString(key)
		return b.String()
	}
	h := sha256.New()
	_, _ = h.Write(ln)
	_, _ = h.Write([]byte{':'})
	_, _ = h.Write([]byte(name))
	_, _ = h.Write([]byte(key))
	var sum [32]byte
	var hx [64]byte
	hex.Encode(hx[:], h.Sum(sum[:0]))
	b.WriteByte('#')
	b.Write(hx[:])
	return b.String()
}

// slotOf returns the Redis Cluster hash slot of a key with the hash tag
// tag: CRC16 (XMODEM) of the tag, modulo 16384.
func slotOf(tag [16]byte) uint16 {
	var crc uint16
	for _, c := range tag {
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
