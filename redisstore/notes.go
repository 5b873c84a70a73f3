package redisstore

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/internal/engine"
)

// Notes (weir.Noter) live one per Redis key:
//
//	PREFIX {TAG} n# SHA256(NAME)
//
// TAG is the name's hash tag (or the store's single tag), and the value
// is "EXPIRES:VALUE" with EXPIRES in µs of the store's clock; the key
// also carries a Redis expiry, so Redis drops it by itself. Each call is
// one run of scripts/notes/note.lua, at the Redis server's clock (or the
// WithClock test clock), so every process on the Redis agrees on when a
// note ends.

//go:embed scripts/notes/note.lua
var noteScript string

var _ weir.Noter = (*Store)(nil)

func (s *Store) noteKey(name string) string {
	tag := s.tag(name)
	sum := sha256.Sum256([]byte(name))
	return s.opt.prefix + "{" + string(tag[:]) + "}n#" + hex.EncodeToString(sum[:])
}

// SetNote keeps value under name for ttl, shared by every process on the
// Redis ([weir.Noter]).
func (s *Store) SetNote(ctx context.Context, name string, value []byte, ttl time.Duration) error {
	if err := engine.ValidateNote(name, value, ttl); err != nil {
		return err
	}
	res, err := s.runNote(ctx, name, "set", engine.NoteTTL(ttl), string(value))
	if err != nil {
		return err
	}
	if n, ok := res.(int64); !ok || n != 1 {
		return unavailable(fmt.Errorf("note set: unexpected reply %v", res))
	}
	return nil
}

// Note returns the value under name, or nil if there is none or it has
// expired ([weir.Noter]).
func (s *Store) Note(ctx context.Context, name string) ([]byte, error) {
	if err := engine.ValidateNote(name, nil, -1); err != nil {
		return nil, err
	}
	res, err := s.runNote(ctx, name, "get")
	if err != nil || res == nil {
		return nil, err
	}
	v, ok := res.(string)
	if !ok {
		return nil, unavailable(fmt.Errorf("note get: unexpected reply %T", res))
	}
	return []byte(v), nil
}

// runNote runs the note script; a nil reply (no note) is nil, nil.
func (s *Store) runNote(ctx context.Context, name, op string, args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, max(s.opt.deadline, time.Second))
	defer cancel()
	clock := ""
	if s.opt.clock != nil {
		clock = strconv.FormatInt(s.opt.clock().UnixMicro(), 10)
	}
	res, err := s.c.Eval(ctx, noteScript, []string{s.noteKey(name)}, append([]any{clock, op}, args...)...).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return res, nil
}
