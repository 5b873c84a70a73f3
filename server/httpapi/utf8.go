package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/weir-go/weir"
)

// invalidText finds the first string of a JSON body that is not valid
// UTF-8 (raw bytes, or a \u escape of an unpaired surrogate) and returns an
// error naming its field ("key", "fields.tenant", "checks[2].key"), or nil.
// encoding/json would fold either into U+FFFD, so "u\xff" and "u\xfe" would
// share a bucket; the JSON API carries text, so such a body is refused. A
// body that is not JSON returns nil: the decoder reports that.
func invalidText(data []byte) error {
	if utf8.Valid(data) && !bytes.Contains(data, []byte(`\u`)) {
		return nil
	}
	type frame struct {
		array     bool
		index     int
		key       string
		expectKey bool
	}
	var stack []frame
	path := func(key string) string {
		var b strings.Builder
		for i, f := range stack {
			switch {
			case f.array && i == 0:
				fmt.Fprintf(&b, "checks[%d]", f.index)
			case f.array:
				fmt.Fprintf(&b, "[%d]", f.index)
			case i < len(stack)-1 || key == "":
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			}
		}
		if key != "" {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(key)
		}
		if b.Len() == 0 {
			return "body"
		}
		return b.String()
	}
	// done records that a value ended in the innermost container.
	done := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].expectKey = true
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	prev := int64(0)
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		end := dec.InputOffset()
		raw := data[prev:end]
		prev = end
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, frame{expectKey: true})
			case '[':
				stack = append(stack, frame{array: true})
			default:
				stack = stack[:len(stack)-1]
				done()
			}
		case string:
			n := len(stack)
			isKey := n > 0 && !stack[n-1].array && stack[n-1].expectKey
			if !validJSONText(raw) {
				name := path("")
				if isKey {
					name = path(strings.ReplaceAll(t, "\uFFFD", "?"))
				}
				return &weir.FieldError{Field: name, Reason: "is not valid UTF-8 (the JSON API carries text: invalid bytes or an unpaired surrogate escape would be folded into U+FFFD, making distinct keys share a bucket)"}
			}
			if isKey {
				stack[n-1].key, stack[n-1].expectKey = t, false
				continue
			}
			done()
		default:
			done()
		}
	}
}

// validJSONText reports whether the raw bytes of one JSON string token
// (with whatever separators precede it) are valid UTF-8 with every \u
// escape of a surrogate paired.
func validJSONText(raw []byte) bool {
	if !utf8.Valid(raw) {
		return false
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if i+1 < len(raw) && raw[i+1] != 'u' {
			i++
			continue
		}
		r, ok := hex4(raw, i+2)
		if !ok {
			return true // malformed: the decoder says so
		}
		i += 5
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if i+6 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
				return false
			}
			lo, ok := hex4(raw, i+3)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			i += 6
		case r >= 0xDC00 && r <= 0xDFFF:
			return false
		}
	}
	return true
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
