package httplimit

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/weir-go/weir"
)

// A KeyFunc names the client a request counts against: a user, an API
// key, an address. It returns an error matching [ErrNoKey] when the request
// carries nothing to key it by; the middleware then answers with its
// unkeyed handler and never consults the store.
//
// Keys of the built-in functions carry a prefix ("user:", "ip:", the header
// name) so that they never collide when combined with [FirstOf].
type KeyFunc func(r *http.Request) (string, error)

// Errors of the key functions.
var (
	// ErrNoKey is matched by every error of a KeyFunc that could not key
	// the request: missing credentials, a missing header, an address that
	// does not parse, a key that is too long.
	ErrNoKey = errors.New("httplimit: cannot identify the client")
	// ErrNoCredentials is matched (together with ErrNoKey) when a request
	// has no basic-auth credentials. The default unkeyed handler answers
	// it with 401 and a WWW-Authenticate challenge.
	ErrNoCredentials = errors.New("httplimit: no basic-auth credentials")
)

// keyError is an ErrNoKey with a reason.
type keyError struct {
	reason string
	err    error // a more specific sentinel, or nil
}

// Error says why the request could not be keyed.
func (e *keyError) Error() string { return ErrNoKey.Error() + ": " + e.reason }

// Is reports whether target is ErrNoKey or the more specific sentinel.
func (e *keyError) Is(target error) bool { return target == ErrNoKey || target == e.err }

func noKey(format string, args ...any) error {
	return &keyError{reason: fmt.Sprintf(format, args...)}
}

// BasicAuthUser keys a request by its basic-auth user name: "user:NAME".
// It does not check the password: put it behind the handler that
// authenticates, or a client can spread its traffic over made-up names.
// A request without credentials gets an error matching [ErrNoCredentials].
func BasicAuthUser() KeyFunc {
	return func(r *http.Request) (string, error) {
		user, _, ok := r.BasicAuth()
		if !ok || user == "" {
			return "", &keyError{reason: "no basic-auth user", err: ErrNoCredentials}
		}
		return "user:" + user, nil
	}
}

// Header keys a request by the first value of the named header, such as
// an API key: "x-api-key:VALUE" (the lower-cased name, a colon, the
// trimmed value). A request without the header, or with an empty value,
// gets an error matching [ErrNoKey].
func Header(name string) KeyFunc {
	canon := http.CanonicalHeaderKey(name)
	prefix := strings.ToLower(canon) + ":"
	return func(r *http.Request) (string, error) {
		vs := r.Header[canon]
		if len(vs) == 0 {
			return "", noKey("no %s header", canon)
		}
		v := strings.TrimSpace(vs[0])
		if v == "" {
			return "", noKey("empty %s header", canon)
		}
		return prefix + v, nil
	}
}

// FirstOf keys a request by the first of fs that can: for example
// FirstOf(BasicAuthUser(), RemoteIP()) limits signed-in users by name and
// everyone else by address. When none can, the last error is returned.
func FirstOf(fs ...KeyFunc) KeyFunc {
	return func(r *http.Request) (string, error) {
		err := noKey("no key function")
		for _, f := range fs {
			k, e := f(r)
			if e == nil {
				return k, nil
			}
			err = e
		}
		return "", err
	}
}

// RemoteIP keys a request by the address of its direct peer
// (http.Request.RemoteAddr), IPv6 grouped by /64: ClientIP with a zero
// IPConfig. Forwarding headers are ignored. It is the middleware's default.
func RemoteIP() KeyFunc {
	f, _ := ClientIP(IPConfig{})
	return f
}

// IPConfig configures [ClientIP]. The zero value trusts no proxy.
type IPConfig struct {
	// TrustedProxies are the addresses (CIDR prefixes such as
	// "10.0.0.0/8", or single addresses) of the reverse proxies in front of
	// the server. Only a request whose direct peer is one of them has its
	// forwarding header read. Empty (the default): the header is never read.
	TrustedProxies []string
	// Header is the forwarding header to read: "X-Forwarded-For" (the
	// default) or "Forwarded" (RFC 7239). Only one is ever read; the other
	// is ignored, so a client cannot play one against the other.
	Header string
	// IPv4Prefix groups IPv4 clients by this many leading bits. 0 means 32
	// (each address on its own).
	IPv4Prefix int
	// IPv6Prefix groups IPv6 clients by this many leading bits. 0 means 64:
	// one site's /64 is a single client, since a host can pick any address
	// in it. 128 keys each address on its own.
	IPv6Prefix int
}

