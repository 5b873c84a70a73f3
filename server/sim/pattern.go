package sim

import (
	"fmt"
	"iter"
	"math"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/weir-go/weir"
)

// An Arrival is one request of a traffic pattern.
type Arrival struct {
	// At is when the request arrives, from the start of the run.
	At time.Duration
	// Key is the rate-limit key the request is charged to.
	Key string
	// Cost is the number of units the request takes, at least 1.
	Cost int64
}

// A Pattern is a traffic pattern: the arrivals of a run, in time order.
type Pattern interface {
	// Arrivals yields the arrivals in [0, d), in order of At. Every call
	// yields the same sequence, so several limits can be run against the
	// same traffic.
	Arrivals(d time.Duration) iter.Seq[Arrival]
	// String describes the pattern as ParsePattern reads it.
	String() string
}

// A Rate is a number of requests per period, in the text form of a limit's
// quota: "1000/s", "50/m", "3/2s". Requests are spread evenly (or, for
// Poisson traffic, on average) over the period.
type Rate struct {
	N      int64         // requests per Period, at least 1
	Period time.Duration // at least 1ns
}

// PerSecond returns n requests per second.
func PerSecond(n int64) Rate { return Rate{N: n, Period: time.Second} }

// String returns the rate as ParseRate reads it.
func (r Rate) String() string {
	return weir.Per(r.N, r.Period).String()
}

// PerSec returns the rate in requests per second.
func (r Rate) PerSec() float64 { return float64(r.N) / r.Period.Seconds() }

// at returns the instant of the i-th of n evenly spaced requests per
// period: ⌊i·Period/N⌋, exact in 128 bits.
func (r Rate) at(i int64) time.Duration {
	hi, lo := bits.Mul64(uint64(i), uint64(r.Period))
	if hi >= uint64(r.N) {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, uint64(r.N))
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(q)
}

// ParseRate reads a rate: "N/PERIOD" with PERIOD as in a limit ("s", "m",
// "2s", "1h30m"), or a bare "N" for N per second.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		s += "/s"
	}
	l, err := weir.ParseLimit(s)
	if err != nil || strings.ContainsAny(s, " =") {
		return Rate{}, fmt.Errorf("rate %q: want N/PERIOD such as 1000/s or 50/m", s)
	}
	return Rate{N: l.Quota, Period: l.Period}, nil
}

// common holds the options every generated pattern accepts.
type common struct {
	keys []string // the keys, used in turn; one key "sim" by default
	cost int64    // units per request, 1 by default
	opts string   // the options as given, for String
}

func (c *common) key(i int64) string { return c.keys[i%int64(len(c.keys))] }

// Constant is traffic at a fixed rate, evenly spaced: request i arrives at
// ⌊i·Period/N⌋.
type Constant struct {
	Rate Rate
	common
}

// Arrivals implements Pattern.
func (p *Constant) Arrivals(d time.Duration) iter.Seq[Arrival] {
	return func(yield func(Arrival) bool) {
		for i := int64(0); ; i++ {
			at := p.Rate.at(i)
			if at >= d || !yield(Arrival{At: at, Key: p.key(i), Cost: p.cost}) {
				return
			}
		}
	}
}

// String implements Pattern: the text ParsePattern reads.
func (p *Constant) String() string { return "constant:" + p.Rate.String() + p.opts }

// Poisson is random traffic at an average rate: exponential gaps between
// requests, from a fixed seed so that runs repeat exactly.
type Poisson struct {
	Rate Rate
	Seed uint64
	common
}

// Arrivals implements Pattern.
func (p *Poisson) Arrivals(d time.Duration) iter.Seq[Arrival] {
	return func(yield func(Arrival) bool) {
		rng := rand.New(rand.NewPCG(p.Seed, 0x5eed))
		mean := float64(p.Rate.Period) / float64(p.Rate.N) // ns between requests
		t := 0.0
		for i := int64(0); ; i++ {
			t += rng.ExpFloat64() * mean
			if t >= float64(d) || !yield(Arrival{At: time.Duration(t), Key: p.key(i), Cost: p.cost}) {
				return
			}
		}
	}
}

// String implements Pattern: the text ParsePattern reads.
func (p *Poisson) String() string { return "poisson:" + p.Rate.String() + p.opts }

// Bursts is traffic in bursts: Size requests every Every, spread evenly
// over Width at the start of each period (all at once when Width is 0),
// on top of an optional constant Base rate.
type Bursts struct {
	Size  int64
	Every time.Duration
	Width time.Duration
	Base  Rate // zero: no background traffic
	common
}

