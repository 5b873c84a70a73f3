package localquota_test

import (
	"context"
	"fmt"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/localquota"
	"github.com/weir-go/weir/memstore"
)

// A local quota in front of a shared store: here the memory store stands
// in for redisstore.New(client), which every process of a fleet would
// share. Decisions come from the units this process holds; the shared
// store sees one Take per block.
func ExampleNew() {
	shared := memstore.New() // redisstore.New(client) in a fleet
	defer shared.Close()
	store, err := localquota.New(shared) // L = 100 ms: localquota.WithHold
	if err != nil {
		panic(err)
	}
	defer store.Close() // gives back what it holds
	lim, err := weir.NewLimiter(store, weir.Per(1000, time.Hour))
	if err != nil {
		panic(err)
	}
	admitted := 0
	for range 1500 {
		if d, err := lim.Allow(context.Background(), "user:42"); err == nil && d.Allowed {
			admitted++
		}
	}
	fmt.Println("admitted", admitted, "of 1500 in an hour")
	// Output: admitted 1000 of 1500 in an hour
}
