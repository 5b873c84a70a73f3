package config

import (
	"os"
	"path/filepath"
	"testing"
)

// A value of the wrong type is an error naming the file, the line and the
// key's path, never yaml.v3's Go type names (issue 16.8).
func TestTypeErrorsNameTheKey(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"policies:\n  api:\n    limits: \"100/s\"\n", `w.yaml:3: policies.api.limits: want a list, got text "100/s"`},
		{"server:\n  tokens: \"0123456789abcdef\"\n", `w.yaml:2: server.tokens: want a list, got text "0123456..."`},
		{"policies:\n  api:\n    limits:\n      - {quota: ten, period: 1s}\n", `w.yaml:4: policies.api.limits[0].quota: want a whole number, got text "ten"`},
		{"policies:\n  api:\n    limits: [\"1/s\"]\n    shadow: maybe\n", `w.yaml:4: policies.api.shadow: want true or false, got text "maybe"`},
		{"server:\n  http: [a, b]\n", `w.yaml:2: server.http: want text, got a list`},
		{"envoy:\n  shadow_mode: 3\n", `w.yaml:2: envoy.shadow_mode: want true or false, got a number "3"`},
	} {
		_, err := Parse("w.yaml", []byte(c.yaml))
		if err == nil || err.Error() != c.want {
			t.Errorf("%q:\n got %v\nwant %s", c.yaml, err, c.want)
		}
	}
}

// A missing envoy.files entry is the policy file's error: its name, the
// line and the key, then the path (issue 15).
func TestEnvoyFilesMissing(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "weir.yaml")
	data := []byte("policies:\n  p:\n    limits: [\"1/s\"]\nenvoy:\n  files:\n    - ratelimit/\n")
	_, err := Parse(file, data)
	want := file + `:6: envoy.files[0] "ratelimit/": no such file or directory`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	os.Mkdir(filepath.Join(dir, "ratelimit"), 0o755)
	if _, err := Parse(file, data); err != nil {
		t.Errorf("with the directory: %v", err)
	}
}
