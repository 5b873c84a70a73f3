package peers

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed beat.lua
var beatSource string

var beatScript = redis.NewScript(beatSource)

// Client is what a Counter needs of a go-redis client (*redis.Client,
// *redis.ClusterClient and redis.UniversalClient have it).
type Client interface {
	redis.Scripter
	ZRem(ctx context.Context, key string, members ...any) *redis.IntCmd
}

// A Counter beats for one instance and counts the live ones.
type Counter struct {
	client Client
	key    string
	id     string
	ttl    time.Duration
}

// New returns a counter for a new instance (a random id) in the set at key.
// ttl is how long a beat keeps the instance counted: a few beat intervals.
func New(client Client, key string, ttl time.Duration) (*Counter, error) {
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("peers: ttl %v is under 1ms", ttl)
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	return &Counter{client: client, key: key, id: hex.EncodeToString(b[:]), ttl: ttl}, nil
}

// ID returns the instance's id in the set.
func (c *Counter) ID() string { return c.id }

// Beat records the instance as alive for ttl and returns the number of
// live instances, itself included.
func (c *Counter) Beat(ctx context.Context) (int64, error) {
	v, err := beatScript.Run(ctx, c.client, []string{c.key}, c.id, c.ttl.Milliseconds()).Result()
	if err != nil {
		return 0, err
	}
	n, ok := v.(int64)
	if !ok || n < 1 {
		return 0, fmt.Errorf("peers: unexpected reply %#v to a beat", v)
	}
	return n, nil
}

// Leave removes the instance from the set, so its peers stop counting it
// at their next beat instead of after ttl.
func (c *Counter) Leave(ctx context.Context) error {
	return c.client.ZRem(ctx, c.key, c.id).Err()
}

// Run beats every interval until ctx ends, calling set with each count,
// then leaves. A failed beat keeps the last count (set is not called).
func (c *Counter) Run(ctx context.Context, every time.Duration, set func(int64)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		bctx, cancel := context.WithTimeout(ctx, every)
		if n, err := c.Beat(bctx); err == nil {
			set(n)
		}
		cancel()
		select {
		case <-ctx.Done():
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = c.Leave(lctx)
			cancel()
			return
		case <-t.C:
		}
	}
}
