package httplimit

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/weir-go/weir"
)

func TestPolicyOf(t *testing.T) {
	tests := []struct {
		limit weir.Limit
		want  string
	}{
		{weir.PerSecond(100).WithName("api"), `"api";q=100;w=1`},
		{weir.PerMinute(60).WithName("m"), `"m";q=60;w=60`},
		{weir.PerDay(1000).WithName("daily"), `"daily";q=1000;w=86400`},
		{weir.PerSecond(10).WithBurst(50).WithName("tb"), `"tb";q=10;w=1`},
		{weir.Per(10, 100*time.Millisecond).WithName("fast"), `"fast";q=100;w=1`},
		{weir.Per(3, 1500*time.Millisecond).WithName("odd"), `"odd";q=6;w=3`},
		{weir.Per(5, time.Minute).WithAlgorithm(weir.FixedWindow).WithName("fw"), `"fw";q=5;w=60`},
		{weir.Per(5, time.Minute).WithAlgorithm(weir.SlidingWindowLog), `"5/m algo=sliding-log";q=5;w=60`},
		{weir.Concurrent(4, time.Minute).WithName("conc"), `"conc";q=4;qu="concurrent-requests"`},
		{weir.Per(7, time.Microsecond).WithName("tiny"), `"tiny";q=7000000;w=1`},
		{weir.Per(1<<62, time.Microsecond).WithName("huge"), `"huge";q=999999999999999`},
		{weir.PerSecond(1).WithName(`q"uote\`), `"q\"uote\\";q=1;w=1`},
	}
	for _, tt := range tests {
		got := string(AppendPolicy(nil, PolicyOf(tt.limit)))
		if got != tt.want {
			t.Errorf("PolicyOf(%v) = %s, want %s", tt.limit, got, tt.want)
		}
	}
}

func TestAppendStatus(t *testing.T) {
	tests := []struct {
		s    QuotaStatus
		want string
	}{
		{QuotaStatus{Name: "a", Remaining: 42, Reset: 17 * time.Second, HasReset: true}, `"a";r=42;t=17`},
		{QuotaStatus{Name: "a", Remaining: 0, Reset: 1, HasReset: true}, `"a";r=0;t=1`},
		{QuotaStatus{Name: "a", Remaining: 3, Reset: 1500 * time.Millisecond, HasReset: true}, `"a";r=3;t=2`},
		{QuotaStatus{Name: "a", Remaining: -2, Reset: -time.Second, HasReset: true}, `"a";r=0;t=0`},
		{QuotaStatus{Name: "c", Remaining: 2}, `"c";r=2`},
		{QuotaStatus{Name: "é", Remaining: 1}, `"?";r=1`},
	}
	for _, tt := range tests {
		if got := string(AppendStatus(nil, tt.s)); got != tt.want {
			t.Errorf("AppendStatus(%+v) = %s, want %s", tt.s, got, tt.want)
		}
	}
}

func TestParsePolicies(t *testing.T) {
	tests := []struct {
		in      []string
		want    []QuotaPolicy
		wantErr bool
	}{
		{nil, nil, false},
		{[]string{`"burst";q=100;w=60,"daily";q=1000;w=86400`}, []QuotaPolicy{{Name: "burst", Quota: 100, Window: time.Minute}, {Name: "daily", Quota: 1000, Window: 24 * time.Hour}}, false},
		{[]string{`"permin";q=50;w=60`, `"perhr";q=1000;w=3600`}, []QuotaPolicy{{Name: "permin", Quota: 50, Window: time.Minute}, {Name: "perhr", Quota: 1000, Window: time.Hour}}, false},
		{[]string{`"peruser";q=65535;qu="content-bytes";w=10;pk=:sdfjLJUOUH==:`}, []QuotaPolicy{{Name: "peruser", Quota: 65535, Unit: "content-bytes", Window: 10 * time.Second}}, false},
		{[]string{`"peruser";q=100;w=60;pk=:cHsdsRa894==:`}, []QuotaPolicy{{Name: "peruser", Quota: 100, Window: time.Minute}}, false},
		{[]string{`"peruser";q=100;w=60;pk=:not base64:`}, nil, true},
		{[]string{`"peruser";q=100;w=60;pk=:dHJpYWwxMjEzMjM=:;acme-burst=5`}, []QuotaPolicy{{Name: "peruser", Quota: 100, Window: time.Minute}}, false},
		{[]string{`"c";q=4;qu="concurrent-requests"`}, []QuotaPolicy{{Name: "c", Quota: 4, Unit: "concurrent-requests"}}, false},
		{[]string{`100;w=60`}, []QuotaPolicy{{Quota: 100, Window: time.Minute}}, false}, // draft-07
		{[]string{`10, 10;w=1, 1000;w=3600`}, []QuotaPolicy{{Quota: 10}, {Quota: 10, Window: time.Second}, {Quota: 1000, Window: time.Hour}}, false},
		{[]string{`"a";w=60`}, nil, true},    // no q
		{[]string{`"a";q=-1`}, nil, true},    // negative q
		{[]string{`"a";q=1;w=0`}, nil, true}, // w must be positive
		{[]string{`"a";q=1;w=9223372036`}, []QuotaPolicy{{Name: "a", Quota: 1, Window: 9223372036 * time.Second}}, false},
		{[]string{`"a";q=1;w=9223372037`}, nil, true},   // longer than a time.Duration
		{[]string{`"a";q=1.5`}, nil, true},              // q must be an integer
		{[]string{`"a";q=1,`}, nil, true},               // trailing comma
		{[]string{`"a;q=1`}, nil, true},                 // unterminated string
		{[]string{`"a";q=1234567890123456`}, nil, true}, // 16 digits
		{[]string{`a;q=1`}, nil, true},                  // a token is not a name
	}
	for _, tt := range tests {
		h := http.Header{}
		for _, v := range tt.in {
			h.Add(HeaderRateLimitPolicy, v)
		}
		got, err := ParsePolicies(h)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParsePolicies(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(tt.want, got) {
			t.Errorf("ParsePolicies(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseRateLimit(t *testing.T) {
	tests := []struct {
		in      string
		want    []QuotaStatus
		wantErr bool
	}{
		{`"default";r=50;t=30`, []QuotaStatus{{Name: "default", Remaining: 50, Reset: 30 * time.Second, HasReset: true}}, false},
		{`"default";r=999;pk=:dHJpYWwxMjEzMjM=:`, []QuotaStatus{{Name: "default", Remaining: 999}}, false},
		{`"a";r=0;t=1, "b";r=7;t=86400`, []QuotaStatus{{Name: "a", Remaining: 0, Reset: time.Second, HasReset: true}, {Name: "b", Remaining: 7, Reset: 24 * time.Hour, HasReset: true}}, false},
		{`limit=100, remaining=50, reset=30`, []QuotaStatus{{Limit: 100, Remaining: 50, Reset: 30 * time.Second, HasReset: true}}, false}, // draft-07
		{`remaining=0`, []QuotaStatus{{Remaining: 0}}, false},
		// A reset beyond what a Duration holds saturates (it once wrapped negative).
		{`"a";r=0;t=999999999999999`, []QuotaStatus{{Name: "a", Reset: 9223372036 * time.Second, HasReset: true}}, false},
		{`remaining=0, reset=999999999999999`, []QuotaStatus{{Reset: 9223372036 * time.Second, HasReset: true}}, false},
		{`limit=100, reset=30`, nil, true}, // no remaining
		{`"a";t=3`, nil, true},             // no r
		{`"a";r=-1`, nil, true},
		{`"a";r=1;t=-3`, nil, true},
		{`"a";r=1;;t=3`, nil, true},
		{`"a" "b"`, nil, true},
		{"\"a\x01\";r=1", nil, true},
	}
	for _, tt := range tests {
		h := http.Header{}
		h.Set(HeaderRateLimit, tt.in)
		got, err := ParseRateLimit(h)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseRateLimit(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(tt.want, got) {
			t.Errorf("ParseRateLimit(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		ra, date string
		want     time.Duration
		ok       bool
	}{
		{"", "", 0, false},
		{"0", "", 0, true},
		{"120", "", 2 * time.Minute, true},
		{" 7 ", "", 7 * time.Second, true},
		{"-1", "", 0, false},
		{"soon", "", 0, false},
		{now.Add(30 * time.Second).Format(http.TimeFormat), "", 30 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), "", 0, true},
		// measured from the response's Date, not the local clock
		{now.Add(30 * time.Second).Format(http.TimeFormat), now.Add(20 * time.Second).Format(http.TimeFormat), 10 * time.Second, true},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.ra != "" {
			h.Set("Retry-After", tt.ra)
		}
		if tt.date != "" {
			h.Set("Date", tt.date)
		}
		got, ok := ParseRetryAfter(h, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRetryAfter(%q, Date %q) = %v, %v; want %v, %v", tt.ra, tt.date, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseFields(f *testing.F) {
	for _, s := range []string{
		`"burst";q=100;w=60,"daily";q=1000;w=86400`, `100;w=60`, `limit=100, remaining=50, reset=30`,
		`"a";r=0;t=1`, `(1 2);a, "x";y=?1;z=1.5`, `:aGVsbG8=:;p`, `"\"\\"`, `a=(b c), d`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h := http.Header{}
		h.Set(HeaderRateLimit, s)
		h.Set(HeaderRateLimitPolicy, s)
		ps, err := ParsePolicies(h)
		if err == nil {
			// What parses re-serializes and parses back to the same value.
			var b []byte
			for i, p := range ps {
				if p.Name == "" || !validSFString(p.Name) || !validSFString(p.Unit) {
					return
				}
				if i > 0 {
					b = append(b, ", "...)
				}
				b = AppendPolicy(b, p)
			}
			if len(b) > 0 {
				h2 := http.Header{}
				h2.Set(HeaderRateLimitPolicy, string(b))
				back, err := ParsePolicies(h2)
				if err != nil {
					t.Fatalf("%q re-serialized as %q does not parse: %v", s, b, err)
				}
				if !reflect.DeepEqual(ps, back) {
					t.Fatalf("%q round trip: %+v, then %+v", s, ps, back)
				}
			}
		}
		_, _ = ParseRateLimit(h)
	})
}
