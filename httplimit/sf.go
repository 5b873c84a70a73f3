package httplimit

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// A small, strict subset of RFC 9651 Structured Field Values: enough to
// write the RateLimit fields and to read the List and Dictionary forms the
// drafts use. Parsing follows the RFC's algorithms; anything outside the
// subset (Dates, Display Strings) is an error, and per the draft a client
// ignores a field it cannot parse.

// sfKind is the type of a bare item.
type sfKind uint8

const (
	sfInteger sfKind = iota + 1
	sfDecimal
	sfString
	sfToken
	sfBytes
	sfBool
	sfInner // an inner list; its members are not kept
)

// sfItem is a bare item with its parameters.
type sfItem struct {
	kind   sfKind
	num    int64   // sfInteger, sfBool (0/1)
	dec    float64 // sfDecimal
	str    string  // sfString, sfToken, sfBytes (decoded)
	params []sfParam
}

type sfParam struct {
	key string
	val sfItem // no params of its own
}

// param returns the parameter named key.
func (it *sfItem) param(key string) (sfItem, bool) {
	for _, p := range it.params {
		if p.key == key {
			return p.val, true
		}
	}
	return sfItem{}, false
}

// sfDictMember is one member of a Dictionary.
type sfDictMember struct {
	key string
	val sfItem
}

var errSF = errors.New("malformed structured field")

type sfParser struct {
	s string
	i int
}

func (p *sfParser) skipSP() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *sfParser) eof() bool { return p.i >= len(p.s) }

// parseSFList parses the combined field value of a List (field lines joined
// with ", ").
func parseSFList(s string) ([]sfItem, error) {
	p := &sfParser{s: s}
	p.skipSP()
	var out []sfItem
	for !p.eof() {
		it, err := p.itemOrInner()
		if err != nil {
			return nil, err
		}
		out = append(out, it)
		p.skipOWS()
		if p.eof() {
			return out, nil
		}
		if p.s[p.i] != ',' {
			return nil, errSF
		}
		p.i++
		p.skipOWS()
		if p.eof() {
			return nil, errSF // trailing comma
		}
	}
	return out, nil
}

// parseSFDict parses a Dictionary.
func parseSFDict(s string) ([]sfDictMember, error) {
	p := &sfParser{s: s}
	p.skipSP()
	var out []sfDictMember
	for !p.eof() {
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		var v sfItem
		if !p.eof() && p.s[p.i] == '=' {
			p.i++
			if v, err = p.itemOrInner(); err != nil {
				return nil, err
			}
		} else {
			v = sfItem{kind: sfBool, num: 1}
			if v.params, err = p.params(); err != nil {
				return nil, err
			}
		}
		out = setSFMember(out, key, v)
		p.skipOWS()
		if p.eof() {
			return out, nil
		}
		if p.s[p.i] != ',' {
			return nil, errSF
		}
		p.i++
		p.skipOWS()
		if p.eof() {
			return nil, errSF
		}
	}
	return out, nil
}

// setSFMember sets key to v in a Dictionary: a key seen before keeps its
// place and takes the later value (RFC 9651 4.2.2).
func setSFMember(d []sfDictMember, key string, v sfItem) []sfDictMember {
	for i := range d {
		if d[i].key == key {
			d[i].val = v
			return d
		}
	}
	return append(d, sfDictMember{key, v})
}

func (p *sfParser) itemOrInner() (sfItem, error) {
	if !p.eof() && p.s[p.i] == '(' {
		p.i++
		for {
			p.skipSP()
			if p.eof() {
				return sfItem{}, errSF
			}
			if p.s[p.i] == ')' {
				p.i++
				break
			}
			if _, err := p.item(); err != nil {
				return sfItem{}, err
			}
			if p.eof() || (p.s[p.i] != ' ' && p.s[p.i] != ')') {
				return sfItem{}, errSF
			}
		}
		ps, err := p.params()
		return sfItem{kind: sfInner, params: ps}, err
	}
	return p.item()
}

func (p *sfParser) item() (sfItem, error) {
	it, err := p.bare()
	if err != nil {
		return it, err
	}
	it.params, err = p.params()
	return it, err
}

func (p *sfParser) params() ([]sfParam, error) {
	var ps []sfParam
	for !p.eof() && p.s[p.i] == ';' {
		p.i++
		p.skipSP()
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		v := sfItem{kind: sfBool, num: 1}
		if !p.eof() && p.s[p.i] == '=' {
			p.i++
			if v, err = p.bare(); err != nil {
				return nil, err
			}
		}
		// A later parameter with the same key overrides the earlier one.
		replaced := false
		for j := range ps {
			if ps[j].key == k {
				ps[j].val, replaced = v, true
			}
		}
		if !replaced {
			ps = append(ps, sfParam{k, v})
		}
	}
	return ps, nil
}

