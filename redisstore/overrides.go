package redisstore

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weir-go/weir"
)

// Overrides (weir.OverrideStore) live under three Redis keys that share
// one hash slot:
//
//	PREFIX {weir-overrides} :o   hash: SCOPE "\0" KEY -> the override as JSON
//	PREFIX {weir-overrides} :e   sorted set: the same fields -> expiry (µs)
//	PREFIX {weir-overrides} :v   the version: INCR by every change
//
// (with WithSingleSlot the tag is the store's single tag). Every process
// on the Redis sees the same overrides; a weir.PlanTable polls the version
// and reloads the hash when it changes. Each operation is one script, run
// at the Redis server's clock (or the WithClock test clock), and expired
// overrides are ignored on read and deleted by the next SetOverride.

//go:embed scripts/overrides/*.lua
var overrideFS embed.FS

// overrideScripts holds each operation's script, clock.lua prepended.
var overrideScripts = sync.OnceValue(func() map[string]string {
	head, err := overrideFS.ReadFile("scripts/overrides/clock.lua")
	if err != nil {
		panic("redisstore: " + err.Error())
	}
	m := map[string]string{}
	for _, op := range []string{"set", "get", "list", "delete", "version"} {
		body, err := overrideFS.ReadFile("scripts/overrides/" + op + ".lua")
		if err != nil {
			panic("redisstore: " + err.Error())
		}
		m[op] = string(head) + "\n" + string(body)
	}
	return m
})

var _ weir.OverrideStore = (*Store)(nil)

func (s *Store) overrideKeys() []string {
	tag := "weir-overrides"
	if s.opt.singleSlot {
		tag = string(s.slotTag[:])
	}
	base := s.opt.prefix + "{" + tag + "}"
	return []string{base + ":o", base + ":e", base + ":v"}
}

func field(scope, key string) string { return scope + "\x00" + key }

