package httplimit

import (
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/weir-go/weir"
)

// TestScopesNeverShareState (issue 16.2): scope "a:" with key "b" and scope
// "a" with key ":b" are different clients, even on one limiter.
func TestScopesNeverShareState(t *testing.T) {
	lim := mustLimiter(t, newStore(), weir.PerHour(1).WithName("h"))
	constKey := func(k string) KeyFunc { return func(*http.Request) (string, error) { return k, nil } }
	h1 := mustNew(t, Policy{Limiter: lim, Scope: "a:", Key: constKey("b")}).Handler(okHandler)
	h2 := mustNew(t, Policy{Limiter: lim, Scope: "a", Key: constKey(":b")}).Handler(okHandler)
	if rec := do(h1, "GET", "/", "192.0.2.1:1", nil); rec.Code != http.StatusOK {
		t.Fatalf("scope a: key b: status %d", rec.Code)
	}
	if rec := do(h2, "GET", "/", "192.0.2.1:1", nil); rec.Code != http.StatusOK {
		t.Fatalf("scope a key :b: status %d, want 200 (its own bucket)", rec.Code)
	}
	if rec := do(h1, "GET", "/", "192.0.2.1:1", nil); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("scope a: key b again: status %d, want 429", rec.Code)
	}
}

// TestScopePrefixInjective: random scopes (empty included) and keys built from digits,
// colons and letters never give one store key for two (scope, key) pairs.
func TestScopePrefixInjective(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 2))
	alphabet := []byte("0123:ab")
	word := func(min int) string {
		b := make([]byte, min+r.IntN(5))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	seen := map[string][2]string{}
	for range 50000 {
		pair := [2]string{word(0), word(1)}
		k := storeKey(scopePrefix(pair[0]), pair[1])
		if prev, ok := seen[k]; ok && prev != pair {
			t.Fatalf("(scope, key) %q and %q both give %q", prev, pair, k)
		}
		seen[k] = pair
	}
}
