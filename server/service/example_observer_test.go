package service_test

import (
	"context"
	"fmt"

	"github.com/weir-go/weir/memstore"
	"github.com/weir-go/weir/server/config"
	"github.com/weir-go/weir/server/service"
)

// printer prints each store call the service makes.
type printer struct{}

func (printer) Observe(_ context.Context, o service.Observation) {
	fmt.Println(o.Op, o.Policy, o.Limit, o.Cost, o.Outcome)
}

func ExampleService_SetObserver() {
	cfg, err := config.Parse("weir.yaml", []byte(`
policies:
  login: {limits: ["2/m name=per-minute"]}
`))
	if err != nil {
		panic(err)
	}
	store := memstore.New()
	defer store.Close()
	svc, err := service.New(store, nil, cfg, nil)
	if err != nil {
		panic(err)
	}
	svc.SetObserver(printer{}) // the server sets its OpenTelemetry exporter here
	for range 3 {
		if _, err := svc.Check(context.Background(), &service.Request{Policy: "login", Key: "alice", Cost: 1}); err != nil {
			panic(err)
		}
	}
	// Output:
	// take login per-minute 1 allowed
	// take login per-minute 1 allowed
	// take login per-minute 1 limited
}