// Arrivals implements Pattern.
func (p *Bursts) Arrivals(d time.Duration) iter.Seq[Arrival] {
	burst := Rate{N: p.Size, Period: max(p.Width, 0)}
	return func(yield func(Arrival) bool) {
		var i, j int64 // burst requests, base requests
		nextBase := time.Duration(math.MaxInt64)
		if p.Base.N > 0 {
			nextBase = 0
		}
		for {
			k, n := i/p.Size, i%p.Size
			nextBurst := time.Duration(math.MaxInt64)
			if k <= int64(math.MaxInt64/p.Every) {
				nextBurst = time.Duration(k)*p.Every + burst.at(n)
			}
			var a Arrival
			if nextBurst <= nextBase {
				a = Arrival{At: nextBurst, Key: p.key(i + j), Cost: p.cost}
				i++
			} else {
				a = Arrival{At: nextBase, Key: p.key(i + j), Cost: p.cost}
				j++
				nextBase = p.Base.at(j)
			}
			if a.At >= d || !yield(a) {
				return
			}
		}
	}
}

// String implements Pattern: the text ParsePattern reads.
func (p *Bursts) String() string {
	return "bursts:" + strconv.FormatInt(p.Size, 10) + "/" + fmtDur(p.Every) + p.opts
}

// Daily is traffic that follows a day's curve: Poisson arrivals whose rate
// rises and falls as a cosine between Low (at PeakAt−12h) and Peak (at
// PeakAt, a time of day, 14:00 by default), with runs starting at 00:00.
type Daily struct {
	Peak   Rate
	Low    Rate          // zero: a tenth of Peak
	PeakAt time.Duration // time of day of the peak
	Seed   uint64
	common
}

// Arrivals implements Pattern. It thins a Poisson process at the peak rate
// (Lewis and Shedler), which yields a Poisson process of the curve's rate.
func (p *Daily) Arrivals(d time.Duration) iter.Seq[Arrival] {
	return func(yield func(Arrival) bool) {
		rng := rand.New(rand.NewPCG(p.Seed, 0xda11))
		peak := p.Peak.PerSec()
		low := peak / 10
		if p.Low.N > 0 {
			low = p.Low.PerSec()
		}
		mean := 1e9 / peak
		t := 0.0
		for i := int64(0); ; {
			t += rng.ExpFloat64() * mean
			if t >= float64(d) {
				return
			}
			phase := 2 * math.Pi * (t - float64(p.PeakAt)) / float64(24*time.Hour)
			rate := low + (peak-low)*(1+math.Cos(phase))/2
			if rng.Float64()*peak >= rate {
				continue
			}
			if !yield(Arrival{At: time.Duration(t), Key: p.key(i), Cost: p.cost}) {
				return
			}
			i++
		}
	}
}

// String implements Pattern: the text ParsePattern reads.
func (p *Daily) String() string { return "daily:" + p.Peak.String() + p.opts }

func fmtDur(d time.Duration) string {
	s := weir.Per(1, d).String()
	return s[strings.IndexByte(s, '/')+1:]
}

// MaxKeys is the largest keys= option of a generated pattern.
const MaxKeys = 1 << 20

