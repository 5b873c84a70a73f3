package config

import (
	"strings"
	"testing"
)

func TestPlans(t *testing.T) {
	c, err := Parse("w.yaml", []byte(`plans:
  pro: ["100/s burst=200", {quota: 100000, period: 1d, name: daily}]
  free: ["10/s", "1000/d name=daily"]
policies:
  api:
    plans:
      default: free
      keys: {acme: pro}
  plain:
    limits: ["5/s"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Plans) != 2 || c.Plans[0].Name != "free" || c.Plans[1].Name != "pro" {
		t.Fatalf("plans not sorted: %+v", c.Plans)
	}
	p, _ := c.Policy("api")
	if p.Plans == nil || p.Plans.Default != "free" || p.Plans.Keys["acme"] != "pro" {
		t.Fatalf("api plans: %+v", p.Plans)
	}
	// The policy's limits are the default plan's, named by shape so that
	// every plan's 1/s limit shares one state.
	if len(p.Limits) != 2 || p.Limits[0].Name != "per-s" || p.Limits[1].Name != "daily" || p.Limits[0].Quota != 10 {
		t.Fatalf("api limits: %+v", p.Limits)
	}
	if q, _ := c.Policy("plain"); q.Plans != nil {
		t.Fatalf("plain has plans: %+v", q.Plans)
	}
}

func TestPlanErrors(t *testing.T) {
	const free = "plans:\n  free: [\"10/s\"]\n"
	tests := []struct{ text, want string }{
		{"plans: [1]\n", "plans must be a mapping"},
		{"plans:\n  \"a b\": [\"1/s\"]\n", `plan name "a b"`},
		{"plans:\n  limits: [\"1/s\"]\n", "reserved"},
		{"plans:\n  free: []\n", "plans.free: at least one limit"},
		{"plans:\n  free: [\"0/s\"]\n", `w.yaml:2: limit "0/s"`},
		{"plans:\n  free: [\"1/s algo=concurrency\"]\n", "plans.free[0]: a plan holds rate limits only"},
		{"plans:\n  free: [\"1/s\", \"2/s\"]\n", `plans.free[1]: a second limit named "per-s"`},
		{free + "policies:\n  a:\n    plans: {default: nope}\n", `policies.a.plans.default: no plan "nope" (plans: free)`},
		{free + "policies:\n  a:\n    plans: {keys: {x: free}}\n", "policies.a.plans.default: name the plan"},
		{free + "policies:\n  a:\n    plans: {default: free, keys: {x: gold}}\n", `policies.a.plans.keys["x"]: no plan "gold"`},
		{free + "policies:\n  a:\n    plans: {default: free, defualt: x}\n", `unknown key "defualt"`},
		{free + "policies:\n  a:\n    limits: [\"1/s\"]\n    plans: {default: free}\n", "either limits or plans"},
		{free + "policies:\n  a:\n    plans: free\n", "policies.a.plans: want a mapping"},
		{"policies:\n  a:\n    plans: {default: free}\n", "(plans: none defined)"},
	}
	for _, tt := range tests {
		_, err := Parse("w.yaml", []byte(tt.text))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tt.text, err, tt.want)
		}
	}
}
