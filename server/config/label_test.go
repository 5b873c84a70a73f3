package config

import (
	"testing"
	"time"

	"github.com/weir-go/weir"
)

func TestLimitLabel(t *testing.T) {
	tests := []struct {
		l    weir.Limit
		want string
	}{
		{weir.PerSecond(100).WithBurst(200), "100/s burst=200"},
		{weir.Limit{Name: "100/s burst=200", Quota: 100, Period: time.Second, Burst: 200}, "100/s burst=200"},
		{weir.Limit{Name: "daily", Quota: 10000, Period: 24 * time.Hour, Algorithm: weir.FixedWindow}, "daily: 10000/d algo=fixed-window"},
	}
	for _, tt := range tests {
		if got := LimitLabel(tt.l); got != tt.want {
			t.Errorf("LimitLabel(%#v) = %q, want %q", tt.l, got, tt.want)
		}
	}
}