// ParsePattern reads a pattern:
//
//	constant:RATE[,OPTIONS]             evenly spaced requests
//	poisson:RATE[,seed=N][,OPTIONS]     random (exponential) gaps
//	bursts:SIZE/EVERY[,width=D][,base=RATE][,OPTIONS]
//	daily:PEAK[,low=RATE][,peak=HH:MM][,seed=N][,OPTIONS]
//	file:PATH                           replay a file (see ReadFile)
//
// RATE is as in ParseRate ("1000/s", "50/m", "200" for 200/s). OPTIONS are
// keys=N (spread the requests over N keys in turn; 1 by default) and
// cost=N (units per request; 1 by default). Errors name the option.
func ParsePattern(s string) (Pattern, error) {
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("pattern %q: want KIND:ARGS with KIND constant, poisson, bursts, daily or file", s)
	}
	kind = strings.ToLower(strings.TrimSpace(kind))
	if kind == "file" {
		return ReadFile(rest)
	}
	parts := strings.Split(rest, ",")
	opts := map[string]string{}
	var order []string
	for _, o := range parts[1:] {
		k, v, ok := strings.Cut(strings.TrimSpace(o), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("pattern %q: option %q is not NAME=VALUE", s, o)
		}
		k = strings.ToLower(k)
		if _, dup := opts[k]; dup {
			return nil, fmt.Errorf("pattern %q: option %s given twice", s, k)
		}
		opts[k] = v
		order = append(order, k+"="+v)
	}
	c := common{keys: []string{"sim"}, cost: 1}
	if len(order) > 0 {
		c.opts = "," + strings.Join(order, ",")
	}
	allowed := map[string]bool{"keys": true, "cost": true}
	bad := func(name, why string) error { return fmt.Errorf("pattern %q: %s: %s", s, name, why) }
	posInt := func(name string, def, most int64) (int64, error) {
		v, ok := opts[name]
		if !ok {
			return def, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > most {
			return 0, bad(name, fmt.Sprintf("%q is not a whole number from 1 to %d", v, most))
		}
		return n, nil
	}
	seed := func() (uint64, error) {
		allowed["seed"] = true
		v, ok := opts["seed"]
		if !ok {
			return 1, nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, bad("seed", fmt.Sprintf("%q is not a whole number", v))
		}
		return n, nil
	}
	rate := func(name, v string) (Rate, error) {
		r, err := ParseRate(v)
		if err != nil {
			return Rate{}, bad(name, err.Error())
		}
		return r, nil
	}
	nkeys, err := posInt("keys", 1, MaxKeys)
	if err != nil {
		return nil, err
	}
	if nkeys > 1 {
		c.keys = make([]string, nkeys)
		for i := range c.keys {
			c.keys[i] = "k" + strconv.FormatInt(int64(i), 10)
		}
	}
	if c.cost, err = posInt("cost", 1, math.MaxInt64); err != nil {
		return nil, err
	}
	var p Pattern
	switch kind {
	case "constant":
		r, err := rate("rate", parts[0])
		if err != nil {
			return nil, err
		}
		p = &Constant{Rate: r, common: c}
	case "poisson":
		r, err := rate("rate", parts[0])
		if err != nil {
			return nil, err
		}
		sd, err := seed()
		if err != nil {
			return nil, err
		}
		p = &Poisson{Rate: r, Seed: sd, common: c}
	case "bursts":
		b := &Bursts{common: c}
		sz, every, ok := strings.Cut(parts[0], "/")
		n, err := strconv.ParseInt(sz, 10, 64)
		if !ok || err != nil || n < 1 {
			return nil, bad("size", fmt.Sprintf("%q is not SIZE/EVERY such as 200/10s", parts[0]))
		}
		b.Size = n
		if b.Every, err = parseDur(every); err != nil {
			return nil, bad("every", err.Error())
		}
		allowed["width"], allowed["base"] = true, true
		if v, ok := opts["width"]; ok {
			if b.Width, err = parseDur(v); err != nil {
				return nil, bad("width", err.Error())
			}
			if b.Width > b.Every {
				return nil, bad("width", fmt.Sprintf("%v is longer than the period %v", b.Width, b.Every))
			}
		}
		if v, ok := opts["base"]; ok {
			if b.Base, err = rate("base", v); err != nil {
				return nil, err
			}
		}
		p = b
	case "daily":
		r, err := rate("peak rate", parts[0])
		if err != nil {
			return nil, err
		}
		dl := &Daily{Peak: r, PeakAt: 14 * time.Hour, common: c}
		if dl.Seed, err = seed(); err != nil {
			return nil, err
		}
		allowed["low"], allowed["peak"] = true, true
		if v, ok := opts["low"]; ok {
			if dl.Low, err = rate("low", v); err != nil {
				return nil, err
			}
			if dl.Low.PerSec() > dl.Peak.PerSec() {
				return nil, bad("low", fmt.Sprintf("%s is above the peak %s", dl.Low, dl.Peak))
			}
		}
		if v, ok := opts["peak"]; ok {
			tod, err := time.Parse("15:04", v)
			if err != nil {
				return nil, bad("peak", fmt.Sprintf("%q is not a time of day HH:MM", v))
			}
			dl.PeakAt = time.Duration(tod.Hour())*time.Hour + time.Duration(tod.Minute())*time.Minute
		}
		p = dl
	default:
		return nil, fmt.Errorf("pattern %q: unknown kind %q (want constant, poisson, bursts, daily or file)", s, kind)
	}
	for _, k := range order {
		name, _, _ := strings.Cut(k, "=")
		if !allowed[name] {
			return nil, fmt.Errorf("pattern %q: unknown option %q for %s", s, name, kind)
		}
	}
	return p, nil
}

// parseDur reads a positive duration: a Go duration ("1h30m") or a limit
// period ("s", "2m", "d").
func parseDur(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	l, err := weir.ParseLimit("1/" + s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a positive duration such as 10s or 1h30m", s)
	}
	return l.Period, nil
}
