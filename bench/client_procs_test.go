package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/httplimit"
	"github.com/weir-go/weir/redisstore"
)

// Several processes, one upstream, on the real clock: the test binary
// starts itself twice more as child processes (TestClientChild), each
// running the recommended setup (a Pool over a Transport) with its own
// client of one real redis-server as the Transport's Store, against one
// upstream served by the parent (the soakAPI of client_test.go, an exact
// sliding log that counts). Told the limit, learnt from the fields, or
// learnt from the 429s of an upstream that sends no fields. It runs only
// when asked, with TestClientRealClock:
//
//	WEIR_CLIENT_SOAK=1 go test -run TestClientRealClockProcesses -v -timeout 30m ./bench
//
// WEIR_CLIENT_SETUP picks the setups whose name contains it: told,
// fields or 429s (WEIR_CLIENT_SETUP=429s runs the two learnt from 429s).
func TestClientRealClockProcesses(t *testing.T) {
	if os.Getenv("WEIR_CLIENT_SOAK") != "1" {
		t.Skip("a real-clock soak with child processes: set WEIR_CLIENT_SOAK=1")
	}
	addr := redisAddr(t)
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	const procs = 2
	var table strings.Builder
	fmt.Fprintf(&table, "| limit | latency | setup | processes × workers × jobs | utilisation | 429s | jobs failed |\n|---|---|---|---|---|---|---|\n")
	for _, c := range []struct {
		quota         int
		window        time.Duration
		latency       time.Duration
		workers, jobs int
		told, bare    bool
		setup         string
	}{
		{4, time.Second, 200 * time.Millisecond, 20, 60, true, false, "told"},
		{4, time.Second, 200 * time.Millisecond, 20, 60, false, false, "learnt (fields)"},
		{4, time.Second, 200 * time.Millisecond, 20, 100, false, true, "learnt (429s only)"},
		{100, time.Second, 200 * time.Millisecond, 200, 1000, true, false, "told"},
		{100, time.Second, 200 * time.Millisecond, 200, 1000, false, false, "learnt (fields)"},
		{100, time.Second, 200 * time.Millisecond, 200, 2000, false, true, "learnt (429s only)"},
	} {
		if only := os.Getenv("WEIR_CLIENT_SETUP"); only != "" && !strings.Contains(c.setup, only) {
			continue
		}
		if err := rc.FlushAll(t.Context()).Err(); err != nil {
			t.Fatal(err)
		}
		api := &soakAPI{quota: c.quota, window: c.window, latency: c.latency, bare: c.bare}
		url := serveSoak(t, api)
		cmds := make([]*exec.Cmd, procs)
		outs := make([]*bytes.Buffer, procs)
		for i := range procs {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run", "^TestClientChild$", "-test.v")
			cmd.Env = append(os.Environ(), "WEIR_CLIENT_CHILD=1", "WEIR_REDIS_ADDR="+addr, "WEIR_CLIENT_URL="+url,
				fmt.Sprintf("WEIR_CLIENT_ARGS=%d %d %d %d %t", c.quota, int64(c.window), c.workers, c.jobs, c.told))
			outs[i] = &bytes.Buffer{}
			cmd.Stdout, cmd.Stderr = outs[i], outs[i]
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds[i] = cmd
		}
		var failed int64
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Errorf("process %d: %v\n%s", i, err, outs[i])
			}
			for _, line := range strings.Split(outs[i].String(), "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "stats: "); ok {
					t.Logf("%s process %d: %s", c.setup, i, v)
					var ok, fail int64
					fmt.Sscanf(v, "done %d (ok %d, failed %d)", new(int64), &ok, &fail)
					failed += fail
				}
			}
		}
		r := api.result(failed)
		line := fmt.Sprintf("| %d per %v | %v | %s | %d × %d × %d | %.1f%% | %d of %d (%.2f%%) | %d |",
			c.quota, c.window, c.latency, c.setup, procs, c.workers, c.jobs, 100*r.util, r.limited, r.sent, 100*float64(r.limited)/float64(max(r.sent, 1)), r.failed)
		t.Log(line)
		table.WriteString(line + "\n")
	}
	t.Log("\n" + table.String())
}

// TestClientChild is one process of TestClientRealClockProcesses: it does
// nothing unless started by it.
func TestClientChild(t *testing.T) {
	if os.Getenv("WEIR_CLIENT_CHILD") != "1" {
		t.Skip("a child process of TestClientRealClockProcesses")
	}
	var quota, window int64
	var workers, jobs int
	var told bool
	if _, err := fmt.Sscanf(os.Getenv("WEIR_CLIENT_ARGS"), "%d %d %d %d %t", &quota, &window, &workers, &jobs, &told); err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(&redis.Options{Addr: os.Getenv("WEIR_REDIS_ADDR"), PoolSize: 64})
	defer rc.Close()
	store, err := redisstore.New(rc, redisstore.WithDeadline(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ht := &http.Transport{MaxIdleConnsPerHost: workers}
	defer ht.CloseIdleConnections()
	tr := &httplimit.Transport{Base: ht, Store: store, Timeout: 30 * time.Second}
	if told {
		tr.Limit = weir.Per(quota, time.Duration(window))
	}
	p := &httplimit.Pool{Transport: tr, Workers: workers}
	ch := make(chan *httplimit.Job, jobs)
	url := os.Getenv("WEIR_CLIENT_URL")
	for i := range jobs {
		req, _ := http.NewRequest("GET", url, nil)
		ch <- &httplimit.Job{ID: int64(i), Request: req}
	}
	close(ch)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	undone, err := p.Run(ctx, ch)
	if err != nil || len(undone) != 0 {
		t.Errorf("Run: %d undone, %v", len(undone), err)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	fmt.Printf("stats: %s; pace %+v\n", p.Stats(), tr.Pace(host))
}
