package memstore_test

import (
	"context"
	"fmt"
	"time"

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

// Notes are small shared values with a time to live (weir.Noter): what one
// user of the store learnt, for the others; httplimit's Transport posts an
// upstream's learnt limit there.
func ExampleStore_SetNote() {
	store := memstore.New()
	ctx := context.Background()
	var n weir.Noter = store // found by type assertion on any weir.Store
	if err := n.SetNote(ctx, "api.example:limit", []byte("4 per 1s"), time.Minute); err != nil {
		panic(err)
	}
	v, err := n.Note(ctx, "api.example:limit")
	fmt.Printf("%s %v\n", v, err)
	v, err = n.Note(ctx, "never set")
	fmt.Println(v == nil, err)
	// Output:
	// 4 per 1s <nil>
	// true <nil>
}
