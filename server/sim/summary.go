package sim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// String summarises r on one line: what was offered, admitted and denied;
// per limit its utilisation, the most units admitted for one key in any
// window of its Period (and the bound on it) and the denials it decided;
// and the RetryAfter distribution of the denials.
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: offered %d, admitted %d (%s), denied %d", r.Scenario, r.Offered, r.Admitted, pct(r.Admitted, r.Offered), r.Denied)
	if r.Rejected > 0 {
		fmt.Fprintf(&b, ", rejected %d (cost above capacity)", r.Rejected)
	}
	if r.Shadow {
		b.WriteString(" (shadow: the server would admit them all)")
	}
	for _, l := range r.Limits {
		most := strconv.FormatInt(l.MaxInWindow, 10)
		if l.MaxInWindow < 0 {
			most = "not tracked"
		}
		fmt.Fprintf(&b, "; [%s] utilisation %.1f%%, most in %s %s (bound %d), denied %d",
			l.Name, 100*l.Utilisation, periodName(l.Limit), most, l.WindowBound, l.DeniedBy)
	}
	if d := r.RetryAfter; d.Count > 0 {
		fmt.Fprintf(&b, "; retry after p50 %v, p90 %v, p99 %v, max %v", round(d.P50), round(d.P90), round(d.P99), round(d.Max))
	}
	return b.String()
}

func pct(a, b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(a)/float64(b))
}

// periodName returns the period part of a limit's text form: "s", "2m".
func periodName(limit string) string {
	q, _, _ := strings.Cut(limit, " ")
	_, per, _ := strings.Cut(q, "/")
	if per == "" {
		return "a period"
	}
	if per[0] < '0' || per[0] > '9' {
		return "1" + per
	}
	return per
}

// round shortens a duration for reading: 4 significant digits.
func round(d time.Duration) time.Duration {
	for m := time.Duration(1); m < time.Hour; m *= 10 {
		if d < 10000*m {
			return d.Round(m)
		}
	}
	return d.Round(time.Second)
}
