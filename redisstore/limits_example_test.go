package redisstore_test

import (
	"fmt"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/redisstore"
)

// A server checks its configured limits when it loads them, before any
// request reaches Redis.
func ExampleCheckLimit() {
	for _, l := range []weir.Limit{
		weir.PerSecond(100),
		{Quota: 1<<63 - 1, Period: 24 * time.Hour},
	} {
		fmt.Println(redisstore.CheckLimit(l))
	}
	// Output:
	// <nil>
	// weir: invalid quota: 9223372036854775807 is above the Redis store's maximum of 2^51 (2251799813685248): its script computes in exact integers below 2^53
}
