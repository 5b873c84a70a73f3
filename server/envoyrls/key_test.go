package envoyrls

import (
	"math/rand/v2"
	"strings"
	"testing"

	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
)

// TestEntryKeyInjective (issue 16.2): descriptors made of random entries
// full of the separators ('=', '&'), the escape ('%'), what QueryEscape
// rewrites ('+', ' ') and bytes that are not UTF-8 never share a counter
// key unless their entries are equal; and a hashed long key never equals a
// joined one.
func TestEntryKeyInjective(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 2))
	alphabet := []string{"=", "&", "%", "+", " ", "a", "b", "%3D", "\xff", "é", "_"}
	word := func() string {
		var b strings.Builder
		for range r.IntN(4) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	seen := map[string]string{}
	for range 50000 {
		var entries []*rlcommon.RateLimitDescriptor_Entry
		var id strings.Builder
		for range 1 + r.IntN(3) {
			k, v := word(), word()
			entries = append(entries, &rlcommon.RateLimitDescriptor_Entry{Key: k, Value: v})
			id.WriteString(k + "\x00" + v + "\x01")
		}
		key := entryKey(entries, nil)
		if prev, ok := seen[key]; ok && prev != id.String() {
			t.Fatalf("entries %q and %q share the key %q", prev, id.String(), key)
		}
		seen[key] = id.String()
		if !strings.Contains(key, "=") {
			t.Fatalf("joined key %q holds no '=': it could equal a hashed key", key)
		}
	}
}