func (p *sfParser) key() (string, error) {
	start := p.i
	if p.eof() || !(isLCAlpha(p.s[p.i]) || p.s[p.i] == '*') {
		return "", errSF
	}
	p.i++
	for !p.eof() {
		c := p.s[p.i]
		if !(isLCAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) bare() (sfItem, error) {
	if p.eof() {
		return sfItem{}, errSF
	}
	switch c := p.s[p.i]; {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		return p.str()
	case c == '*' || isAlpha(c):
		return p.token(), nil
	case c == ':':
		return p.bytes()
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			it := sfItem{kind: sfBool, num: int64(p.s[p.i+1] - '0')}
			p.i += 2
			return it, nil
		}
	}
	return sfItem{}, errSF
}

func (p *sfParser) number() (sfItem, error) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	if p.eof() || !isDigit(p.s[p.i]) {
		return sfItem{}, errSF
	}
	intDigits, fracDigits, dot := 0, 0, false
	for ; !p.eof(); p.i++ {
		c := p.s[p.i]
		if isDigit(c) && !dot {
			intDigits++
		} else if isDigit(c) {
			fracDigits++
		} else if c == '.' && !dot {
			dot = true
		} else {
			break
		}
	}
	text := p.s[start:p.i]
	if !dot {
		if intDigits > 15 {
			return sfItem{}, errSF
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return sfItem{}, errSF
		}
		return sfItem{kind: sfInteger, num: n}, nil
	}
	if intDigits > 12 || fracDigits == 0 || fracDigits > 3 {
		return sfItem{}, errSF
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return sfItem{}, errSF
	}
	return sfItem{kind: sfDecimal, dec: f}, nil
}

func (p *sfParser) str() (sfItem, error) {
	p.i++ // opening quote
	var b strings.Builder
	start := p.i
	for !p.eof() {
		c := p.s[p.i]
		switch {
		case c == '\\':
			if p.i+1 >= len(p.s) || (p.s[p.i+1] != '"' && p.s[p.i+1] != '\\') {
				return sfItem{}, errSF
			}
			b.WriteString(p.s[start:p.i])
			b.WriteByte(p.s[p.i+1])
			p.i += 2
			start = p.i
		case c == '"':
			b.WriteString(p.s[start:p.i])
			p.i++
			return sfItem{kind: sfString, str: b.String()}, nil
		case c < 0x20 || c > 0x7e:
			return sfItem{}, errSF
		default:
			p.i++
		}
	}
	return sfItem{}, errSF // unterminated
}

func (p *sfParser) token() sfItem {
	start := p.i
	p.i++
	for !p.eof() && (isTChar(p.s[p.i]) || p.s[p.i] == ':' || p.s[p.i] == '/') {
		p.i++
	}
	return sfItem{kind: sfToken, str: p.s[start:p.i]}
}

func (p *sfParser) bytes() (sfItem, error) {
	p.i++
	end := strings.IndexByte(p.s[p.i:], ':')
	if end < 0 {
		return sfItem{}, errSF
	}
	raw := p.s[p.i : p.i+end]
	p.i += end + 1
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return sfItem{}, errSF
	}
	return sfItem{kind: sfBytes, str: string(b)}, nil
}

func isDigit(c byte) bool   { return '0' <= c && c <= '9' }
func isLCAlpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || 'A' <= c && c <= 'Z' }

// isTChar reports whether c is an RFC 9110 tchar.
func isTChar(c byte) bool {
	if isAlpha(c) || isDigit(c) {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validSFString reports whether s can be serialized as an sf-string:
// printable ASCII only.
func validSFString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// appendSFString appends s as an sf-string. s must satisfy validSFString.
func appendSFString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// sfMaxInt is the largest sf-integer (15 decimal digits).
const sfMaxInt = 999_999_999_999_999

// appendSFInt appends an sf-integer parameter ";key=n", clamping n to the
// range an sf-integer can hold.
func appendSFInt(b []byte, key string, n int64) []byte {
	b = append(b, ';')
	b = append(b, key...)
	b = append(b, '=')
	return strconv.AppendInt(b, min(max(n, -sfMaxInt), sfMaxInt), 10)
}
