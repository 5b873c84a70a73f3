package httpapi

import (
	"unicode/utf8"
)

// decodeFast decodes the common shape of a check body without reflection:
// one object whose members are "policy", "key" and "lease" (plain strings:
// no escapes, no control characters, valid UTF-8) and "cost" (an integer
// in canonical form). Anything else, including every malformed input,
// reports ok false and the caller falls back to encoding/json, which gives
// the precise error. When ok, the result equals encoding/json's (the
// differential fuzz test FuzzDecodeFast checks it). A member given twice
// also reports ok false: the strict decoder refuses it.
func decodeFast(data []byte, out *checkBody) (ok bool) {
	var seen uint8
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		return skipWS(data, i+1) == len(data)
	}
	for {
		var name []byte
		if name, i, ok = plainString(data, i); !ok {
			return false
		}
		i = skipWS(data, i)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipWS(data, i+1)
		bit := uint8(0)
		switch string(name) {
		case "policy":
			bit = 1
		case "key":
			bit = 2
		case "lease":
			bit = 4
		case "cost":
			bit = 8
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		switch string(name) {
		case "policy", "key", "lease":
			var v []byte
			if v, i, ok = plainString(data, i); !ok {
				return false
			}
			switch string(name) {
			case "policy":
				out.Policy = string(v)
			case "key":
				out.Key = string(v)
			default:
				out.Lease = string(v)
			}
		case "cost":
			var n int64
			if n, i, ok = canonicalInt(data, i); !ok {
				return false
			}
			out.Cost = &n
		default:
			return false
		}
		i = skipWS(data, i)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = skipWS(data, i+1)
		case '}':
			return skipWS(data, i+1) == len(data)
		default:
			return false
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at b[i] that needs no unescaping.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	start := i + 1
	for j := start; j < len(b); j++ {
		c := b[j]
		switch {
		case c == '"':
			s := b[start:j]
			if !utf8.Valid(s) {
				return nil, i, false
			}
			return s, j + 1, true
		case c == '\\' || c < 0x20:
			return nil, i, false
		}
	}
	return nil, i, false
}

// canonicalInt reads -?(0|[1-9][0-9]*) that fits an int64 and is not
// followed by a fraction or exponent.
func canonicalInt(b []byte, i int) (int64, int, bool) {
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	start := i
	var n uint64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if i-start >= 18 {
			return 0, i, false // long numbers: leave overflow rules to encoding/json
		}
		n = n*10 + uint64(b[i]-'0')
		i++
	}
	if i == start || (b[start] == '0' && i-start > 1) {
		return 0, i, false
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return 0, i, false
	}
	v := int64(n)
	if neg {
		v = -v
	}
	return v, i, true
}