// runOverride runs the override script op; the reply's first element is
// the script's clock (µs), returned as a time, the rest as they came. The
// reads a weir.PlanTable makes on a decision's path (version, list) get
// the store's deadline, as decisions do, so a stalled Redis delays a
// decision no longer than it would anyway; the admin writes get at least
// a second.
func (s *Store) runOverride(ctx context.Context, op string, args ...any) (time.Time, []any, error) {
	d := s.opt.deadline
	if op == "set" || op == "delete" || op == "get" {
		d = max(d, time.Second)
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	clock := ""
	if s.opt.clock != nil {
		clock = strconv.FormatInt(s.opt.clock().UnixMicro(), 10)
	}
	res, err := s.c.Eval(ctx, overrideScripts()[op], s.overrideKeys(), append([]any{clock}, args...)...).Result()
	if err != nil {
		return time.Time{}, nil, unavailable(err)
	}
	reply, ok := res.([]any)
	if !ok || len(reply) < 1 {
		return time.Time{}, nil, unavailable(fmt.Errorf("override %s: unexpected reply %T", op, res))
	}
	us, ok := reply[0].(int64)
	if !ok {
		return time.Time{}, nil, unavailable(fmt.Errorf("override %s: unexpected clock %T", op, reply[0]))
	}
	return time.UnixMicro(us), reply[1:], nil
}

// decodeBody decodes one stored override; v is a reply element.
func decodeBody(v any) (weir.Override, bool, error) {
	if v == nil {
		return weir.Override{}, false, nil
	}
	body, ok := v.(string)
	if !ok {
		return weir.Override{}, false, unavailable(fmt.Errorf("override: unexpected body %T", v))
	}
	var o weir.Override
	if err := json.Unmarshal([]byte(body), &o); err != nil {
		return o, false, unavailable(fmt.Errorf("override: stored body: %w", err))
	}
	return o, true, nil
}

// SetOverride stores o in Redis, shared by every process on it (see
// [weir.OverrideStore]). Expired overrides are deleted first, so they
// never count against [weir.MaxOverrides].
func (s *Store) SetOverride(ctx context.Context, o weir.Override) error {
	if err := o.Validate(); err != nil {
		return err
	}
	for i, l := range o.Limits {
		if err := CheckLimit(l); err != nil {
			if fe, ok := errors.AsType[*weir.FieldError](err); ok {
				return &weir.FieldError{Field: fmt.Sprintf("Override.Limits[%d].%s", i, strings.TrimPrefix(fe.Field, "Limit.")), Reason: fe.Reason}
			}
			return err
		}
	}
	o.Updated = time.Time{} // the script stamps it with its clock
	body, err := json.Marshal(o)
	if err != nil {
		return err
	}
	exp := "0"
	if !o.Expires.IsZero() {
		exp = strconv.FormatInt(max(o.Expires.UnixMicro(), 1), 10)
	}
	_, reply, err := s.runOverride(ctx, "set", field(o.Scope, o.Key), string(body), exp, weir.MaxOverrides)
	if err != nil {
		return err
	}
	if len(reply) != 1 {
		return unavailable(fmt.Errorf("override set: unexpected reply %v", reply))
	}
	if ok, _ := reply[0].(int64); ok != 1 {
		return &weir.FieldError{Field: "overrides", Reason: fmt.Sprintf("the store holds %d overrides, the most it keeps", weir.MaxOverrides), Err: weir.ErrTooManyOverrides}
	}
	return nil
}

// GetOverride returns the live override of (scope, key).
func (s *Store) GetOverride(ctx context.Context, scope, key string) (weir.Override, error) {
	now, reply, err := s.runOverride(ctx, "get", field(scope, key))
	if err != nil {
		return weir.Override{}, err
	}
	if len(reply) != 1 {
		return weir.Override{}, weir.ErrNoOverride // a nil body ends the reply
	}
	o, ok, err := decodeBody(reply[0])
	if err != nil {
		return o, err
	}
	if !ok || o.Expired(now) {
		return weir.Override{}, weir.ErrNoOverride
	}
	return o, nil
}

// ListOverrides returns the live overrides of scope ("" for all), ordered
// by scope and key.
func (s *Store) ListOverrides(ctx context.Context, scope string) ([]weir.Override, error) {
	now, reply, err := s.runOverride(ctx, "list")
	if err != nil {
		return nil, err
	}
	out := []weir.Override{}
	for _, v := range reply {
		o, ok, err := decodeBody(v)
		if err != nil {
			return nil, err
		}
		if ok && (scope == "" || o.Scope == scope) && !o.Expired(now) {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Scope != out[j].Scope {
			return out[i].Scope < out[j].Scope
		}
		return strings.Compare(out[i].Key, out[j].Key) < 0
	})
	return out, nil
}

// DeleteOverride removes the override of (scope, key).
func (s *Store) DeleteOverride(ctx context.Context, scope, key string) error {
	now, reply, err := s.runOverride(ctx, "delete", field(scope, key))
	if err != nil {
		return err
	}
	if len(reply) != 1 {
		return weir.ErrNoOverride
	}
	o, ok, err := decodeBody(reply[0])
	if err != nil {
		return err
	}
	if !ok || o.Expired(now) {
		return weir.ErrNoOverride
	}
	return nil
}

// OverrideVersion returns a counter bumped by every SetOverride and
// DeleteOverride of any process on the Redis.
func (s *Store) OverrideVersion(ctx context.Context) (int64, error) {
	_, reply, err := s.runOverride(ctx, "version")
	if err != nil {
		return 0, err
	}
	if len(reply) != 1 || reply[0] == nil {
		return 0, nil
	}
	v, ok := reply[0].(string)
	if !ok {
		return 0, unavailable(fmt.Errorf("override version: unexpected reply %T", reply[0]))
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, unavailable(errors.New("override version: not a number"))
	}
	return n, nil
}
