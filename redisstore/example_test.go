package redisstore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/redisstore"
)

// A limit shared by every process that uses the same Redis.
func ExampleNew() {
	client := redis.NewClient(&redis.Options{
		Addr:       "localhost:6379",
		MaxRetries: -1, // a retried decision could be charged twice
	})
	defer client.Close()
	store, err := redisstore.New(client,
		redisstore.WithDeadline(50*time.Millisecond),
		redisstore.WithFallback(memstore.New(), 10), // 10 processes share the limit
	)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	lim, err := weir.NewLimiter(store, weir.PerSecond(100).WithBurst(200))
	if err != nil {
		log.Fatal(err)
	}
	d, err := lim.Allow(context.Background(), "user:42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Allowed, d.Source)
}

// A distributed semaphore: at most 5 requests at once to a fragile API,
// across every process; a holder that dies gives its slot back after the
// lease TTL.
func ExampleNew_semaphore() {
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379", MaxRetries: -1})
	defer client.Close()
	store, err := redisstore.New(client)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	sem, err := weir.NewLimiter(store, weir.Concurrent(5, 30*time.Second).WithName("partner-api"))
	if err != nil {
		log.Fatal(err)
	}
	err = sem.Do(context.Background(), "partner", func(ctx context.Context) error {
		return nil // call the API
	})
	if err != nil {
		log.Fatal(err)
	}
}
