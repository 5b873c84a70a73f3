package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/redisstore/redistest"
)

// CheckLimit refuses exactly the limits a decision refuses: one above 2^51
// fails in both, one at 2^51 passes both (checked against a real Redis).
func TestCheckLimitAgreesWithTake(t *testing.T) {
	s, err := New(redistest.Start(t).Client(), WithDeadline(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		l     weir.Limit
		field string // "" when the store holds it
	}{
		{weir.Limit{Quota: MaxUnits, Period: time.Hour}, ""},
		{weir.Limit{Quota: MaxUnits + 1, Period: time.Hour}, "quota"},
		{weir.Limit{Quota: 1<<63 - 1, Period: time.Hour}, "quota"},
		{weir.Limit{Quota: MaxUnits / 2, Burst: MaxUnits, Period: time.Second}, ""},
		{weir.Limit{Quota: MaxUnits / 2, Burst: MaxUnits + 1, Period: time.Second}, "burst"},
	} {
		err := CheckLimit(c.l)
		var fe *weir.FieldError
		if c.field == "" && err != nil || c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field) {
			t.Errorf("CheckLimit(quota %d burst %d) = %v, want field %q", c.l.Quota, c.l.Burst, err, c.field)
		}
		_, terr := s.Take(context.Background(), &weir.Request{Checks: []weir.Check{{Key: "k", Limit: c.l}}, Cost: 1})
		if terr != nil && !errors.As(terr, &fe) {
			t.Fatalf("Take: %v", terr)
		}
		if (terr == nil) != (err == nil) {
			t.Errorf("quota %d burst %d: CheckLimit says %v, Take says %v", c.l.Quota, c.l.Burst, err, terr)
		}
	}
}
