package redisstore

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/redisstore/redistest"
)

func init() { redistest.RegisterHelper("deadline-study", helperDeadlineStudy) }

// studyReport is what a deadline-study helper prints.
type studyReport struct {
	Decisions, Errors int64
	ErrorsAt          []int64 // Unix µs of each error
	Stalls            []int64 // lengths (µs) of the process's stalls of 50 ms or more
}

// helperDeadlineStudy makes decisions from WEIR_G goroutines in a closed
// loop for WEIR_MS ms on 1000 keys with the store deadline WEIR_DEADLINE,
// and reports the errors and the process's own stalls (a 1 ms sleeper that
// woke 50 ms or more late).
func helperDeadlineStudy() {
	c := redis.NewClient(&redis.Options{Addr: os.Getenv("WEIR_ADDR"), MaxRetries: -1, ContextTimeoutEnabled: true, PoolSize: 16})
	defer c.Close()
	deadline, err := time.ParseDuration(os.Getenv("WEIR_DEADLINE"))
	if err != nil {
		panic(err)
	}
	s, err := New(c, WithDeadline(deadline))
	if err != nil {
		panic(err)
	}
	defer s.Close()
	g, _ := strconv.Atoi(os.Getenv("WEIR_G"))
	ms, _ := strconv.Atoi(os.Getenv("WEIR_MS"))
	end := time.Now().Add(time.Duration(ms) * time.Millisecond)
	lim := weir.PerSecond(1_000_000).WithName("study")
	var mu sync.Mutex
	var rep studyReport
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() { // stall detector: a 1 ms sleeper that notes gaps
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
			now := time.Now()
			if gap := now.Sub(last); gap >= 50*time.Millisecond {
				mu.Lock()
				rep.Stalls = append(rep.Stalls, gap.Microseconds())
				mu.Unlock()
			}
			last = now
		}
	}()
	for range g {
		wg.Go(func() {
			for time.Now().Before(end) {
				key := "k" + strconv.Itoa(rand.IntN(1000))
				_, err := s.Take(context.Background(), &weir.Request{Checks: []weir.Check{{Key: key, Limit: lim}}, Cost: 1})
				mu.Lock()
				rep.Decisions++
				if err != nil {
					rep.Errors++
					rep.ErrorsAt = append(rep.ErrorsAt, time.Now().UnixMicro())
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(done)
	_ = json.NewEncoder(os.Stdout).Encode(rep)
}

// TestDeadlineStudy is a measurement (issue 16 item 7), run by hand: how
// many decisions of a healthy loopback Redis fail at the store deadline on
// a loaded host. For each store deadline of WEIR_DEADLINE_STUDY, in
// WEIR_STUDY_ROUNDS interleaved rounds (default 1) of WEIR_STUDY_MS ms
// (default 20000), 4 processes × 32 goroutines decide in a closed loop on
// 1000 keys; errors less than 10 ms apart (any process) count as one
// burst. docs/redis.md has the command and the figures.
func TestDeadlineStudy(t *testing.T) {
	deadlines := os.Getenv("WEIR_DEADLINE_STUDY")
	if deadlines == "" {
		t.Skip("a measurement: set WEIR_DEADLINE_STUDY to the deadlines to run")
	}
	ms := "20000"
	if v := os.Getenv("WEIR_STUDY_MS"); v != "" {
		ms = v
	}
	rounds := 1
	if v := os.Getenv("WEIR_STUDY_ROUNDS"); v != "" {
		rounds, _ = strconv.Atoi(v)
	}
	type total struct{ dec, errs, bursts, biggest, stalls int64 }
	totals := map[string]*total{}
	srv := redistest.Start(t)
	for round := range rounds {
		for _, v := range strings.Split(deadlines, ",") {
			var reps []studyReport
			var mu sync.Mutex
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
					cmd.Env = append(os.Environ(), "WEIR_HELPER=deadline-study", "WEIR_ADDR="+srv.Addr, "WEIR_G=32", "WEIR_MS="+ms, "WEIR_DEADLINE="+v)
					cmd.Stderr = os.Stderr
					out, err := cmd.Output()
					var r studyReport
					if err == nil {
						err = json.Unmarshal(out, &r)
					}
					if err != nil {
						t.Errorf("helper: %v", err)
					}
					mu.Lock()
					reps = append(reps, r)
					mu.Unlock()
				})
			}
			wg.Wait()
			var dec, errs, stalls int64
			var at []int64
			for _, r := range reps {
				dec += r.Decisions
				errs += r.Errors
				stalls += int64(len(r.Stalls))
				at = append(at, r.ErrorsAt...)
			}
			slices.Sort(at)
			var bursts, biggest, cur int64
			for i := range at {
				if i == 0 || at[i]-at[i-1] > 10_000 {
					bursts++
					cur = 0
				}
				cur++
				biggest = max(biggest, cur)
			}
			t.Logf("round %d, deadline %s: %d decisions, %d errors (%.4f%%) in %d bursts (largest %d); %d process stalls >= 50 ms",
				round, v, dec, errs, 100*float64(errs)/float64(max(dec, 1)), bursts, biggest, stalls)
			tt := totals[v]
			if tt == nil {
				tt = &total{}
				totals[v] = tt
			}
			tt.dec += dec
			tt.errs += errs
			tt.bursts += bursts
			tt.biggest = max(tt.biggest, biggest)
			tt.stalls += stalls
		}
	}
	for _, v := range strings.Split(deadlines, ",") {
		tt := totals[v]
		t.Logf("total, deadline %s: %d decisions, %d errors (%.4f%%) in %d bursts (largest %d); %d process stalls >= 50 ms",
			v, tt.dec, tt.errs, 100*float64(tt.errs)/float64(max(tt.dec, 1)), tt.bursts, tt.biggest, tt.stalls)
	}
}
