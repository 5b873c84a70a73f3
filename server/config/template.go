package config

import (
	"fmt"
	"sort"
	"strings"
)

// A Template builds a state key from a caller's key and named fields:
// "{key}" (the default), "tenant:{tenant}:{key}", "{route}|{ip}". Text
// outside braces is copied; "{{" and "}}" stand for literal braces.
// Fields are the names inside braces; "key" is the caller's key.
type Template struct {
	src    string
	parts  []part
	fields []string
}

type part struct {
	lit   string
	field string // "" for a literal
}

// ParseTemplate parses a key template.
func ParseTemplate(s string) (*Template, error) {
	t := &Template{src: s}
	var lit strings.Builder
	seen := map[string]bool{}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i++
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i++
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unclosed '{' in %q", s)
			}
			name := s[i+1 : i+end]
			if !validName(name) {
				return nil, fmt.Errorf("bad field name %q in %q", name, s)
			}
			if lit.Len() > 0 {
				t.parts = append(t.parts, part{lit: lit.String()})
				lit.Reset()
			}
			t.parts = append(t.parts, part{field: name})
			if !seen[name] {
				seen[name] = true
				t.fields = append(t.fields, name)
			}
			i += end
		case c == '}':
			return nil, fmt.Errorf("unmatched '}' in %q", s)
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, part{lit: lit.String()})
	}
	if len(t.fields) == 0 {
		return nil, fmt.Errorf("%q uses no field: every caller would share one key (use {key})", s)
	}
	sort.Strings(t.fields)
	return t, nil
}

// String returns the template's source text.
func (t *Template) String() string { return t.src }

// Fields returns the names the template uses, sorted.
func (t *Template) Fields() []string { return append([]string(nil), t.fields...) }

// A MissingFieldError says a template field was not given.
type MissingFieldError struct{ Field string }

// Error names the missing field.
func (e *MissingFieldError) Error() string { return "missing field " + e.Field }

// Render builds the key. key fills {key}; fields fill the others. A field
// the template uses must be present and non-empty.
func (t *Template) Render(key string, fields map[string]string) (string, error) {
	if len(t.parts) == 1 && t.parts[0].field == "key" {
		if key == "" {
			return "", &MissingFieldError{Field: "key"}
		}
		return key, nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.field == "" {
			b.WriteString(p.lit)
			continue
		}
		v := key
		if p.field != "key" {
			v = fields[p.field]
		}
		if v == "" {
			return "", &MissingFieldError{Field: p.field}
		}
		b.WriteString(v)
	}
	return b.String(), nil
}
