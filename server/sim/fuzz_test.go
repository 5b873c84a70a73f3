package sim

import (
	"strings"
	"testing"
	"time"
)

// FuzzParsePattern: any text gives a pattern or an error, never a panic;
// a pattern's first arrivals are in order, with a key and a cost of at
// least 1, inside the run.
func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{
		"constant:1000/s", "constant:7", "poisson:50/m,seed=2,keys=3", "bursts:200/10s,width=1s,base=5/s",
		"bursts:9223372036854775807/1ns", "daily:1000/s,low=50/s,peak=09:30,cost=3", "constant:1/100y",
		"poisson:9223372036854775807/ns", "bursts:1/1ns,width=1ns", "daily:1/d,low=1/d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), "file") {
			return // reads files: FuzzParseReplay covers the format
		}
		p, err := ParsePattern(s)
		if err != nil {
			return
		}
		const d = time.Hour
		var prev time.Duration
		n := 0
		for a := range p.Arrivals(d) {
			if a.At < prev || a.At < 0 || a.At >= d || a.Key == "" || a.Cost < 1 {
				t.Fatalf("%q: arrival %d = %+v after %v", s, n, a, prev)
			}
			prev = a.At
			if n++; n == 1000 {
				break
			}
		}
	})
}

// FuzzParseReplay: any file gives a replay or an error naming the file,
// never a panic; a replay is sorted and spans its arrivals.
func FuzzParseReplay(f *testing.F) {
	for _, s := range []string{
		"1796551200.5 alice 2\n1796551200.25,bob\n", "2026-12-06T10:00:00.25Z - 3\n# c\n\n",
		"-9223372036.854775807\n9223372035\n", "1.1234567891\n", "0 k 9223372036854775807\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseReplay("f", strings.NewReader(s))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		var prev time.Duration
		for a := range p.Arrivals(p.Span()) {
			if a.At < prev || a.Cost < 1 || a.Key == "" {
				t.Fatalf("arrival %+v after %v", a, prev)
			}
			prev = a.At
		}
		if p.Span() != prev+1 {
			t.Fatalf("Span %v, last arrival %v", p.Span(), prev)
		}
	})
}
