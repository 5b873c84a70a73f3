package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-go/weir"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	c, err := Parse("w.yaml", []byte(`
server:
  http: 127.0.0.1:9000
  tokens: ["0123456789abcdef"]
policies:
  zeta:
    limit: "5/s"
  api:
    description: public API
    limits:
      - "100/s burst=200"
      - {quota: 1000, period: 1h, algorithm: fixed-window, name: hourly}
    key: "{tenant}:{key}"
    shadow: true
    on_store_error: fallback
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Policies) != 2 || c.Policies[0].Name != "api" || c.Policies[1].Name != "zeta" {
		t.Fatalf("policies not sorted: %+v", c.Policies)
	}
	p, ok := c.Policy("api")
	if !ok {
		t.Fatal("no api")
	}
	want := []weir.Limit{
		{Name: "100/s burst=200", Quota: 100, Period: time.Second, Burst: 200},
		{Name: "hourly", Algorithm: weir.FixedWindow, Quota: 1000, Period: time.Hour},
	}
	if fmt.Sprint(p.Limits) != fmt.Sprint(want) {
		t.Errorf("limits %+v, want %+v", p.Limits, want)
	}
	if !p.Shadow || p.OnError != OnErrorFallback || p.Key.String() != "{tenant}:{key}" || p.Description != "public API" {
		t.Errorf("policy %+v", p)
	}
	if c.Server.HTTP != "127.0.0.1:9000" || len(c.Server.Tokens) != 1 {
		t.Errorf("server %+v", c.Server)
	}
	if _, ok := c.Policy("nope"); ok {
		t.Error("found a policy that does not exist")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ text, want string }{
		{"polices: {}\n", `w.yaml:1: unknown key "polices"`},
		{"server:\n  htp: x\n", `w.yaml:2: unknown key "htp"`},
		{"policies:\n  a:\n    limits: [\"1/s\"]\n    shadw: true\n", `w.yaml:4: unknown key "shadw"`},
		{"policies:\n  a:\n    limits: [{quota: 1, period: 1s, brust: 2}]\n", `w.yaml:3: unknown key "brust"`},
		{"policies:\n  a:\n    limits: [\"1/s\"]\n  a:\n    limits: [\"1/s\"]\n", `duplicate policy "a"`},
		{"policies:\n  a:\n    limits: [\"1/s name=x\", \"2/s name=x\"]\n", `duplicate limit name "x"`},
		{"policies:\n  a:\n    limits: []\n", "at least one limit"},
		{"policies:\n  a:\n    limit: \"1/s\"\n    limits: [\"2/s\"]\n", "either limit or limits"},
		{"policies:\n  a:\n    limits: [\"0/s\"]\n", `w.yaml:3: limit "0/s"`},
		{"policies:\n  a:\n    limits: [\"1/s algo=nope\"]\n", "unknown algorithm"},
		{"policies:\n  a:\n    limits: [{quota: 1}]\n", "period is required"},
		{"policies:\n  a:\n    limits: [[1]]\n", "a limit is text"},
		{"policies:\n  a:\n    limits: [\"1/s\"]\n    key: \"{\"\n", "unclosed"},
		{"policies:\n  a:\n    limits: [\"1/s\"]\n    key: \"static\"\n", "uses no field"},
		{"policies:\n  a:\n    limits: [\"1/s\"]\n    on_store_error: maybe\n", "on_store_error"},
		{"policies:\n  a:\n    limits: [\"1/s\"]\n    local: {hold: 0s}\n", "local.hold"},
		{"policies:\n  a:\n    limits: [\"1/s\"]\n    local: {optimistic: 2m}\n", "local.optimistic"},
		{"policies:\n  a:\n    limits: [\"1/s\"]\n    local: {hodl: 1s}\n", `unknown key "hodl"`},
		{"policies:\n  a:\n    limits: [\"1/s\"]\n    local: 5\n", "local: want a mapping"},
		{"policies:\n  \"a b\":\n    limits: [\"1/s\"]\n", "policy name"},
		{"policies: [1]\n", "mapping"},
		{"server:\n  tokens: [short]\n", "at least 16"},
		{"server:\n  admin_tokens: [\"env:WEIR_TEST_UNSET_TOKEN\"]\n", "$WEIR_TEST_UNSET_TOKEN is empty or unset"},
		{"policies: [\n", "w.yaml:"},
		{"policies: {}\n---\nb: 2\n", "w.yaml:2: more than one YAML document"},
		{"envoy:\n  files: [missing.yaml]\n", "missing.yaml"},
	}
	for _, tt := range tests {
		_, err := Parse("w.yaml", []byte(tt.text))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tt.text, err, tt.want)
		}
	}
}

