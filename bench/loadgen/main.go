package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/weir-go/weir/server/gen/weirv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// config is what the flags set.
type config struct {
	httpURL, grpcAddr       string
	protos, clients         []string
	keys, batch, conns, pid int
	duration, warmup        time.Duration
	policy, domain, mode    string
	gogc                    int
}

// protocols are the values -proto takes.
var protocols = []string{"http", "grpc", "envoy", "stream", "rawhttp", "rawgrpc", "rawenvoy"}

// parseFlags reads the command line; a -proto, -clients or -mode it cannot
// use is an error naming the flag.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	var protos, clients string
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.httpURL, "http", "http://127.0.0.1:8080", "server HTTP base URL")
	fs.StringVar(&c.grpcAddr, "grpc", "127.0.0.1:8081", "server gRPC address")
	fs.StringVar(&protos, "proto", "http,grpc", "comma-separated: http, grpc, envoy, stream (weir.v1 CheckStream), rawhttp, rawgrpc, rawenvoy")
	fs.StringVar(&clients, "clients", "1,16,64", "comma-separated concurrent client counts")
	fs.IntVar(&c.keys, "keys", 10000, "distinct keys")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "duration of each run")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "warm-up before each run (not measured)")
	fs.IntVar(&c.batch, "batch", 1, "decisions per call (gRPC CheckBatch / Envoy descriptors; HTTP JSON array)")
	fs.StringVar(&c.policy, "policy", "bench", "policy name")
	fs.StringVar(&c.domain, "domain", "bench", "Envoy domain")
	fs.IntVar(&c.pid, "pid", 0, "server process id, for its CPU time and memory")
	fs.IntVar(&c.conns, "conns", 4, "gRPC connections shared by the clients")
	fs.StringVar(&c.mode, "mode", "rate", "rate: decisions/s; keys: fill -keys distinct keys and report RSS per key")
	fs.IntVar(&c.gogc, "gogc", 400, "the load generator's own GC percentage (its CPU is the ceiling on one machine)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("loadgen takes no arguments: %q", fs.Args())
	}
	c.protos, c.clients = strings.Split(protos, ","), strings.Split(clients, ",")
	for _, p := range c.protos {
		if !slices.Contains(protocols, p) {
			return c, fmt.Errorf("unknown -proto %q (want %s)", p, strings.Join(protocols, ", "))
		}
	}
	for _, cs := range c.clients {
		if n, err := strconv.Atoi(cs); err != nil || n < 1 {
			return c, fmt.Errorf("bad -clients: %q", cs)
		}
	}
	if c.mode != "rate" && c.mode != "keys" {
		return c, fmt.Errorf("unknown -mode %q (want rate or keys)", c.mode)
	}
	return c, nil
}

func main() {
	c, err := parseFlags(os.Args[1:], os.Stderr)
	if err == flag.ErrHelp {
		os.Exit(0)
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	debug.SetGCPercent(c.gogc)

	if c.mode == "keys" {
		fillKeys(c.grpcAddr, c.policy, c.keys, c.pid)
		return
	}
	fmt.Printf("# loadgen: %d keys, batch %d, %v per run, pid %d, GOMAXPROCS default\n", c.keys, c.batch, c.duration, c.pid)
	fmt.Printf("%-6s %7s %12s %10s %10s %10s %14s %14s\n", "proto", "clients", "decisions/s", "calls/s", "p50", "p99", "server-cpu/dec", "loadgen-cpu/dec")
	for _, proto := range c.protos {
		for _, cs := range c.clients {
			n, err := strconv.Atoi(cs)
			if err != nil || n < 1 {
				fmt.Fprintln(os.Stderr, "bad -clients:", cs)
				os.Exit(2)
			}
			var call func(ctx context.Context, worker, i int) error
			var closeFn func()
			switch proto {
			case "http":
				call, closeFn = httpCaller(c.httpURL, c.policy, c.keys, c.batch, n)
			case "grpc":
				call, closeFn = grpcCaller(c.grpcAddr, c.policy, c.keys, c.batch, c.conns)
			case "envoy":
				call, closeFn = envoyCaller(c.grpcAddr, c.domain, c.keys, c.batch, c.conns)
			case "stream":
				call, closeFn = streamCaller(c.grpcAddr, c.policy, c.keys, n, c.conns)
			case "rawhttp", "rawgrpc", "rawenvoy":
				var err error
				call, closeFn, err = rawCaller(proto, c.httpURL, c.grpcAddr, c.policy, c.domain, c.keys, c.batch, n, c.conns)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
			default:
				fmt.Fprintln(os.Stderr, "unknown -proto", proto)
				os.Exit(2)
			}
			drive(call, n, c.warmup) // warm up connections and caches
			r := measure(call, n, c.duration, c.pid)
			closeFn()
			dec := float64(r.calls * int64(c.batch))
			fmt.Printf("%-6s %7d %12.0f %10.0f %10v %10v %12.2fµs %12.2fµs\n", proto, n, dec/r.elapsed.Seconds(), float64(r.calls)/r.elapsed.Seconds(),
				r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), perDec(r.serverCPU, dec), perDec(r.selfCPU, dec))
		}
	}
}

