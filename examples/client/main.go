package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/httplimit"
	"github.com/weir-go/weir/memstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		os.Exit(2)
	}
	if _, err := run(ctx, cfg, nil, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

// config is what the flags set.
type config struct {
	url        string
	jobs       int
	workers    int
	rate       int64 // the API's limit as told to the client; 0: learn it
	serverRate int64
	latency    time.Duration
	report     time.Duration
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.url, "url", "", "API to call; empty starts a local API limited to -server-rate")
	fs.IntVar(&c.jobs, "jobs", 60, "number of requests to send")
	fs.IntVar(&c.workers, "workers", 40, "number of workers")
	fs.Int64Var(&c.rate, "rate", 0, "the API's published limit in requests per second, if known; 0 learns it from the API's answers")
	fs.Int64Var(&c.serverRate, "server-rate", 4, "requests per second the local API allows (an exact sliding log)")
	fs.DurationVar(&c.latency, "latency", 200*time.Millisecond, "the local API's answer time")
	fs.DurationVar(&c.report, "report", time.Second, "interval of the live statistics")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	return c, nil
}

// newAPI is the demo API: it admits at most rate requests in any second
// (an exact sliding log, decided on arrival), answers after latency, and
// answers 429 with Retry-After to the rest. Every answer carries the
// RateLimit-Policy and RateLimit fields.
func newAPI(rate int64, latency time.Duration) (http.Handler, error) {
	lim, err := weir.NewLimiter(memstore.New(), weir.PerSecond(rate).WithAlgorithm(weir.SlidingWindowLog).WithName("api"))
	if err != nil {
		return nil, err
	}
	everyone := func(*http.Request) (string, error) { return "all", nil }
	mw, err := httplimit.New(httplimit.Policy{Limiter: lim, Key: everyone})
	if err != nil {
		return nil, err
	}
	return mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		fmt.Fprintln(w, `{"ok":true}`)
	})), nil
}

// run sends cfg.jobs requests with the pool and prints statistics to out.
// base carries the requests (nil: the network); without cfg.url the local
// API is served on 127.0.0.1, or called in process when base is not nil.
func run(ctx context.Context, cfg config, base http.RoundTripper, out io.Writer) (httplimit.Stats, error) {
	if cfg.jobs < 0 || cfg.workers < 1 || cfg.rate < 0 || cfg.serverRate < 1 || cfg.latency < 0 || cfg.report <= 0 {
		return httplimit.Stats{}, fmt.Errorf("bad flags: -jobs %d -workers %d -rate %d -server-rate %d -latency %v -report %v", cfg.jobs, cfg.workers, cfg.rate, cfg.serverRate, cfg.latency, cfg.report)
	}
	url := cfg.url
	if url == "" {
		api, err := newAPI(cfg.serverRate, cfg.latency)
		if err != nil {
			return httplimit.Stats{}, err
		}
		if base == nil {
			stop, addr, err := serve(api)
			if err != nil {
				return httplimit.Stats{}, err
			}
			defer stop()
			url = "http://" + addr + "/"
		} else {
			url = "http://api.local/"
		}
		fmt.Fprintf(out, "local API at %s allows %d requests/s\n", url, cfg.serverRate)
	}
	if base == nil {
		base = http.DefaultTransport
	}

	// The recommended setup: the Transport paces (to the told limit, or
	// to what the API advertises, probing first) and its Timeout starts at
	// each send; the pool hands a job to it only when it may be sent.
	tr := &httplimit.Transport{Base: base, Timeout: 30 * time.Second}
	if cfg.rate > 0 {
		tr.Limit = weir.PerSecond(cfg.rate)
	}
	// The statistics line, every cfg.report while the pool works.
	pool := &httplimit.Pool{Transport: tr, Workers: cfg.workers, ReportEvery: cfg.report,
		Report: func(s httplimit.Stats) { fmt.Fprintln(out, "progress:", s) }}
	jobs := make(chan *httplimit.Job, cfg.jobs)
	for i := range cfg.jobs {
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			return httplimit.Stats{}, err
		}
		jobs <- &httplimit.Job{ID: int64(i), Request: req}
	}
	close(jobs)

	undone, err := pool.Run(ctx, jobs)
	st := pool.Stats()
	fmt.Fprintln(out, st)
	fmt.Fprintf(out, "jobs: %d done, %d failed, %d undone, %d still queued\n", st.Done, st.Failed, len(undone), len(jobs))
	return st, err
}

// serve serves h on a free loopback port until stop is called.
func serve(h http.Handler) (stop func(), addr string, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	return func() {
		_ = srv.Close()
		<-errc
	}, ln.Addr().String(), nil
}
