package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/redisstore"
)

// The shared limits.
var (
	jobLimit = weir.PerSecond(50).WithBurst(10).WithName("jobs")
	apiLimit = weir.Concurrent(3, 10*time.Second).WithName("partner-api")
)

// workerEnv marks a worker process.
const workerEnv = "WEIR_DISTRIBUTED_WORKER"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	if os.Getenv(workerEnv) == "1" {
		err = worker(ctx, os.Args[1:], os.Stdout)
	} else {
		err = run(ctx, os.Args[1:], os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "distributed:", err)
		os.Exit(1)
	}
}

type config struct {
	redis    string
	prefix   string
	procs    int
	duration time.Duration
}

func parse(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("distributed", flag.ContinueOnError)
	fs.StringVar(&c.redis, "redis", "localhost:6379", "Redis address")
	fs.StringVar(&c.prefix, "prefix", "weir-example:", "Redis key prefix")
	fs.IntVar(&c.procs, "procs", 4, "worker processes")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "how long the workers run")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.procs < 1 || c.duration <= 0 {
		return c, errors.New("-procs and -duration must be positive")
	}
	return c, nil
}

// A report is what one worker did.
type report struct {
	Jobs        int64 // jobs started
	FirstJob    int64 // µs, Redis clock
	LastJob     int64
	APICalls    int64
	MaxInFlight int64 // most partner-API calls in flight, seen by this worker
}

func newLimiters(c config) (*redis.Client, *redisstore.Store, *weir.Limiter, *weir.Limiter, error) {
	client := redis.NewClient(&redis.Options{Addr: c.redis, MaxRetries: -1})
	store, err := redisstore.New(client, redisstore.WithPrefix(c.prefix), redisstore.WithDeadline(time.Second))
	if err != nil {
		client.Close()
		return nil, nil, nil, nil, err
	}
	jobs, err := weir.NewLimiter(store, jobLimit)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	api, err := weir.NewLimiter(store, apiLimit)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return client, store, jobs, api, nil
}

// worker runs jobs until the duration is over and prints its report as
// JSON.
func worker(ctx context.Context, args []string, out io.Writer) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	client, store, jobs, api, err := newLimiters(c)
	if err != nil {
		return err
	}
	defer client.Close()
	defer store.Close()
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	var mu sync.Mutex
	rep := report{FirstJob: 1 << 62}
	var wg sync.WaitGroup
	for range 4 { // four job runners per process
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				d, err := jobs.Wait(ctx, "queue") // blocks until the shared rate allows
				if err != nil {
					return // the duration is over
				}
				mu.Lock()
				rep.Jobs++
				us := d.Time.Add(d.Delay).UnixMicro()
				rep.FirstJob, rep.LastJob = min(rep.FirstJob, us), max(rep.LastJob, us)
				mu.Unlock()
				// Every job calls the partner API under the semaphore,
				// waiting in line with every process's jobs for a slot.
				lease, err := api.Acquire(ctx, "partner", 1)
				if err != nil {
					return // the duration is over
				}
				n, _ := client.Incr(ctx, c.prefix+"in-flight").Result()
				time.Sleep(20 * time.Millisecond) // the call
				client.Decr(context.WithoutCancel(ctx), c.prefix+"in-flight")
				_ = lease.Release(context.WithoutCancel(ctx))
				mu.Lock()
				rep.APICalls++
				rep.MaxInFlight = max(rep.MaxInFlight, n)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return json.NewEncoder(out).Encode(rep)
}

// run starts the workers, waits for them, and prints the totals.
func run(ctx context.Context, args []string, out io.Writer) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	client, store, jobs, api, err := newLimiters(c)
	if err != nil {
		return err
	}
	if err := store.Ping(ctx); err != nil {
		client.Close()
		store.Close()
		return fmt.Errorf("redis at %s: %w", c.redis, err)
	}
	// Start from a clean slate.
	_ = jobs.Reset(ctx, "queue")
	_ = api.Reset(ctx, "partner")
	client.Del(ctx, c.prefix+"in-flight")
	store.Close()
	client.Close()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	reports := make([]report, c.procs)
	errs := make([]error, c.procs)
	var wg sync.WaitGroup
	var started atomic.Int64
	for i := range c.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, self, args...)
			cmd.Env = append(os.Environ(), workerEnv+"=1")
			cmd.Stderr = os.Stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				errs[i] = err
				return
			}
			if err := cmd.Start(); err != nil {
				errs[i] = err
				return
			}
			started.Add(1)
			line, _ := bufio.NewReader(stdout).ReadBytes('\n')
			if err := cmd.Wait(); err != nil {
				errs[i] = fmt.Errorf("worker %d: %w", i, err)
				return
			}
			errs[i] = json.Unmarshal(line, &reports[i])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var total report
	total.FirstJob = 1 << 62
	for i, r := range reports {
		fmt.Fprintf(out, "worker %d: %d jobs, %d partner-API calls\n", i, r.Jobs, r.APICalls)
		total.Jobs += r.Jobs
		total.APICalls += r.APICalls
		total.FirstJob, total.LastJob = min(total.FirstJob, r.FirstJob), max(total.LastJob, r.LastJob)
		total.MaxInFlight = max(total.MaxInFlight, r.MaxInFlight)
	}
	span := time.Duration(total.LastJob-total.FirstJob) * time.Microsecond
	bound := jobLimit.Capacity() + int64(span/time.Microsecond)*jobLimit.Quota/int64(jobLimit.Period/time.Microsecond)
	fmt.Fprintf(out, "total: %d jobs in %v (bound burst + rate × time = %d), at most %d partner-API calls at once (limit %d)\n",
		total.Jobs, span.Round(time.Millisecond), bound, total.MaxInFlight, apiLimit.Quota)
	if total.Jobs > bound {
		return fmt.Errorf("%d jobs exceed the bound %d", total.Jobs, bound)
	}
	if total.MaxInFlight > apiLimit.Quota {
		return fmt.Errorf("%d partner-API calls at once exceed %d", total.MaxInFlight, apiLimit.Quota)
	}
	return nil
}