// ClientIP returns a KeyFunc that keys a request by its client's address,
// "ip:ADDR" for an IPv4 address or an IPv6 address with a 128-bit prefix,
// "ip:PREFIX" otherwise (for example "ip:2001:db8:1:2::/64"). IPv4-mapped
// IPv6 addresses (::ffff:10.0.0.1) count as the IPv4 address.
//
// The client is the direct peer, unless the peer is a trusted proxy: then
// the forwarding header is walked from right to left, skipping trusted
// proxies, and the first address that is not one is the client. If every
// hop is trusted, the leftmost is the client. An entry that does not parse
// before the client is found (a broken proxy chain) is an error matching
// [ErrNoKey]: such a request is refused rather than guessed at.
//
// X-Real-IP, True-Client-IP and the like are never read.
func ClientIP(c IPConfig) (KeyFunc, error) {
	cfg := ipKeyer{v4: c.IPv4Prefix, v6: c.IPv6Prefix}
	if cfg.v4 == 0 {
		cfg.v4 = 32
	}
	if cfg.v6 == 0 {
		cfg.v6 = 64
	}
	if cfg.v4 < 1 || cfg.v4 > 32 {
		return nil, &weir.FieldError{Field: "IPConfig.IPv4Prefix", Reason: fmt.Sprintf("%d is not in 1..32", c.IPv4Prefix)}
	}
	if cfg.v6 < 1 || cfg.v6 > 128 {
		return nil, &weir.FieldError{Field: "IPConfig.IPv6Prefix", Reason: fmt.Sprintf("%d is not in 1..128", c.IPv6Prefix)}
	}
	switch strings.ToLower(c.Header) {
	case "", "x-forwarded-for":
		cfg.header = http.CanonicalHeaderKey("X-Forwarded-For")
	case "forwarded":
		cfg.header = "Forwarded"
		cfg.rfc7239 = true
	default:
		return nil, &weir.FieldError{Field: "IPConfig.Header", Reason: fmt.Sprintf("%q is not X-Forwarded-For or Forwarded", c.Header)}
	}
	for i, s := range c.TrustedProxies {
		s = strings.TrimSpace(s)
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, &weir.FieldError{Field: fmt.Sprintf("IPConfig.TrustedProxies[%d]", i), Reason: fmt.Sprintf("%q is not an address or CIDR prefix", s)}
		}
		p = p.Masked()
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		cfg.trusted = append(cfg.trusted, p)
	}
	return cfg.key, nil
}

type ipKeyer struct {
	trusted []netip.Prefix
	header  string
	rfc7239 bool
	v4, v6  int
}

func (c *ipKeyer) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (c *ipKeyer) key(r *http.Request) (string, error) {
	a, err := c.clientAddr(r)
	if err != nil {
		return "", err
	}
	var buf [64]byte
	b := append(buf[:0], "ip:"...)
	if a.Is4() {
		if c.v4 == 32 {
			return string(a.AppendTo(b)), nil
		}
		p, _ := a.Prefix(c.v4)
		return string(p.AppendTo(b)), nil
	}
	if c.v6 == 128 {
		return string(a.AppendTo(b)), nil
	}
	p, _ := a.Prefix(c.v6)
	return string(p.AppendTo(b)), nil
}

// clientAddr finds the client's address, unmapped and without zone.
func (c *ipKeyer) clientAddr(r *http.Request) (netip.Addr, error) {
	peer, ok := parseHost(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, noKey("RemoteAddr %q is not an address", r.RemoteAddr)
	}
	if len(c.trusted) == 0 || !c.isTrusted(peer) {
		return peer, nil
	}
	lines := r.Header[c.header]
	client := peer
	// Walk field lines, and entries within each, from right to left.
	for li := len(lines) - 1; li >= 0; li-- {
		line := lines[li]
		for end := len(line); end >= 0; {
			start := lastComma(line[:end], c.rfc7239) + 1
			entry := strings.TrimSpace(line[start:end])
			end = start - 1
			if entry == "" {
				continue
			}
			var a netip.Addr
			var ok bool
			if c.rfc7239 {
				a, ok = forwardedFor(entry)
			} else {
				a, ok = parseHost(entry)
			}
			if !ok {
				return netip.Addr{}, noKey("malformed %s entry %q behind trusted proxy %v", c.header, truncate(entry), client)
			}
			if !c.isTrusted(a) {
				return a, nil
			}
			client = a
		}
	}
	return client, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// lastComma is the index of the last comma of s outside double quotes
// (quotes matter only for Forwarded), or -1.
func lastComma(s string, quoted bool) int {
	if !quoted {
		return strings.LastIndexByte(s, ',')
	}
	in := false
	last := -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			in = !in
		case '\\':
			if in {
				i++
			}
		case ',':
			if !in {
				last = i
			}
		}
	}
	return last
}

// parseHost parses "ADDR", "ADDR:PORT" or "[ADDR]:PORT" into an unmapped
// address without zone.
func parseHost(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return norm(ap.Addr()), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return norm(a), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return norm(a), true
		}
	}
	return netip.Addr{}, false
}

func norm(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// forwardedFor returns the address in the for= parameter of one Forwarded
// element: for=192.0.2.60;proto=http, for="[2001:db8::17]:4711".
// Obfuscated identifiers and "unknown" do not parse.
func forwardedFor(elem string) (netip.Addr, bool) {
	for elem != "" {
		var pair string
		i := semicolon(elem)
		if i < 0 {
			pair, elem = elem, ""
		} else {
			pair, elem = elem[:i], elem[i+1:]
		}
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "for") {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = strings.ReplaceAll(v[1:len(v)-1], `\`, "")
		}
		return parseHost(v)
	}
	return netip.Addr{}, false
}

// semicolon is the index of the first ';' outside double quotes, or -1.
func semicolon(s string) int {
	in := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			in = !in
		case '\\':
			if in {
				i++
			}
		case ';':
			if !in {
				return i
			}
		}
	}
	return -1
}
