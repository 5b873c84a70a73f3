package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/redisstore"
	"github.com/weir-go/weir/redisstore/redistest"
)

// An override whose limits the store cannot hold (a quota above 2^51) is
// refused when it is set, naming the field, rather than at every decision.
func TestOverrideLimitsTheStoreCannotHold(t *testing.T) {
	srv := redistest.Start(t)
	s := factory(patientClient(t, srv))(t, time.Now).(*redisstore.Store)
	err := s.SetOverride(context.Background(), weir.Override{Scope: "api", Key: "k", Limits: []weir.Limit{weir.PerSecond(1), weir.PerDay(redisstore.MaxUnits + 1)}})
	var fe *weir.FieldError
	if !errors.As(err, &fe) || fe.Field != "Override.Limits[1].quota" {
		t.Fatalf("SetOverride = %v, want a field error naming Override.Limits[1].quota", err)
	}
	if list, err := s.ListOverrides(context.Background(), ""); err != nil || len(list) != 0 {
		t.Fatalf("stored anyway: %v, %v", list, err)
	}
}
