package redisstore

import (
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-go/weir"
)

// TestScriptFiles checks that scriptFiles lists every embedded script file
// once, and that each kindK file builds BUILD[K] for the weir.Algorithm
// whose value is K.
func TestScriptFiles(t *testing.T) {
	names, err := fs.Glob(scriptFS, "scripts/*.lua")
	if err != nil {
		t.Fatal(err)
	}
	for i := range names {
		names[i] = strings.TrimPrefix(names[i], "scripts/")
	}
	listed := slices.Clone(scriptFiles)
	slices.Sort(listed)
	if !slices.Equal(names, listed) {
		t.Fatalf("scripts/ holds %q; scriptFiles lists %q", names, scriptFiles)
	}
	kinds := map[string]weir.Algorithm{
		"kind0_gcra.lua":    weir.TokenBucket,
		"kind1_log.lua":     weir.SlidingWindowLog,
		"kind2_counter.lua": weir.SlidingWindowCounter,
		"kind3_fixed.lua":   weir.FixedWindow,
		"kind4_lease.lua":   weir.Concurrency,
	}
	for name, algo := range kinds {
		src, err := scriptFS.ReadFile("scripts/" + name)
		if err != nil {
			t.Fatal(err)
		}
		kind := paramsOf(weir.Limit{Algorithm: algo, Quota: 1, Period: time.Second}).kind
		if want := "\nBUILD[" + strconv.FormatInt(kind, 10) + "] = function(P)"; !strings.Contains(string(src), want) {
			t.Errorf("%s does not contain %q", name, want)
		}
		if want := "kind" + strconv.FormatInt(kind, 10) + "_"; !strings.HasPrefix(name, want) {
			t.Errorf("%s builds %v, whose kind is %d", name, algo, kind)
		}
	}
}