func perDec(cpu time.Duration, dec float64) float64 {
	if cpu < 0 || dec == 0 {
		return -1
	}
	return float64(cpu.Microseconds()) / dec
}

type result struct {
	calls              int64
	elapsed            time.Duration
	p50, p99           time.Duration
	serverCPU, selfCPU time.Duration
}

// drive runs n workers for d and returns their latencies.
func drive(call func(ctx context.Context, worker, i int) error, n int, d time.Duration) ([][]time.Duration, time.Duration) {
	ctx := context.Background()
	lats := make([][]time.Duration, n)
	var stop atomic.Bool
	var wg sync.WaitGroup
	begin := time.Now()
	var failed atomic.Int64
	for w := range n {
		wg.Go(func() {
			l := make([]time.Duration, 0, 1<<16)
			for i := 0; !stop.Load(); i++ {
				t := time.Now()
				if err := call(ctx, w, i); err != nil {
					if failed.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, "call failed:", err)
					}
					continue
				}
				l = append(l, time.Since(t))
			}
			lats[w] = l
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	return lats, time.Since(begin)
}

func measure(call func(ctx context.Context, worker, i int) error, n int, d time.Duration, pid int) result {
	s0, u0 := procCPU(pid), selfCPU()
	lats, elapsed := drive(call, n, d)
	s1, u1 := procCPU(pid), selfCPU()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	r := result{calls: int64(len(all)), elapsed: elapsed, serverCPU: -1, selfCPU: u1 - u0}
	if pid > 0 {
		r.serverCPU = s1 - s0
	}
	if len(all) > 0 {
		r.p50 = all[len(all)/2]
		r.p99 = all[len(all)*99/100]
	}
	return r
}

// procCPU is utime+stime of a process from /proc/PID/stat.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may contain spaces).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rss(pid int) (cur, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			cur = v << 10
		case "VmHWM:":
			peak = v << 10
		}
	}
	return cur, peak
}

