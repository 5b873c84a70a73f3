package httplimit

import (
	"bytes"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sfVector is one test record of httpwg/structured-field-tests (see
// testdata/sf/README.md).
type sfVector struct {
	Name       string          `json:"name"`
	Raw        []string        `json:"raw"`
	HeaderType string          `json:"header_type"`
	Expected   json.RawMessage `json:"expected"`
	MustFail   bool            `json:"must_fail"`
	CanFail    bool            `json:"can_fail"`
	Canonical  []string        `json:"canonical"`
}

func readSFVectors(t *testing.T, path string) []sfVector {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var vs []sfVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return vs
}

// TestSFVectors parses every vector of the httpwg parsing tests with
// sf.go's List, Dictionary and Item parsers and compares the result with
// the expected structure. Vectors outside sf.go's subset (Dates, Display
// Strings) must fail to parse: a client ignores a field it cannot read.
// Inner lists are compared by their parameters (sf.go keeps no members).
func TestSFVectors(t *testing.T) {
	files, err := filepath.Glob("testdata/sf/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors: %v", err)
	}
	var passed, failed, outside int
	for _, f := range files {
		for _, v := range readSFVectors(t, f) {
			name := filepath.Base(f) + ": " + v.Name
			got, err := parseSFVector(v.HeaderType, strings.Join(v.Raw, ", "))
			want, supported := "", true
			if !v.MustFail {
				want, supported = expectedSF(t, name, v.HeaderType, v.Expected)
			}
			switch {
			case v.MustFail || !supported:
				if err == nil && !v.CanFail {
					t.Errorf("%s: %q parsed as %s; want an error", name, v.Raw, got)
				}
				if !supported {
					outside++
				} else {
					failed++
				}
			case err != nil:
				if !v.CanFail {
					t.Errorf("%s: %q: %v; want %s", name, v.Raw, err, want)
				}
			case got != want:
				t.Errorf("%s: %q parsed as\n%s\nwant\n%s", name, v.Raw, got, want)
			default:
				passed++
			}
		}
	}
	if passed < 600 || failed < 500 || outside == 0 {
		t.Fatalf("vectors: %d parsed, %d refused, %d outside the subset: too few", passed, failed, outside)
	}
	t.Logf("vectors: %d parsed, %d refused, %d outside the subset", passed, failed, outside)
}

// parseSFVector parses s as a field of type typ and formats the result
// like expectedSF.
func parseSFVector(typ, s string) (string, error) {
	switch typ {
	case "list":
		items, err := parseSFList(s)
		if err != nil {
			return "", err
		}
		parts := make([]string, len(items))
		for i := range items {
			parts[i] = fmtSFItem(&items[i])
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	case "dictionary":
		members, err := parseSFDict(s)
		if err != nil {
			return "", err
		}
		parts := make([]string, len(members))
		for i := range members {
			parts[i] = members[i].key + "=" + fmtSFItem(&members[i].val)
		}
		return "{" + strings.Join(parts, ", ") + "}", nil
	case "item":
		// RFC 9651 4.2: discard leading SP, parse an Item, discard leading
		// SP, and fail on anything left.
		p := &sfParser{s: s}
		p.skipSP()
		it, err := p.item()
		if err != nil {
			return "", err
		}
		p.skipSP()
		if !p.eof() {
			return "", errSF
		}
		return fmtSFItem(&it), nil
	}
	return "", fmt.Errorf("unknown header type %q", typ)
}

func fmtSFItem(it *sfItem) string {
	var b strings.Builder
	switch it.kind {
	case sfInteger:
		b.WriteString("int:" + strconv.FormatInt(it.num, 10))
	case sfDecimal:
		b.WriteString("dec:" + strconv.FormatFloat(it.dec, 'g', -1, 64))
	case sfString:
		b.WriteString("str:" + strconv.Quote(it.str))
	case sfToken:
		b.WriteString("tok:" + it.str)
	case sfBytes:
		b.WriteString("bin:" + strconv.Quote(it.str))
	case sfBool:
		b.WriteString("bool:" + strconv.FormatBool(it.num == 1))
	case sfInner:
		b.WriteString("inner")
	default:
		b.WriteString("?")
	}
	for _, p := range it.params {
		b.WriteString(";" + p.key + "=" + fmtSFItem(&p.val))
	}
	return b.String()
}

// expectedSF formats the expected structure of a vector like
// parseSFVector, and reports false when it holds a type outside sf.go's
// subset.
func expectedSF(t *testing.T, name, typ string, raw json.RawMessage) (string, bool) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s: expected: %v", name, err)
	}
	ok := true
	var item func(v any) string
	bare := func(v any) string {
		switch x := v.(type) {
		case json.Number:
			if strings.ContainsAny(x.String(), ".eE") {
				f, err := x.Float64()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				return "dec:" + strconv.FormatFloat(f, 'g', -1, 64)
			}
			return "int:" + x.String()
		case string:
			return "str:" + strconv.Quote(x)
		case bool:
			return "bool:" + strconv.FormatBool(x)
		case map[string]any:
			val, _ := x["value"].(string)
			switch x["__type"] {
			case "token":
				return "tok:" + val
			case "binary":
				b, err := base32.StdEncoding.DecodeString(val)
				if err != nil {
					t.Fatalf("%s: base32 %q: %v", name, val, err)
				}
				return "bin:" + strconv.Quote(string(b))
			}
		}
		ok = false // a Date, a Display String
		return "?"
	}
	params := func(v any) string {
		var b strings.Builder
		for _, p := range v.([]any) {
			kv := p.([]any)
			b.WriteString(";" + kv[0].(string) + "=" + bare(kv[1]))
		}
		return b.String()
	}
	item = func(v any) string {
		pair := v.([]any)
		if inner, isInner := pair[0].([]any); isInner {
			for _, m := range inner {
				item(m) // members are not compared, but must be in the subset
			}
			return "inner" + params(pair[1])
		}
		return bare(pair[0]) + params(pair[1])
	}
	var parts []string
	switch typ {
	case "list":
		for _, m := range v.([]any) {
			parts = append(parts, item(m))
		}
		return "[" + strings.Join(parts, ", ") + "]", ok
	case "dictionary":
		for _, m := range v.([]any) {
			kv := m.([]any)
			parts = append(parts, kv[0].(string)+"="+item(kv[1]))
		}
		return "{" + strings.Join(parts, ", ") + "}", ok
	}
	return item(v), ok
}