func TestTokensFromEnv(t *testing.T) {
	t.Setenv("WEIR_TEST_TOKEN", "from-the-environment-0123")
	c, err := Parse("w.yaml", []byte("server:\n  tokens: [\"env:WEIR_TEST_TOKEN\"]\n"))
	if err != nil || len(c.Server.Tokens) != 1 || c.Server.Tokens[0] != "from-the-environment-0123" {
		t.Errorf("tokens %v, %v", c, err)
	}
}

func TestEmptyFile(t *testing.T) {
	c, err := Parse("w.yaml", nil)
	if err != nil || len(c.Policies) != 0 {
		t.Errorf("empty: %v %v", c, err)
	}
}

func TestTemplate(t *testing.T) {
	tests := []struct {
		tmpl, key string
		fields    map[string]string
		want      string
		missing   string
	}{
		{"{key}", "u1", nil, "u1", ""},
		{"{key}", "", nil, "", "key"},
		{"t:{tenant}:{key}", "u1", map[string]string{"tenant": "acme"}, "t:acme:u1", ""},
		{"t:{tenant}:{key}", "u1", nil, "", "tenant"},
		{"{{lit}}{route}", "", map[string]string{"route": "/x"}, "{lit}/x", ""},
	}
	for _, tt := range tests {
		tp, err := ParseTemplate(tt.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tp.Render(tt.key, tt.fields)
		if tt.missing != "" {
			if mf, ok := err.(*MissingFieldError); !ok || mf.Field != tt.missing {
				t.Errorf("%q: err %v, want missing %s", tt.tmpl, err, tt.missing)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q.Render = %q, %v; want %q", tt.tmpl, got, err, tt.want)
		}
	}
	for _, bad := range []string{"{", "}", "{a b}", "{}", "plain"} {
		if _, err := ParseTemplate(bad); err == nil {
			t.Errorf("ParseTemplate(%q): no error", bad)
		}
	}
}

func TestEnvoyErrors(t *testing.T) {
	tests := []struct{ text, want string }{
		{"descriptors: []\n", "domain must not be empty"},
		{"domain: d\ndescriptors:\n  - value: x\n", "e.yaml:3: descriptor has empty key"},
		{"domain: d\ndescriptors:\n  - key: a\n    rate_limt: {}\n", `e.yaml:4: unknown key "rate_limt"`},
		{"domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1, foo: 1}\n", `e.yaml:4: unknown key "foo"`},
		{"domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: fortnight, requests_per_unit: 1}\n", `invalid rate limit unit "fortnight"`},
		{"domain: d\ndescriptors:\n  - key: a\n    rate_limit: {requests_per_unit: 1}\n", "invalid rate limit unit"},
		{"domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unlimited: true, unit: second}\n", "should not specify rate limit unit"},
		{"domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: -1}\n", "e.yaml:4"},
		{"domain: d\ndescriptors:\n  - key: a\n    value: b\n  - key: a\n    value: b\n", `duplicate descriptor composite key "d.a_b"`},
		{"domain: d\ndescriptors:\n  - key: a\n    descriptors:\n      - key: b\n      - key: b\n", `duplicate descriptor composite key "d.a.b"`},
		{"domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1, replaces: [{}]}\n", "empty name"},
		{"domain: d\ndescriptors:\n  - key: a\n    rate_limit: {name: x, unit: second, requests_per_unit: 1, replaces: [{name: x}]}\n", "cannot replace itself"},
		{"domain: d\nfoo: 1\n", `e.yaml:2: unknown key "foo"`},
	}
	for _, tt := range tests {
		_, err := ParseEnvoy("e.yaml", []byte(tt.text))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseEnvoy(%q) = %v, want an error containing %q", tt.text, err, tt.want)
		}
	}
}

func TestLoadEnvoyDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", "domain: one\ndescriptors:\n  - key: k\n    rate_limit: {unit: minute, requests_per_unit: 5}\n")
	write("b.yml", "domain: two\ndescriptors:\n  - key: k\n    value: v*\n    rate_limit: {unlimited: true}\n")
	write("notes.txt", "ignored")
	domains, files, err := LoadEnvoy(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(domains) != 2 || len(files) != 2 || domains[0].Name != "one" || domains[1].Name != "two" {
		t.Fatalf("domains %+v files %v", domains, files)
	}
	if w := domains[1].Root.Wildcards; len(w) != 1 || w[0] != ChildIndex("k", "v*") {
		t.Errorf("wildcards %v", w)
	}
	write("c.yaml", "domain: one\n")
	if _, _, err := LoadEnvoy(dir); err == nil || !strings.Contains(err.Error(), `duplicate domain "one"`) {
		t.Errorf("duplicate domain: %v", err)
	}
}

func TestWorldWritableFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.yaml")
	if err := os.WriteFile(path, []byte("policies: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "writable by every user") {
		t.Errorf("world-writable: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := Load(path); err != nil {
		t.Errorf("0644: %v", err)
	}
}

func TestUnits(t *testing.T) {
	for name, secs := range map[string]int64{"second": 1, "MINUTE": 60, "hour": 3600, "day": 86400, "week": 604800, "month": 2592000, "year": 31536000} {
		u, ok := ParseUnit(name)
		if !ok || u.Seconds() != secs {
			t.Errorf("%s: %v %d", name, ok, u.Seconds())
		}
	}
	if _, ok := ParseUnit("fortnight"); ok {
		t.Error("fortnight parsed")
	}
}

func ExampleParse() {
	c, err := Parse("weir.yaml", []byte(`
policies:
  api:
    limits: ["100/s burst=200", "10000/d algo=fixed-window name=daily"]
    key: "{tenant}:{key}"
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := c.Policy("api")
	key, _ := p.Key.Render("user-7", map[string]string{"tenant": "acme"})
	fmt.Println(p.Limits[0], "|", p.Limits[1].Name, "|", key)

	_, err = Parse("weir.yaml", []byte("policies:\n  api:\n    limits: [\"1/s\"]\n    shadw: true\n"))
	fmt.Println(err)
	// Output:
	// 100/s burst=200 | daily | acme:user-7
	// weir.yaml:4: unknown key "shadw" (want limits, limit, key, shadow, on_store_error, description, local, plans)
}

// TestTLSSection: server.tls paths are resolved against the file's
// directory (absolute ones are kept), and cert and key come together.
func TestTLSSection(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "ca.pem")
	c, err := Parse(filepath.Join("etc", "weir", "w.yaml"), []byte("server:\n  tls:\n    cert: tls/server.pem\n    key: server-key.pem\n    client_ca: "+abs+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := TLS{Cert: filepath.Join("etc", "weir", "tls", "server.pem"), Key: filepath.Join("etc", "weir", "server-key.pem"), ClientCA: abs}
	if c.Server.TLS != want || !c.Server.TLS.Enabled() {
		t.Errorf("TLS = %+v, want %+v", c.Server.TLS, want)
	}
	if c, err := Parse("w.yaml", []byte("server:\n  http: 127.0.0.1:1\n")); err != nil || c.Server.TLS.Enabled() {
		t.Errorf("no tls section: %+v, %v", c.Server.TLS, err)
	}
	for _, tt := range []struct{ section, want string }{
		{"    cert: a.pem\n", "w.yaml: server.tls.cert a.pem needs server.tls.key"},
		{"    key: a.pem\n", "w.yaml: server.tls.key a.pem needs server.tls.cert"},
		{"    client_ca: a.pem\n", "w.yaml: server.tls.client_ca needs server.tls.cert and server.tls.key"},
		{"    client-ca: a.pem\n", `w.yaml:3: unknown key "client-ca"`},
	} {
		_, err := Parse("w.yaml", []byte("server:\n  tls:\n"+tt.section))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.section, err, tt.want)
		}
	}
}

// TestLocalSection: a policy's local: section, its defaults and none.
func TestLocalSection(t *testing.T) {
	c, err := Parse("w.yaml", []byte("policies:\n  a: {limits: [\"1/s\"], local: {hold: 250ms}}\n  b: {limits: [\"1/s\"], local: {}}\n  c: {limits: [\"1/s\"], local: {optimistic: 10ms}}\n  d: {limits: [\"1/s\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		want *Local
	}{
		{"a", &Local{Hold: 250 * time.Millisecond}},
		{"b", &Local{Hold: 100 * time.Millisecond}},
		{"c", &Local{Hold: 100 * time.Millisecond, Optimistic: 10 * time.Millisecond}},
		{"d", nil},
	} {
		p, _ := c.Policy(tt.name)
		if (p.Local == nil) != (tt.want == nil) || p.Local != nil && *p.Local != *tt.want {
			t.Errorf("policy %s: Local = %+v, want %+v", tt.name, p.Local, tt.want)
		}
	}
}
