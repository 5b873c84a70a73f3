package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv("STREAM_HELPER") == "1" {
		os.Exit(helper())
	}
	goleak.VerifyTestMain(m)
}

// helper is the server process of TestPeakMemory: it serves 400,000
// records at 1 GiB/s, prints its address, and stops when stdin closes.
func helper() int {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	err := run(ctx, "127.0.0.1:0", 400_000, 1<<30, 1<<30, func(a net.Addr) { fmt.Println(a) })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// readRSS returns the resident set size of process pid in bytes, from
// /proc (0 where there is no /proc).
func readRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// decodeArray reads the JSON array of records that writeRecords writes,
// one line at a time, checks that it holds want records in order (every
// 97th decoded in full, and the first and last), and calls every each
// 100,000 records.
func decodeArray(t *testing.T, r io.Reader, want int, every func(i int)) {
	t.Helper()
	sc := bufio.NewScanner(r)
	if !sc.Scan() || sc.Text() != "[" {
		t.Fatalf("first line %q, want [", sc.Text())
	}
	i := 0
	for sc.Scan() {
		line := sc.Bytes()
		if string(line) == "]" {
			break
		}
		if i > 0 {
			if len(line) == 0 || line[0] != ',' {
				t.Fatalf("record %d: line %q does not start with a comma", i, line)
			}
			line = line[1:]
		}
		if i%97 == 0 || i == want-1 {
			var rec record
			if err := json.Unmarshal(line, &rec); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			if rec != makeRecord(i) {
				t.Fatalf("record %d is %+v", i, rec)
			}
		}
		i++
		if i%100_000 == 0 && every != nil {
			every(i)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if i != want {
		t.Fatalf("%d records, want %d", i, want)
	}
	if sc.Scan() {
		t.Fatalf("data after the array: %q", sc.Text())
	}
}

// TestPeakMemory streams the whole array (about 45 MB) from a server
// process and checks that the server's resident memory stays flat and its
// peak under 30 MiB (60 MiB under the race detector): the array is never
// held in memory. The rate is raised to 1 GiB/s so that the test takes
// seconds, not the 23 minutes that 32 KiB/s would take; the code path is
// the same.
func TestPeakMemory(t *testing.T) {
	limit := int64(30 << 20)
	if raceEnabled {
		limit *= 2
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "STREAM_HELPER=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + strings.TrimSpace(addr) + "/records")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	counted := &countingReader{r: resp.Body}
	var samples []string
	var first int64
	decodeArray(t, counted, 400_000, func(i int) {
		rss := readRSS(cmd.Process.Pid)
		samples = append(samples, fmt.Sprintf("%d records: %.1f MiB", i, float64(rss)/(1<<20)))
		if rss > limit {
			t.Errorf("server RSS %d bytes after %d records, over %d", rss, i, limit)
		}
		if first == 0 {
			first = rss
		} else if rss > first+8<<20 {
			t.Errorf("server RSS grew from %d to %d bytes between 100,000 and %d records", first, rss, i)
		}
	})
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("streamed %d bytes; server RSS while streaming: %s", counted.n, strings.Join(samples, ", "))
	if counted.n < 40<<20 {
		t.Errorf("only %d bytes streamed: too small to show that memory stays flat", counted.n)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		peak := ru.Maxrss << 10 // kilobytes on Linux
		t.Logf("server peak RSS %.1f MiB", float64(peak)/(1<<20))
		if peak > limit {
			t.Errorf("server peak RSS %d bytes, over %d", peak, limit)
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// flushRecorder counts flushes.
type flushRecorder struct {
	*httptest.ResponseRecorder
	flushes int
}

func (f *flushRecorder) Flush() { f.flushes++; f.ResponseRecorder.Flush() }

// TestRate: one client gets the array at 32 KiB/s (in fake time), flushed
// every 64 records.
func TestRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 3000
		h, err := newHandler(n, 32<<10, 10<<20)
		if err != nil {
			t.Fatal(err)
		}
		rec := &flushRecorder{ResponseRecorder: httptest.NewRecorder()}
		start := time.Now()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/records", nil))
		took := time.Since(start)
		size := rec.Body.Len()
		decodeArray(t, rec.Body, n, nil)
		// The first 4 KiB (the default burst at 32 KiB/s) pass at once.
		want := time.Duration(float64(size-4096) / (32 << 10) * float64(time.Second))
		if d := took - want; d > want/100 || d < -want/100 {
			t.Errorf("%d bytes took %v, want %v ±1%%", size, took, want)
		}
		if rec.flushes != n/64 {
			t.Errorf("%d flushes, want %d", rec.flushes, n/64)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
	})
}

// TestClientGone: when the client goes away, the handler stops at once.
func TestClientGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := newHandler(400_000, 32<<10, 10<<20)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(2*time.Second, cancel)
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/records", nil).WithContext(ctx))
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("handler returned after %v, want 2s", d)
		}
		if n := rec.Body.Len(); n > 3*32<<10 {
			t.Errorf("%d bytes sent in 2 s at 32 KiB/s", n)
		}
	})
}

func TestBadRates(t *testing.T) {
	for _, tt := range []struct{ rate, total int64 }{{0, 1}, {1, 0}, {-1, 1}} {
		if _, err := newHandler(1, tt.rate, tt.total); err == nil {
			t.Errorf("newHandler(rate %d, total %d) succeeded", tt.rate, tt.total)
		}
	}
}
