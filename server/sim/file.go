package sim

import (
	"bufio"
	"fmt"
	"io"
	"iter"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Replay is traffic read from a file, replayed at the instants it records.
type Replay struct {
	name     string
	start    time.Time // the earliest timestamp
	arrivals []Arrival // sorted by At, offsets from start
}

// ReadFile reads a replay file (see [ParseReplay]).
func ReadFile(path string) (*Replay, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseReplay(path, f)
}

// ParseReplay reads a replay: one request per line,
//
//	TIME [KEY [COST]]
//
// with the fields separated by spaces, tabs or a comma. TIME is an RFC 3339
// timestamp (2026-12-06T10:00:00.25Z) or Unix seconds with up to nine
// decimals (1796551200.25). KEY defaults to "sim" ("-" also means the
// default) and COST to 1. Blank lines and lines starting with # are
// skipped. The lines need not be in order: the requests are replayed in
// time order (lines with equal times in file order). Errors name the file,
// the line and the field.
func ParseReplay(name string, r io.Reader) (*Replay, error) {
	type rec struct {
		at   int64 // Unix ns
		key  string
		cost int64
	}
	var recs []rec
	keys := map[string]string{} // interned
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		fields := strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' })
		if len(fields) == 0 { // separators only
			continue
		}
		if len(fields) > 3 {
			return nil, fmt.Errorf("%s:%d: %d fields, want TIME [KEY [COST]]", name, line, len(fields))
		}
		at, err := parseTime(fields[0])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: time: %v", name, line, err)
		}
		rc := rec{at: at, key: "sim", cost: 1}
		if len(fields) > 1 && fields[1] != "-" {
			k, ok := keys[fields[1]]
			if !ok {
				k = strings.Clone(fields[1])
				keys[k] = k
			}
			rc.key = k
		}
		if len(fields) > 2 {
			c, err := strconv.ParseInt(fields[2], 10, 64)
			if err != nil || c < 1 {
				return nil, fmt.Errorf("%s:%d: cost: %q is not a whole number of at least 1", name, line, fields[2])
			}
			rc.cost = c
		}
		recs = append(recs, rc)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%s: no requests in the file", name)
	}
	slices.SortStableFunc(recs, func(a, b rec) int { return cmpInt(a.at, b.at) })
	first := recs[0].at
	p := &Replay{name: name, start: time.Unix(0, first).UTC(), arrivals: make([]Arrival, len(recs))}
	for i, rc := range recs {
		if rc.at-first < 0 { // overflow: the span is over 292 years
			return nil, fmt.Errorf("%s: the timestamps span more than %v", name, time.Duration(math.MaxInt64))
		}
		p.arrivals[i] = Arrival{At: time.Duration(rc.at - first), Key: rc.key, Cost: rc.cost}
	}
	return p, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// parseTime reads RFC 3339 or decimal Unix seconds, exactly, as Unix ns.
func parseTime(s string) (int64, error) {
	if strings.ContainsAny(s, "T:") {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, fmt.Errorf("%q is not an RFC 3339 timestamp or Unix seconds", s)
		}
		return t.UnixNano(), nil
	}
	whole, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || len(frac) > 9 || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("%q is not an RFC 3339 timestamp or Unix seconds (at most 9 decimals)", s)
	}
	var ns int64
	if frac != "" {
		n, err := strconv.ParseUint(frac, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not an RFC 3339 timestamp or Unix seconds", s)
		}
		ns = int64(n)
		for range 9 - len(frac) {
			ns *= 10
		}
	}
	const maxSec = math.MaxInt64/1_000_000_000 - 1
	if sec > maxSec || sec < -maxSec {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	if strings.HasPrefix(whole, "-") {
		ns = -ns
	}
	return sec*1e9 + ns, nil
}

// Start returns the earliest timestamp of the file: a run of the replay
// starts there, so fixed windows align as they did when it was recorded.
func (p *Replay) Start() time.Time { return p.start }

// Span returns the time from the first request to just after the last.
func (p *Replay) Span() time.Duration { return p.arrivals[len(p.arrivals)-1].At + 1 }

// Len returns the number of requests in the file.
func (p *Replay) Len() int { return len(p.arrivals) }

// Arrivals implements Pattern.
func (p *Replay) Arrivals(d time.Duration) iter.Seq[Arrival] {
	return func(yield func(Arrival) bool) {
		for _, a := range p.arrivals {
			if a.At >= d || !yield(a) {
				return
			}
		}
	}
}

// String implements Pattern: the text ParsePattern reads.
func (p *Replay) String() string { return "file:" + p.name }
