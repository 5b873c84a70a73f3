package httpapi

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/weir-go/weir"
)

// TestInvalidUTF8Refused (issue 16.3): a string that encoding/json would fold
// into U+FFFD is a 400 naming its field, never a decision.
func TestInvalidUTF8Refused(t *testing.T) {
	tests := []struct{ body, field string }{
		{"{\"policy\":\"api\",\"key\":\"u\xff\"}", "key"},
		{`{"policy":"api","key":"u\udcff"}`, "key"},
		{`{"policy":"api","key":"u\ud800x"}`, "key"},
		{`{"policy":"api","key":"u\ud800\u0041"}`, "key"},
		{"{\"policy\":\"a\xfe\",\"key\":\"u\"}", "policy"},
		{"{\"policy\":\"t\",\"key\":\"k\",\"fields\":{\"tenant\":\"a\xc3\"}}", "fields.tenant"},
		{"{\"policy\":\"t\",\"key\":\"k\",\"fields\":{\"ten\xffant\":\"a\"}}", "fields.ten?ant"},
		{"[{\"policy\":\"api\",\"key\":\"a\"},{\"policy\":\"api\",\"key\":\"\xff\"}]", "checks[1].key"},
		{"[{\"policy\":\"t\",\"key\":\"a\",\"fields\":{\"x\":\"1\"}},{\"policy\":\"t\",\"key\":\"b\",\"fields\":{\"tenant\":\"\\udfff\"}}]", "checks[1].fields.tenant"},
	}
	h := newHandler(t, nil)
	for _, tt := range tests {
		w := serve(h, "POST", "/v1/check", tt.body)
		if want := fmt.Sprintf(`"field":%q`, tt.field); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), want) {
			t.Errorf("%q: %d %s, want 400 naming %s", tt.body, w.Code, w.Body, tt.field)
		}
	}
	// Valid text, escaped or not, still passes.
	for _, body := range []string{
		`{"policy":"api","key":"\ud83d\ude00"}`, "{\"policy\":\"api\",\"key\":\"\xf0\x9f\x98\x80\"}",
		`{"policy":"api","key":"\ufffd"}`, `{"policy":"api","key":"a\\udcff"}`, `{"policy":"api","key":"é\n"}`,
	} {
		if w := serve(h, "POST", "/v1/check", body); w.Code != http.StatusOK {
			t.Errorf("%q: %d %s, want 200", body, w.Code, w.Body)
		}
	}
}

// TestDecodedKeysNeverFold: random keys of raw bytes and \u escapes
// (valid, unpaired surrogates, pairs) either decode to exactly the text
// they stand for or are refused naming "key"; so two distinct texts never
// decode to one key (different escapes of one text are the same text).
func TestDecodedKeysNeverFold(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 16))
	seen := map[string]string{}
	for range 20000 {
		var body, want strings.Builder
		valid := true
		for range 1 + r.IntN(6) {
			switch r.IntN(5) {
			case 0: // one raw byte, possibly not UTF-8 on its own
				c := byte(0x20 + r.IntN(0xe0))
				if c == '"' || c == '\\' {
					c = 'q'
				}
				body.WriteByte(c)
				want.WriteByte(c)
				if c >= 0x80 {
					valid = false
				}
			case 1: // a whole rune, raw
				c := rune(0x80 + r.IntN(0x3000))
				body.WriteRune(c)
				want.WriteRune(c)
			case 2: // an unpaired surrogate escape: a low one, or a high one before 'x'
				if r.IntN(2) == 0 {
					fmt.Fprintf(&body, `\u%04x`, 0xdc00+r.IntN(0x400))
				} else {
					fmt.Fprintf(&body, `\u%04X`, 0xd800+r.IntN(0x400))
					body.WriteByte('x')
				}
				valid = false
			case 3: // a surrogate pair
				c := rune(0x10000 + r.IntN(0x1000))
				hi, lo := 0xd800+(c-0x10000)>>10, 0xdc00+(c-0x10000)&0x3ff
				fmt.Fprintf(&body, `\u%04X\u%04x`, hi, lo)
				want.WriteRune(c)
			default: // an escaped ASCII letter
				c := 'a' + rune(r.IntN(26))
				fmt.Fprintf(&body, `\u%04x`, c)
				want.WriteRune(c)
			}
		}
		if valid && !utf8.ValidString(want.String()) {
			valid = false // raw bytes that happened to form no valid sequence
		}
		if !valid && utf8.ValidString(body.String()) && !strings.Contains(body.String(), `\u`) {
			valid = true
		}
		in := `{"policy":"api","key":"` + body.String() + `"}`
		one, _, err := DecodeCheck([]byte(in), false)
		if err != nil {
			var fe *weir.FieldError
			if !errors.As(err, &fe) || fe.Field != "key" {
				t.Fatalf("%q: %v, want an error naming key", in, err)
			}
			if valid {
				t.Fatalf("%q: refused valid text: %v", in, err)
			}
			continue
		}
		if one.Key != want.String() {
			t.Fatalf("%q decoded to %q, want %q", in, one.Key, want.String())
		}
		if prev, ok := seen[one.Key]; ok && prev != want.String() {
			t.Fatalf("texts %q and %q both decode to %q", prev, want.String(), one.Key)
		}
		seen[one.Key] = want.String()
	}
}
