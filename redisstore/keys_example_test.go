package redisstore

import (
	"testing"

	"github.com/weir-go/weir"
)

// TestKeyExample pins the example key of docs/redis.md.
func TestKeyExample(t *testing.T) {
	s := &Store{opt: defaults()}
	if got, want := s.redisKey("api", "user:42", weir.TokenBucket), "weir:{6c151ea4dcd221c2}t=3:apiuser:42"; got != want {
		t.Fatalf("key %q, want %q", got, want)
	}
}
