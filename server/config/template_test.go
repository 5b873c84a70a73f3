package config

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestTemplateEscapes(t *testing.T) {
	tests := []struct {
		tmpl   string
		fields map[string]string
		want   string
	}{
		// One field: copied as it is, so existing keys stay valid.
		{"{key}", map[string]string{"key": "a:%b"}, "a:%b"},
		{"t:{key}", map[string]string{"key": "a:%b"}, "t:a:%b"},
		// Several fields: only '%' and the separators' bytes are escaped.
		{"t:{tenant}:{key}", map[string]string{"tenant": "acme", "key": "u1"}, "t:acme:u1"},
		{"t:{tenant}:{key}", map[string]string{"tenant": "a:", "key": "b"}, "t:a%3A:b"},
		{"t:{tenant}:{key}", map[string]string{"tenant": "a", "key": ":b"}, "t:a:%3Ab"},
		{"{route}|{ip}", map[string]string{"route": "/x|y%", "ip": "1.2.3.4"}, "/x%7Cy%25|1.2.3.4"},
		{"{a}-x-{b}", map[string]string{"a": "x-1", "b": "y"}, "%78%2D1-x-y"},
	}
	for _, tt := range tests {
		tp, err := ParseTemplate(tt.tmpl)
		if err != nil {
			t.Fatalf("ParseTemplate(%q): %v", tt.tmpl, err)
		}
		got, err := tp.Render(tt.fields["key"], tt.fields)
		if err != nil || got != tt.want {
			t.Errorf("%q.Render(%q) = %q, %v; want %q", tt.tmpl, tt.fields, got, err, tt.want)
		}
	}
	for _, bad := range []string{"{a}{b}", "{a}1{b}", "{a}%{b}", "{a}FF{b}", "x:{a}{key}:y"} {
		if _, err := ParseTemplate(bad); err == nil || !strings.Contains(err.Error(), "separator") {
			t.Errorf("ParseTemplate(%q) = %v, want a separator error", bad, err)
		}
	}
}

// TestTemplateInjective (issue 16.2): for random templates and random
// values made of the separators, '%', hex digits and a few letters, two
// distinct sets of values never render to one key.
func TestTemplateInjective(t *testing.T) {
	templates := []string{
		"{tenant}:{key}", "t:{tenant}:{key}", "{a}|{b}|{key}", "{a}::{b}", "{a}:x{b}",
		"{a}A:{b}", "{route}/{ip}/", "{a}-{a}", "{a}%:{b}", "{{{a}}}:{b}", "{a}:{b}:{a}",
	}
	alphabet := []byte(":|/%-xA3709FC{}ab")
	r := rand.New(rand.NewPCG(1, 16))
	for _, src := range templates {
		tp, err := ParseTemplate(src)
		if err != nil {
			t.Fatalf("ParseTemplate(%q): %v", src, err)
		}
		seen := map[string]string{}
		for range 20000 {
			fields := map[string]string{}
			var id strings.Builder
			for _, f := range tp.Fields() {
				v := make([]byte, 1+r.IntN(4))
				for i := range v {
					v[i] = alphabet[r.IntN(len(alphabet))]
				}
				fields[f] = string(v)
				id.WriteString(strings.ReplaceAll(string(v), "\x00", "") + "\x00")
			}
			key, err := tp.Render(fields["key"], fields)
			if err != nil {
				t.Fatal(err)
			}
			if prev, ok := seen[key]; ok && prev != id.String() {
				t.Fatalf("%q: values %q and %q both render %q", src, prev, id.String(), key)
			}
			seen[key] = id.String()
		}
	}
}