// TestSFStringSerialisation writes every string of the httpwg serialisation
// vectors and of the parsing vectors' string items: validSFString refuses
// exactly the ones that must fail, and appendSFString writes the others in
// their canonical form.
func TestSFStringSerialisation(t *testing.T) {
	n := 0
	for _, f := range []string{"testdata/sf/serialisation-tests/string-generated.json", "testdata/sf/string.json", "testdata/sf/string-generated.json"} {
		for _, v := range readSFVectors(t, f) {
			if v.HeaderType != "item" || (v.Raw != nil && v.MustFail) {
				continue // a parsing failure: nothing to write
			}
			var exp []any
			if err := json.Unmarshal(v.Expected, &exp); err != nil || len(exp) != 2 {
				t.Fatalf("%s: expected %s", v.Name, v.Expected)
			}
			s, isString := exp[0].(string)
			if !isString || len(exp[1].([]any)) != 0 {
				continue
			}
			n++
			if !validSFString(s) {
				if !v.MustFail {
					t.Errorf("%s: %q refused", v.Name, s)
				}
				continue
			}
			if v.MustFail {
				t.Errorf("%s: %q accepted; it must fail", v.Name, s)
				continue
			}
			want := v.Canonical
			if want == nil {
				want = v.Raw
			}
			if got := string(appendSFString(nil, s)); len(want) != 1 || got != want[0] {
				t.Errorf("%s: %q written as %s, want %q", v.Name, s, got, want)
			}
		}
	}
	if n < 100 {
		t.Fatalf("only %d string vectors", n)
	}
}
