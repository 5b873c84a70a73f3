package httplimit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/httplimit"
	"github.com/weir-go/weir/memstore"
)

func ExampleNew() {
	lim, err := weir.NewLimiter(memstore.New(),
		weir.PerSecond(2).WithName("burst"),
		weir.PerDay(1000).WithName("daily"))
	if err != nil {
		panic(err)
	}
	mw, err := httplimit.New(httplimit.Policy{Limiter: lim, Key: httplimit.BasicAuthUser()})
	if err != nil {
		panic(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "pizza") })
	h := mw.Handler(app)

	for range 3 {
		r := httptest.NewRequest("GET", "/pizza", nil)
		r.SetBasicAuth("alice", "secret")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Printf("%d RateLimit: %s; Retry-After: %q\n", w.Code, w.Header().Get("RateLimit"), w.Header().Get("Retry-After"))
		if w.Code == http.StatusOK {
			fmt.Println("    RateLimit-Policy:", w.Header().Get("RateLimit-Policy"))
		}
	}
	// Output:
	// 200 RateLimit: "burst";r=1;t=1, "daily";r=999;t=87; Retry-After: ""
	//     RateLimit-Policy: "burst";q=2;w=1, "daily";q=1000;w=86400
	// 200 RateLimit: "burst";r=0;t=1, "daily";r=998;t=173; Retry-After: ""
	//     RateLimit-Policy: "burst";q=2;w=1, "daily";q=1000;w=86400
	// 429 RateLimit: "burst";r=0;t=1; Retry-After: "1"
}

func ExampleClientIP() {
	key, err := httplimit.ClientIP(httplimit.IPConfig{TrustedProxies: []string{"10.0.0.0/8"}})
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.1.2.3:5678" // the load balancer
	r.Header.Set("X-Forwarded-For", "203.0.113.1, 2001:db8:1:2::77, 10.9.9.9")
	fmt.Println(key(r))
	r.RemoteAddr = "198.51.100.7:5678" // not a trusted proxy: its header is ignored
	fmt.Println(key(r))
	// Output:
	// ip:2001:db8:1:2::/64 <nil>
	// ip:198.51.100.7 <nil>
}

// A client told the API's published limit: requests leave evenly spaced,
// each at least a second (plus a measured margin) after the send whose
// slot it reuses, and Timeout starts at each send, not in the line.
func ExampleTransport() {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("RateLimit-Policy", `"api";q=100;w=1`)
		fmt.Fprintln(w, "ok")
	}))
	defer server.Close()

	tr := &httplimit.Transport{
		Base:    server.Client().Transport,
		Limit:   weir.PerSecond(100), // the API's published limit; leave it out to learn it
		Timeout: 30 * time.Second,
	}
	client := &http.Client{Transport: tr}
	resp, err := client.Get(server.URL)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, tr.Pace(strings.TrimPrefix(server.URL, "http://")).PerSecond())
	// Output: 200 OK 100
}

// The recommended setup for a batch of calls: a Pool of many workers over
// a Transport that learns the API's limit (or is told it), with a Timeout
// that starts at each send. Jobs answered 429 go back in the queue.
func ExamplePool() {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("RateLimit-Policy", `"api";q=1000;w=1`)
	}))
	defer server.Close()

	jobs := make(chan *httplimit.Job, 5)
	for i := range 5 {
		req, _ := http.NewRequest("GET", server.URL, nil)
		jobs <- &httplimit.Job{ID: int64(i), Request: req}
	}
	close(jobs)
	pool := &httplimit.Pool{
		Transport: &httplimit.Transport{Base: server.Client().Transport, Timeout: 30 * time.Second},
		Workers:   40,
		// The statistics line every ReportEvery (log.Print(s) in a
		// program), and once more when Run returns.
		ReportEvery: time.Hour,
		Report:      func(s httplimit.Stats) { fmt.Println("report: done", s.Done, "ok", s.OK) },
	}
	undone, err := pool.Run(context.Background(), jobs)
	st := pool.Stats()
	fmt.Println(st.Done, st.OK, st.Limited, len(undone), err, st.Source)
	// Output:
	// report: done 5 ok 5
	// 5 5 0 0 <nil> RateLimit-Policy
}

// A login limit that only failed attempts use up: 3 failures per hour per
// client address. Successful logins cost nothing, so a user who types the
// password right is never locked out; after 3 failures the client is
// answered 429 before the password is even checked.
func ExamplePolicy_count() {
	lim, err := weir.NewLimiter(memstore.New(), weir.PerHour(3).WithName("login-failures"))
	if err != nil {
		panic(err)
	}
	mw, err := httplimit.New(httplimit.Policy{
		Limiter: lim,
		Key:     httplimit.RemoteIP(),
		Count:   httplimit.StatusIn(http.StatusUnauthorized, http.StatusForbidden),
	})
	if err != nil {
		panic(err)
	}
	login := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pw, _ := r.BasicAuth(); pw != "right" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	h := mw.Handler(login)
	for _, pw := range []string{"right", "right", "guess", "guess", "guess", "right"} {
		r := httptest.NewRequest("POST", "/login", nil)
		r.SetBasicAuth("alice", pw)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(pw, w.Code, w.Header().Get("RateLimit"))
	}
	// Output:
	// right 200 "login-failures";r=3;t=0
	// right 200 "login-failures";r=3;t=0
	// guess 401 "login-failures";r=2;t=1200
	// guess 401 "login-failures";r=1;t=2400
	// guess 401 "login-failures";r=0;t=3600
	// right 429 "login-failures";r=0;t=3600
}

// A cost known only after the work: 1000 tokens per hour per user; each
// request takes an estimate of 100 before the handler, and is settled to
// what the handler reports. The RateLimit field carries the settled
// charge, because the cost was reported before the response was written.
func ExampleReportCost() {
	lim, err := weir.NewLimiter(memstore.New(), weir.PerHour(1000).WithName("tokens"))
	if err != nil {
		panic(err)
	}
	mw, err := httplimit.New(httplimit.Policy{
		Limiter:  lim,
		Key:      httplimit.BasicAuthUser(),
		Estimate: func(*http.Request) int64 { return 100 },
		Cost:     httplimit.ReportedCost,
	})
	if err != nil {
		panic(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokens := int64(250) // what the work turned out to cost
		httplimit.ReportCost(r.Context(), tokens)
		fmt.Fprintln(w, "done")
	})
	r := httptest.NewRequest("POST", "/complete", nil)
	r.SetBasicAuth("alice", "secret")
	w := httptest.NewRecorder()
	mw.Handler(app).ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("RateLimit"))
	// Output: 200 "tokens";r=750;t=900
}

// A client that keeps within a tokens-per-minute budget shared by every
// process that uses the same store: an estimate is taken before each
// send, and settled to the tokens the API says it used.
func ExampleBudget() {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Tokens-Used", "420")
		fmt.Fprintln(w, "answer")
	}))
	defer server.Close()

	tr := &httplimit.Transport{
		Base:  server.Client().Transport,
		Limit: weir.PerSecond(10), // the API's request limit
		Store: memstore.New(),     // a redisstore shares the budget between processes
		Budget: &httplimit.Budget{
			Limit:    weir.PerMinute(90_000).WithName("tokens"),
			Estimate: func(*http.Request) int64 { return 500 },
			Cost: func(resp *http.Response) (int64, bool) {
				n, err := strconv.ParseInt(resp.Header.Get("X-Tokens-Used"), 10, 64)
				return n, err == nil
			},
		},
	}
	client := &http.Client{Transport: tr}
	resp, err := client.Get(server.URL)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 200 OK
}
