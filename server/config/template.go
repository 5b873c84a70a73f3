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
//
// Rendering is injective: two distinct sets of values never give one key.
// A template with a single field copies its value as it is (the literal
// text around it is fixed), so "{key}" keys are the caller's keys. A
// template with several fields escapes, in each value, '%' and every byte
// of the text between fields as %XX (upper-case hex): with tenant:{tenant}:{key},
// tenant "a:" and key "b" give "tenant:a%3A:b", tenant "a" and key ":b" give
// "tenant:a:%3Ab". Values without those bytes are copied unchanged. For the
// escaping to separate the fields, the text between two fields must hold a
// byte that escaping never writes: a byte other than '%', 0-9 and A-F
// (ParseTemplate refuses "{a}{b}" and "{a}1{b}").
type Template struct {
	src    string
	parts  []part
	fields []string
	// escape marks the bytes escaped in values; nil when the template has
	// a single field and values are copied.
	escape *[256]bool
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
	if err := t.separators(); err != nil {
		return nil, err
	}
	sort.Strings(t.fields)
	return t, nil
}

// separators checks that every two fields are separated by a byte that
// escaping never writes, and records the bytes values must escape: '%'
// and the bytes of the text between fields. A single field needs neither.
func (t *Template) separators() error {
	var set [256]bool
	n, prev := 0, ""
	for i, p := range t.parts {
		if p.field == "" {
			continue
		}
		n++
		if n == 1 {
			prev = p.field
			continue
		}
		lit := ""
		if i > 0 && t.parts[i-1].field == "" {
			lit = t.parts[i-1].lit
		}
		if !strings.ContainsFunc(lit, func(r rune) bool { return !escapeAlphabet(r) }) {
			return fmt.Errorf("fields {%s} and {%s} in %q need a separator between them (a character other than %%, 0-9 and A-F, such as ':' or '|'): without one, two different sets of values could give the same key", prev, p.field, t.src)
		}
		for j := 0; j < len(lit); j++ {
			set[lit[j]] = true
		}
		prev = p.field
	}
	if n < 2 {
		return nil
	}
	set['%'] = true
	t.escape = &set
	return nil
}

// escapeAlphabet reports whether escaping can write r: '%' and the
// upper-case hex digits.
func escapeAlphabet(r rune) bool {
	return r == '%' || r >= '0' && r <= '9' || r >= 'A' && r <= 'F'
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
		t.writeValue(&b, v)
	}
	return b.String(), nil
}

const upperHex = "0123456789ABCDEF"

// writeValue writes v, with the template's escaped bytes as %XX.
func (t *Template) writeValue(b *strings.Builder, v string) {
	if t.escape == nil {
		b.WriteString(v)
		return
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !t.escape[c] {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
}