func httpBodies(policy string, keys, batch int) [][]byte {
	bodies := make([][]byte, keys)
	for k := range keys {
		if batch == 1 {
			bodies[k] = fmt.Appendf(nil, `{"policy":%q,"key":"user:%d"}`, policy, k)
			continue
		}
		var b bytes.Buffer
		b.WriteByte('[')
		for j := range batch {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"policy":%q,"key":"user:%d"}`, policy, (k+j*7919)%keys)
		}
		b.WriteByte(']')
		bodies[k] = b.Bytes()
	}
	return bodies
}

func httpCaller(base, policy string, keys, batch, clients int) (func(context.Context, int, int) error, func()) {
	bodies := httpBodies(policy, keys, batch)
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true}
	client := &http.Client{Transport: tr}
	url := base + "/v1/check"
	return func(ctx context.Context, w, i int) error {
			k := (w*7919 + i*104729) % keys
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[k]))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return err
		}, func() {
			tr.CloseIdleConnections()
		}
}

func dialPool(addr string, n int) []*grpc.ClientConn {
	var ccs []*grpc.ClientConn
	for range max(n, 1) {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ccs = append(ccs, cc)
	}
	return ccs
}

func grpcCaller(addr, policy string, keys, batch, conns int) (func(context.Context, int, int) error, func()) {
	ccs := dialPool(addr, conns)
	clients := make([]weirv1.WeirClient, len(ccs))
	for i, cc := range ccs {
		clients[i] = weirv1.NewWeirClient(cc)
	}
	names := make([]string, keys)
	for k := range keys {
		names[k] = "user:" + strconv.Itoa(k)
	}
	return func(ctx context.Context, w, i int) error {
			c := clients[w%len(clients)]
			k := (w*7919 + i*104729) % keys
			if batch == 1 {
				_, err := c.Check(ctx, &weirv1.CheckRequest{Policy: policy, Key: names[k]})
				return err
			}
			req := &weirv1.CheckBatchRequest{Checks: make([]*weirv1.CheckRequest, batch)}
			for j := range batch {
				req.Checks[j] = &weirv1.CheckRequest{Policy: policy, Key: names[(k+j*7919)%keys]}
			}
			_, err := c.CheckBatch(ctx, req)
			return err
		}, func() {
			for _, cc := range ccs {
				cc.Close()
			}
		}
}

func envoyCaller(addr, domain string, keys, batch, conns int) (func(context.Context, int, int) error, func()) {
	ccs := dialPool(addr, conns)
	clients := make([]rlv3.RateLimitServiceClient, len(ccs))
	for i, cc := range ccs {
		clients[i] = rlv3.NewRateLimitServiceClient(cc)
	}
	descs := make([]*rlcommon.RateLimitDescriptor, keys)
	for k := range keys {
		descs[k] = &rlcommon.RateLimitDescriptor{Entries: []*rlcommon.RateLimitDescriptor_Entry{{Key: "user", Value: strconv.Itoa(k)}}}
	}
	return func(ctx context.Context, w, i int) error {
			k := (w*7919 + i*104729) % keys
			req := &rlv3.RateLimitRequest{Domain: domain, Descriptors: make([]*rlcommon.RateLimitDescriptor, batch)}
			for j := range batch {
				req.Descriptors[j] = descs[(k+j*7919)%keys]
			}
			_, err := clients[w%len(clients)].ShouldRateLimit(ctx, req)
			return err
		}, func() {
			for _, cc := range ccs {
				cc.Close()
			}
		}
}

// fillKeys sends n distinct keys in batches of 1000 and reports the
// server's RSS growth per key.
func fillKeys(addr, policy string, n, pid int) {
	ccs := dialPool(addr, 1)
	defer ccs[0].Close()
	c := weirv1.NewWeirClient(ccs[0])
	ctx := context.Background()
	// One call first so that the baseline includes a warm server.
	c.Check(ctx, &weirv1.CheckRequest{Policy: policy, Key: "warm"})
	base, basePeak := rss(pid)
	begin := time.Now()
	const per = 1000
	for i := 0; i < n; i += per {
		req := &weirv1.CheckBatchRequest{}
		for k := i; k < min(i+per, n); k++ {
			req.Checks = append(req.Checks, &weirv1.CheckRequest{Policy: policy, Key: "key:" + strconv.Itoa(k)})
		}
		if _, err := c.CheckBatch(ctx, req); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	cur, peak := rss(pid)
	fmt.Printf("keys %d in %v; server RSS %d MiB -> %d MiB (peak %d MiB -> %d MiB): %.0f bytes/key (RSS growth), %.0f bytes/key (peak growth)\n",
		n, time.Since(begin).Round(time.Millisecond), base>>20, cur>>20, basePeak>>20, peak>>20,
		float64(cur-base)/float64(n), float64(peak-basePeak)/float64(n))
}

// streamCaller gives each client its own CheckStream and sends one
// decision per message, waiting for its answer before the next: one
// decision in flight per client, as with unary calls.
func streamCaller(addr, policy string, keys, clients, conns int) (func(context.Context, int, int) error, func()) {
	ccs := dialPool(addr, conns)
	ctx, cancel := context.WithCancel(context.Background())
	streams := make([]weirv1.Weir_CheckStreamClient, clients)
	for w := range streams {
		s, err := weirv1.NewWeirClient(ccs[w%len(ccs)]).CheckStream(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		streams[w] = s
	}
	checks := make([]*weirv1.CheckRequest, keys)
	for k := range keys {
		checks[k] = &weirv1.CheckRequest{Policy: policy, Key: "user:" + strconv.Itoa(k)}
	}
	reqs := make([]weirv1.CheckStreamRequest, clients)
	return func(_ context.Context, w, i int) error {
			k := (w*7919 + i*104729) % keys
			m := &reqs[w]
			m.Id, m.Check = uint64(i), checks[k]
			if err := streams[w].Send(m); err != nil {
				return err
			}
			resp, err := streams[w].Recv()
			if err != nil {
				return err
			}
			if resp.GetId() != uint64(i) || resp.GetResult() == nil {
				return fmt.Errorf("stream answer %d for %d: %v", resp.GetId(), i, resp.GetError())
			}
			return nil
		}, func() {
			for _, s := range streams {
				s.CloseSend()
			}
			cancel()
			for _, cc := range ccs {
				cc.Close()
			}
		}
}
