package topk_test

import (
	"fmt"

	"github.com/weir-go/weir/server/topk"
)

// A Tracker keeps the top keys per policy over the last one to two
// periods; the decision path calls Count, a ticker calls Rotate.
func ExampleTracker() {
	tr := topk.NewTracker(64, 60_000, 0) // 64 counters, one-minute periods, from t=0 ms
	for i := range 10 {
		tr.Count("login", "login:alice", i >= 5) // alice: 10 decisions, 5 denied
	}
	tr.Count("login", "login:bob", false)
	tr.Rotate(61_000) // a new minute: the last one is still shown
	top := tr.Top(2)["login"]
	fmt.Println(top.Total, top.Denied)
	for _, c := range top.Keys {
		fmt.Println(c.Key, c.Count)
	}
	tr.Rotate(121_000) // two minutes on: gone
	fmt.Println(tr.Top(2)["login"].Total)
	// Output:
	// 11 5
	// login:alice 10
	// login:bob 1
	// 0
}
