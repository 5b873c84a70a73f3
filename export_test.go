package weir

import (
	"time"

	"github.com/weir-go/weir/internal/algo"
)

// ParamsOf exposes Limit.params to the external tests.
func ParamsOf(l Limit) algo.Params { return l.params() }

// SetPlanClock sets the clock a PlanTable judges refresh ages and expiry by.
func SetPlanClock(t *PlanTable, now func() time.Time) { t.nowFor = now }
