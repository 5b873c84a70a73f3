package config

import (
	"strings"
	"testing"
)

// FuzzParse (R21): any input either parses into a usable configuration or
// fails with an error naming the file; it never panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "policies:\n  api:\n    limits: [\"100/s burst=200\"]\n    key: \"{t}:{key}\"\n",
		"policies:\n  a:\n    limits: [{quota: 1, period: 1s, algorithm: concurrency}]\n    on_store_error: fallback\n",
		"server:\n  http: x\n  tokens: [\"0123456789abcdef\"]\n", "policies: [\n", "a: &x [*x]\n",
		"policies:\n  a:\n    limits: [\"1/s\"]\n    shadw: true\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, p := range c.Policies {
			if len(p.Limits) == 0 || p.Key == nil {
				t.Fatalf("policy %q accepted without limits or key", p.Name)
			}
			for _, l := range p.Limits {
				if err := l.Validate(); err != nil {
					t.Fatalf("policy %q accepted an invalid limit: %v", p.Name, err)
				}
			}
		}
	})
}

// FuzzParseEnvoy (R21): envoyproxy/ratelimit files never panic the parser.
func FuzzParseEnvoy(f *testing.F) {
	for _, s := range []string{
		"domain: d\ndescriptors:\n  - key: a\n    value: b*\n    rate_limit: {unit: second, requests_per_unit: 1}\n    descriptors:\n      - key: c\n        rate_limit: {unlimited: true}\n",
		"domain: d\ndescriptors:\n  - key: a\n    rate_limit: {name: x, unit: day, requests_per_unit: 0, replaces: [{name: y}]}\n    shadow_mode: true\n",
		"domain: d\n", "descriptors: [\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseEnvoy("e.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "e.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if d.Name == "" || d.Root == nil {
			t.Fatal("accepted without a domain")
		}
	})
}
