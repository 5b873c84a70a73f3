package peers_test

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/weir-go/weir/server/peers"
)

// Each instance beats every second; its fallback divides limits by the
// last count (weir serve does this for on_store_error: fallback).
func ExampleCounter() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	c, err := peers.New(client, "weir:peers", 3*time.Second)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.Run(ctx, time.Second, func(n int64) {
		fmt.Println("instances sharing the store:", n)
	})
}
