package engine

import (
	"fmt"
	"time"

	"github.com/weir-go/weir"
)

// ValidateNote checks the arguments of [weir.Noter.SetNote] (ttl is
// ignored when negative: Note passes -1).
func ValidateNote(name string, value []byte, ttl time.Duration) error {
	switch {
	case name == "" || len(name) > weir.MaxNoteName:
		return &weir.FieldError{Field: "note name", Reason: fmt.Sprintf("must be 1 to %d bytes (got %d)", weir.MaxNoteName, len(name))}
	case len(value) > weir.MaxNoteValue:
		return &weir.FieldError{Field: "note value", Reason: fmt.Sprintf("must be at most %d bytes (got %d)", weir.MaxNoteValue, len(value))}
	case ttl == 0 || ttl < -1:
		return &weir.FieldError{Field: "note ttl", Reason: fmt.Sprintf("must be positive (got %v)", ttl)}
	}
	return nil
}

// NoteTTL is ttl in whole milliseconds, rounded up, as stores keep it.
func NoteTTL(ttl time.Duration) int64 {
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}
