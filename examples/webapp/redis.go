package main

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/redisstore"
)

// openRedis returns a store in the Redis at addr, after checking that it
// answers. When Redis fails later, the store reports it and the middleware
// answers 503 (the store's default failure policy). deadline is how long a
// decision may wait for Redis before that happens.
func openRedis(ctx context.Context, addr string, deadline time.Duration) (weir.Store, func(), error) {
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	store, err := redisstore.New(client, redisstore.WithDeadline(deadline))
	if err != nil {
		_ = client.Close()
		return nil, nil, err
	}
	closeAll := func() {
		_ = store.Close()
		_ = client.Close()
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := store.Ping(pctx); err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("redis at %s: %w", addr, err)
	}
	return store, closeAll, nil
}
