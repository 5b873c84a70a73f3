package httplimit

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/weir-go/weir"
)

func TestClientIP(t *testing.T) {
	trusted := []string{"10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.1"}
	tests := []struct {
		name   string
		cfg    IPConfig
		remote string
		hdr    map[string][]string
		want   string // "" means an ErrNoKey error
	}{
		{"peer v4", IPConfig{}, "203.0.113.7:4000", nil, "ip:203.0.113.7"},
		{"peer without port", IPConfig{}, "203.0.113.7", nil, "ip:203.0.113.7"},
		{"peer v6 grouped /64", IPConfig{}, "[2001:db8:1:2::10]:443", nil, "ip:2001:db8:1:2::/64"},
		{"peer v6 other host same /64", IPConfig{}, "[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", nil, "ip:2001:db8:1:2::/64"},
		{"peer v6 zone dropped", IPConfig{}, "[fe80::1%eth0]:443", nil, "ip:fe80::/64"},
		{"peer v6 /128", IPConfig{IPv6Prefix: 128}, "[2001:db8:1:2::10]:443", nil, "ip:2001:db8:1:2::10"},
		{"peer v6 /56", IPConfig{IPv6Prefix: 56}, "[2001:db8:1:2ff::10]:443", nil, "ip:2001:db8:1:200::/56"},
		{"peer v4 /24", IPConfig{IPv4Prefix: 24}, "203.0.113.7:1", nil, "ip:203.0.113.0/24"},
		{"4in6 peer is v4", IPConfig{}, "[::ffff:10.0.0.1]:80", nil, "ip:10.0.0.1"},
		{"bad peer", IPConfig{}, "@", nil, ""},
		{"empty peer", IPConfig{}, "", nil, ""},
		{"xff ignored without trusted proxies", IPConfig{}, "203.0.113.7:1", map[string][]string{"X-Forwarded-For": {"1.2.3.4"}}, "ip:203.0.113.7"},
		{"xff ignored from untrusted peer", IPConfig{TrustedProxies: trusted}, "203.0.113.7:1", map[string][]string{"X-Forwarded-For": {"1.2.3.4"}}, "ip:203.0.113.7"},
		{"xff from trusted peer", IPConfig{TrustedProxies: trusted}, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"1.2.3.4"}}, "ip:1.2.3.4"},
		{"xff rightmost untrusted", IPConfig{TrustedProxies: trusted}, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"6.6.6.6, 203.0.113.5, 10.9.9.9"}}, "ip:203.0.113.5"},
		{"xff over several lines", IPConfig{TrustedProxies: trusted}, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"6.6.6.6, 203.0.113.5", "10.1.1.1,10.2.2.2"}}, "ip:203.0.113.5"},
		{"xff all trusted: leftmost", IPConfig{TrustedProxies: trusted}, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"10.3.3.3, 10.2.2.2"}}, "ip:10.3.3.3"},
		{"xff absent: the proxy", IPConfig{TrustedProxies: trusted}, "10.0.0.1:1", nil, "ip:10.0.0.1"},
		{"xff garbage left of client is never read", IPConfig{TrustedProxies: trusted}, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"garbage, 203.0.113.5"}}, "ip:203.0.113.5"},
		{"xff garbage from trusted hop", IPConfig{TrustedProxies: trusted}, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"203.0.113.5, nonsense"}}, ""},
		{"xff with port", IPConfig{TrustedProxies: trusted}, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"203.0.113.5:8080"}}, "ip:203.0.113.5"},
		{"xff v6 grouped", IPConfig{TrustedProxies: trusted}, "[2001:db8:ffff::1]:1", map[string][]string{"X-Forwarded-For": {"2001:db8:1:2::99"}}, "ip:2001:db8:1:2::/64"},
		{"xff 4in6 normalised", IPConfig{TrustedProxies: trusted}, "192.0.2.1:1", map[string][]string{"X-Forwarded-For": {"::ffff:198.51.100.3"}}, "ip:198.51.100.3"},
		{"trusted as 4in6 peer", IPConfig{TrustedProxies: trusted}, "[::ffff:10.0.0.1]:1", map[string][]string{"X-Forwarded-For": {"198.51.100.3"}}, "ip:198.51.100.3"},
		{"empty xff entries skipped", IPConfig{TrustedProxies: trusted}, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {" , 198.51.100.3 ,"}}, "ip:198.51.100.3"},
		{"forwarded ignored when xff configured", IPConfig{TrustedProxies: trusted}, "10.0.0.1:1", map[string][]string{"Forwarded": {"for=1.2.3.4"}}, "ip:10.0.0.1"},
		{"xff ignored when forwarded configured", IPConfig{TrustedProxies: trusted, Header: "Forwarded"}, "10.0.0.1:1", map[string][]string{"X-Forwarded-For": {"1.2.3.4"}}, "ip:10.0.0.1"},
		{"forwarded", IPConfig{TrustedProxies: trusted, Header: "forwarded"}, "10.0.0.1:1", map[string][]string{"Forwarded": {`for=192.0.2.60;proto=http;by=203.0.113.43, for=198.51.100.17`}}, "ip:198.51.100.17"},
		{"forwarded v6 quoted with port", IPConfig{TrustedProxies: trusted, Header: "Forwarded"}, "10.0.0.1:1", map[string][]string{"Forwarded": {`for="[2001:db8:cafe::17]:4711"`}}, "ip:2001:db8:cafe::/64"},
		{"forwarded skips trusted", IPConfig{TrustedProxies: trusted, Header: "Forwarded"}, "10.0.0.1:1", map[string][]string{"Forwarded": {`for=198.51.100.17, For="10.1.2.3";proto=https`}}, "ip:198.51.100.17"},
		{"forwarded quoted comma", IPConfig{TrustedProxies: trusted, Header: "Forwarded"}, "10.0.0.1:1", map[string][]string{"Forwarded": {`for=198.51.100.17;ext="a,b"`}}, "ip:198.51.100.17"},
		{"forwarded obfuscated", IPConfig{TrustedProxies: trusted, Header: "Forwarded"}, "10.0.0.1:1", map[string][]string{"Forwarded": {`for=_hidden`}}, ""},
		{"forwarded unknown", IPConfig{TrustedProxies: trusted, Header: "Forwarded"}, "10.0.0.1:1", map[string][]string{"Forwarded": {`for=unknown`}}, ""},
		{"forwarded without for", IPConfig{TrustedProxies: trusted, Header: "Forwarded"}, "10.0.0.1:1", map[string][]string{"Forwarded": {`proto=https`}}, ""},
		{"real-ip never read", IPConfig{TrustedProxies: trusted}, "10.0.0.1:1", map[string][]string{"X-Real-Ip": {"1.2.3.4"}, "True-Client-Ip": {"1.2.3.4"}}, "ip:10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ClientIP(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for k, v := range tt.hdr {
				r.Header[http.CanonicalHeaderKey(k)] = v
			}
			got, err := f(r)
			if tt.want == "" {
				if !errors.Is(err, ErrNoKey) {
					t.Fatalf("key = %q, %v; want an ErrNoKey error", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("key = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestClientIPConfigErrors(t *testing.T) {
	tests := []struct {
		cfg   IPConfig
		field string
	}{
		{IPConfig{IPv4Prefix: 33}, "IPConfig.IPv4Prefix"},
		{IPConfig{IPv4Prefix: -1}, "IPConfig.IPv4Prefix"},
		{IPConfig{IPv6Prefix: 129}, "IPConfig.IPv6Prefix"},
		{IPConfig{Header: "X-Real-IP"}, "IPConfig.Header"},
		{IPConfig{TrustedProxies: []string{"10.0.0.0/8", "10.0.0.300"}}, "IPConfig.TrustedProxies[1]"},
		{IPConfig{TrustedProxies: []string{"10.0.0.0/33"}}, "IPConfig.TrustedProxies[0]"},
	}
	for _, tt := range tests {
		_, err := ClientIP(tt.cfg)
		var fe *weir.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, weir.ErrInvalid) {
			t.Errorf("ClientIP(%+v) error = %v, want a FieldError for %s", tt.cfg, err, tt.field)
		}
	}
}

func TestHeaderAndBasicAuthKeys(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	if _, err := Header("X-API-Key")(r); !errors.Is(err, ErrNoKey) {
		t.Fatalf("missing header: err = %v", err)
	}
	r.Header.Set("X-Api-Key", "  ")
	if _, err := Header("x-api-key")(r); !errors.Is(err, ErrNoKey) {
		t.Fatalf("blank header: err = %v", err)
	}
	r.Header.Set("X-Api-Key", " k1 ")
	if k, err := Header("x-api-key")(r); k != "x-api-key:k1" || err != nil {
		t.Fatalf("header key = %q, %v", k, err)
	}
	if _, err := BasicAuthUser()(r); !errors.Is(err, ErrNoCredentials) || !errors.Is(err, ErrNoKey) {
		t.Fatalf("no credentials: err = %v", err)
	}
	r.SetBasicAuth("alice", "pw")
	if k, err := BasicAuthUser()(r); k != "user:alice" || err != nil {
		t.Fatalf("basic auth key = %q, %v", k, err)
	}
	first := FirstOf(Header("X-Token"), BasicAuthUser(), RemoteIP())
	if k, _ := first(r); k != "user:alice" {
		t.Fatalf("FirstOf = %q, want the basic-auth user", k)
	}
	r2 := httptest.NewRequest("GET", "/", nil)
	r2.RemoteAddr = "198.51.100.1:5"
	if k, _ := first(r2); k != "ip:198.51.100.1" {
		t.Fatalf("FirstOf = %q, want the address", k)
	}
	if _, err := FirstOf()(r2); !errors.Is(err, ErrNoKey) {
		t.Fatalf("empty FirstOf: err = %v", err)
	}
}

// S1: a client behind no trusted proxy cannot pick its key with
// X-Forwarded-For, nor spend someone else's quota.
func TestSpoofedForwardedFor(t *testing.T) {
	store := newStore()
	lim := mustLimiter(t, store, weir.PerHour(10).WithName("h"))
	key, err := ClientIP(IPConfig{TrustedProxies: []string{"10.0.0.0/8"}})
	if err != nil {
		t.Fatal(err)
	}
	h := mustNew(t, Policy{Limiter: lim, Key: key}).Handler(okHandler)

	admitted := 0
	for i := range 1000 {
		xff := fmt.Sprintf("%d.%d.%d.%d, 10.0.0.%d", 1+i%200, i/200, i%7, i%251, i%250)
		if i%2 == 0 {
			xff = "203.0.113.9" // pinned to the victim
		}
		rec := do(h, "GET", "/", "198.51.100.66:40000", http.Header{"X-Forwarded-For": {xff}})
		if rec.Code == http.StatusOK {
			admitted++
		}
	}
	if admitted != 10 {
		t.Fatalf("untrusted peer rotating X-Forwarded-For got %d admitted, want 10 (one bucket)", admitted)
	}
	// The victim's own bucket is untouched.
	for i := range 10 {
		if rec := do(h, "GET", "/", "203.0.113.9:1", nil); rec.Code != http.StatusOK {
			t.Fatalf("victim request %d: status %d, want 200", i, rec.Code)
		}
	}
	// Through the trusted proxy, the rightmost untrusted hop is the client:
	// the victim's bucket is now empty, the spoofed leftmost entry is not it.
	rec := do(h, "GET", "/", "10.1.1.1:1", http.Header{"X-Forwarded-For": {"1.1.1.1, 203.0.113.9, 10.2.2.2"}})
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("via trusted proxy for the victim: status %d, want 429", rec.Code)
	}
	rec = do(h, "GET", "/", "10.1.1.1:1", http.Header{"X-Forwarded-For": {"203.0.113.9, 1.1.1.1, 10.2.2.2"}})
	if rec.Code != http.StatusOK {
		t.Fatalf("via trusted proxy for 1.1.1.1: status %d, want 200", rec.Code)
	}
}

// S2: an IPv6 host cannot escape its limit by rotating addresses in its
// /64, and a mapped IPv4 address is the IPv4 address.
func TestIPv6Grouping(t *testing.T) {
	store := newStore()
	lim := mustLimiter(t, store, weir.PerHour(5).WithName("h"))
	h := mustNew(t, Policy{Limiter: lim}).Handler(okHandler)
	admitted := 0
	for i := range 100 {
		rec := do(h, "GET", "/", fmt.Sprintf("[2001:db8:1:2::%x]:443", 0x10+i), nil)
		if rec.Code == http.StatusOK {
			admitted++
		}
	}
	if admitted != 5 {
		t.Fatalf("100 addresses of one /64 got %d admitted, want 5", admitted)
	}
	if rec := do(h, "GET", "/", "[2001:db8:1:3::10]:443", nil); rec.Code != http.StatusOK {
		t.Fatalf("another /64: status %d, want 200", rec.Code)
	}
	for i := range 5 {
		addr := "10.0.0.1:1"
		if i%2 == 1 {
			addr = "[::ffff:10.0.0.1]:1"
		}
		if rec := do(h, "GET", "/", addr, nil); rec.Code != http.StatusOK {
			t.Fatalf("request %d from 10.0.0.1: status %d", i, rec.Code)
		}
	}
	if rec := do(h, "GET", "/", "[::ffff:10.0.0.1]:2", nil); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("::ffff:10.0.0.1 after 5 requests of 10.0.0.1: status %d, want 429", rec.Code)
	}
}

func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "1.2.3.4, 10.0.0.2", "[::1]:80, ,", `for="[2001:db8::1]:1";by=x, for=10.0.0.3`, `"\`, ",,,", "for=\"a,b\\\"c\""} {
		f.Add(s, false)
		f.Add(s, true)
	}
	keyXFF, _ := ClientIP(IPConfig{TrustedProxies: []string{"10.0.0.0/8", "::1/128"}})
	keyFwd, _ := ClientIP(IPConfig{TrustedProxies: []string{"10.0.0.0/8", "::1/128"}, Header: "Forwarded"})
	f.Fuzz(func(t *testing.T, v string, fwd bool) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.0.0.1:1"
		r.Header["X-Forwarded-For"] = []string{v}
		r.Header["Forwarded"] = []string{v}
		key := keyXFF
		if fwd {
			key = keyFwd
		}
		start := time.Now()
		k, err := key(r)
		if err == nil && (len(k) < 4 || k[:3] != "ip:") {
			t.Fatalf("key %q for %q", k, v)
		}
		if err != nil && !errors.Is(err, ErrNoKey) {
			t.Fatalf("error %v does not match ErrNoKey", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("took %v", d)
		}
	})
}
