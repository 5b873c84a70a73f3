package memstore_test

import (
	"context"
	"fmt"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/memstore"
)

func Example() {
	store := memstore.New(memstore.WithMaxKeys(1_000_000))
	defer store.Close()
	lim, err := weir.NewLimiter(store, weir.PerMinute(2))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for range 3 {
		d, err := lim.Allow(ctx, "user:42")
		if err != nil {
			panic(err)
		}
		fmt.Println(d.Allowed, d.Remaining)
	}
	// Output:
	// true 1
	// true 0
	// false 0
}
