package redisstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/redisstore"
	"github.com/weir-go/weir/redisstore/redistest"
	"github.com/weir-go/weir/storetest"
)

func TestMain(m *testing.M) {
	if redistest.IsHelper() {
		redistest.RunHelper()
		return
	}
	redis.SetLogger(quiet{}) // connection errors are expected in the fault tests
	goleak.VerifyTestMain(m)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

var prefixes atomic.Int64

// factory returns a storetest factory over client: every store gets its
// own key prefix, so stores never share state.
func factory(client redisstore.Client, opts ...redisstore.Option) storetest.Factory {
	return func(t *testing.T, now func() time.Time) weir.Store {
		o := append([]redisstore.Option{
			redisstore.WithClock(now),
			redisstore.WithDeadline(30 * time.Second), // correctness, not latency
			redisstore.WithPrefix(fmt.Sprintf("st%d:", prefixes.Add(1))),
		}, opts...)
		s, err := redisstore.New(client, o...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
}

// patientClient is a client of srv whose socket timeouts match the
// suite's 30 s deadline: the suite checks decisions, not latency, and a
// busy machine has held a write past redistest's 2 s.
func patientClient(t *testing.T, srv *redistest.Server) *redis.Client {
	o := srv.Options()
	o.ReadTimeout, o.WriteTimeout = 30*time.Second, 30*time.Second
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	storetest.Run(t, factory(patientClient(t, srv)))
}

func TestConformanceUnbatched(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	srv := redistest.Start(t)
	storetest.Run(t, factory(patientClient(t, srv), redisstore.WithBatching(1, 8)))
}

func TestConformanceCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	// The suite mixes keys in one request: in a cluster that needs one slot.
	storetest.Run(t, factory(c.Client(t), redisstore.WithSingleSlot()))
}
