package redisstore

import (
	"fmt"

	"github.com/weir-go/weir"
)

// MaxUnits is the largest quota or burst the Redis store holds (2^51): its
// script computes in doubles, exact only below 2^53, and a decision on a
// larger limit is refused with a *weir.FieldError.
const MaxUnits = maxUnits

// CheckLimit reports whether the Redis store can hold l, with the error a
// decision on it would get (a *weir.FieldError naming quota or burst).
// Servers call it when they load a configuration, so that a limit the
// store cannot hold is refused where it is written, not at every request.
func CheckLimit(l weir.Limit) error {
	switch {
	case l.Quota > MaxUnits:
		return &weir.FieldError{Field: "quota", Reason: fmt.Sprintf("%d is above the Redis store's maximum of 2^51 (%d): its script computes in exact integers below 2^53", l.Quota, int64(MaxUnits))}
	case l.Burst > MaxUnits:
		return &weir.FieldError{Field: "burst", Reason: fmt.Sprintf("%d is above the Redis store's maximum of 2^51 (%d): its script computes in exact integers below 2^53", l.Burst, int64(MaxUnits))}
	}
	return nil
}
