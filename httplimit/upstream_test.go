package httplimit

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// upstream is the API of the client tests: an exact sliding log of quota
// requests per window for everyone, decided when a request arrives, then
// latency before the answer. It counts what it admits and refuses, and
// sends RateLimit-Policy and RateLimit on every answer and Retry-After on
// a 429 (rounded up, so a retry at that time finds a slot), unless
// noFields, when it sends only Retry-After.
type upstream struct {
	quota    int
	window   time.Duration
	latency  time.Duration
	noFields bool

	mu          sync.Mutex
	log         []time.Time // admitted arrivals in the current window
	admitted    int
	limited     int
	first, last time.Time // first and last admitted arrival
	maxInWindow int       // most requests received in any window (admitted or not)
	received    []time.Time
}

// decide is the sliding log at now.
func (u *upstream) decide(now time.Time) (ok bool, remaining int, reset time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	cut := now.Add(-u.window)
	i := 0
	for i < len(u.log) && !u.log[i].After(cut) {
		i++
	}
	u.log = u.log[i:]
	u.received = append(u.received, now)
	j := 0
	for j < len(u.received) && !u.received[j].After(cut) {
		j++
	}
	u.received = u.received[j:]
	u.maxInWindow = max(u.maxInWindow, len(u.received))
	ok = len(u.log) < u.quota
	if ok {
		u.log = append(u.log, now)
		if u.admitted == 0 {
			u.first = now
		}
		u.last = now
		u.admitted++
	} else {
		u.limited++
	}
	if len(u.log) > 0 {
		reset = u.log[0].Add(u.window).Sub(now)
	}
	return ok, u.quota - len(u.log), reset
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ok, remaining, reset := u.decide(time.Now())
	if !u.noFields {
		w.Header().Set(HeaderRateLimitPolicy, `"api";q=`+strconv.Itoa(u.quota)+`;w=`+strconv.FormatInt(int64(u.window/time.Second), 10))
		w.Header().Set(HeaderRateLimit, `"api";r=`+strconv.Itoa(remaining)+`;t=`+strconv.FormatInt(ceilSeconds(reset), 10))
	}
	if u.latency > 0 {
		tm := time.NewTimer(u.latency)
		select {
		case <-tm.C:
		case <-r.Context().Done():
			tm.Stop()
			return
		}
	}
	if !ok {
		w.Header().Set(HeaderRetryAfter, strconv.FormatInt(max(ceilSeconds(reset), 1), 10))
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// utilisation is the admitted rate from the first to the last admitted
// request, (admitted-1)/span, as a share of quota per window.
func (u *upstream) utilisation() float64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	span := u.last.Sub(u.first)
	if u.admitted < 2 || span <= 0 {
		return 0
	}
	rate := float64(u.admitted-1) / span.Seconds()
	return rate / (float64(u.quota) / u.window.Seconds())
}

func (u *upstream) counts() (admitted, limited, maxInWindow int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.admitted, u.limited, u.maxInWindow
}
