package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// In the helper process (see pipeProcess), the test binary is weir: it
// runs the command line in WEIR_PIPE_ARGS exactly as cmd/weir's main does
// and exits.
func init() {
	if os.Getenv("WEIR_PIPE_HELPER") != "1" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, strings.Split(os.Getenv("WEIR_PIPE_ARGS"), "\n"), IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	var ee *ExitError
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &ee):
		if ee.Err != nil {
			fmt.Fprintln(os.Stderr, "weir:", ee.Err)
		}
		os.Exit(ee.Code)
	}
	fmt.Fprintln(os.Stderr, "weir:", err)
	os.Exit(1)
}

// pipeProcess returns a command running `weir args...` in a new process.
func pipeProcess(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WEIR_PIPE_HELPER=1", "WEIR_PIPE_ARGS="+strings.Join(args, "\n"))
	return cmd
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64 // -1: error
	}{
		{"0", 0},
		{"512", 512},
		{"512b", 512},
		{"256k", 256 << 10},
		{"256K", 256 << 10},
		{"2.5m", 2621440},
		{"2.5M", 2621440},
		{"1g", 1 << 30},
		{"1t", 1 << 40},
		{"1KiB", 1024},
		{"3MiB", 3 << 20},
		{"1GiB", 1 << 30},
		{"100MB", 100_000_000},
		{"100mb", 100_000_000},
		{"1kb", 1000},
		{"1GB", 1e9},
		{"1TB", 1e12},
		{"1.5", 1},
		{"0.3k", 307},
		{".5k", 512},
		{"256k/s", 256 << 10},
		{" 1m ", 1 << 20},
		{"", -1},
		{"k", -1},
		{"-1k", -1},
		{"1x", -1},
		{"1.2.3k", -1},
		{".", -1},
		{"1e3", -1},
		{"nan", -1},
		{"inf", -1},
		{"9999999999t", -1},
	}
	for _, tt := range tests {
		got, err := parseBytes(tt.in)
		if tt.want < 0 {
			if err == nil {
				t.Errorf("parseBytes(%q) = %d, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// runPipeCmd runs weir with args in-process and returns stdout, stderr and
// the error of Run.
func runPipeCmd(ctx context.Context, stdin io.Reader, stdout io.Writer, args ...string) (string, error) {
	var stderr bytes.Buffer
	err := Run(ctx, args, IO{Stdin: stdin, Stdout: stdout, Stderr: &stderr})
	return stderr.String(), err
}

// TestPipeCopies: the output is the input, byte for byte, at the rate
// asked for (in fake time).
func TestPipeCopies(t *testing.T) {
	in := randomBytes(t, 3<<20+12345)
	tests := []struct {
		args []string
		rate int64 // 0: unthrottled
		step int64 // bytes moved per wait: a tenth of a second's worth, at most the burst and 64 MiB
	}{
		{[]string{"pipe"}, 0, 0},
		{[]string{"pipe", "-q", "-L", "1g"}, 1 << 30, 64 << 20},
		{[]string{"pipe", "-q", "-L", "1m", "--burst", "64k"}, 1 << 20, 64 << 10},
		{[]string{"pipe", "-q", "-L", "1MiB", "-B", "1"}, 1 << 20, (1 << 20) / 10},
		{[]string{"pipe", "-q", "-L", "2.5m", "-B", "4k"}, 2621440, 262144},
		{[]string{"pipe", "-q", "-L", "1m", "--burst", "10k"}, 1 << 20, 10 << 10},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var out bytes.Buffer
				start := time.Now()
				stderr, err := runPipeCmd(t.Context(), bytes.NewReader(in), &out, tt.args...)
				if err != nil {
					t.Fatalf("Run: %v (stderr %q)", err, stderr)
				}
				if sha256.Sum256(out.Bytes()) != sha256.Sum256(in) {
					t.Fatalf("output differs from input (%d bytes, want %d)", out.Len(), len(in))
				}
				if stderr != "" {
					t.Errorf("stderr %q, want nothing (not a terminal)", stderr)
				}
				// The bucket starts empty, the first step is paid for
				// before it moves, and every later byte after it moved:
				// (step+len)/rate, to the nanosecond.
				took := time.Since(start)
				if tt.rate == 0 {
					if took != 0 {
						t.Errorf("unthrottled copy took %v", took)
					}
					return
				}
				exact := time.Duration(((int64(len(in))+tt.step)*1e9 + tt.rate - 1) / tt.rate)
				if took < exact || took > exact+time.Microsecond {
					t.Errorf("took %v, want %v (%d bytes at %d B/s)", took, exact, len(in), tt.rate)
				}
			})
		})
	}
}

// TestPipeBadInput: bad rates, sizes and flags give one line naming the
// problem and exit status 2, and copy nothing.
func TestPipeBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-L", "2x"}, "invalid rate"},
		{[]string{"-L", "0"}, "invalid rate"},
		{[]string{"-L", "-5k"}, "invalid rate"},
		{[]string{"-L", ""}, ""},
		{[]string{"-L", "1m", "-s", "lots"}, "invalid size"},
		{[]string{"-L", "1m", "-s", "0"}, "invalid size"},
		{[]string{"-S"}, "needs --size"},
		{[]string{"-L", "1m", "--burst", "0"}, "invalid burst"},
		{[]string{"--burst", "4k"}, "needs --rate-limit"},
		{[]string{"-L", "1", "--burst", "8g"}, "invalid burst"},
		{[]string{"-B", "0"}, "invalid buffer size"},
		{[]string{"-i", "0s"}, "invalid interval"},
		{[]string{"--bogus"}, "unknown flag"},
		{[]string{"-L"}, "flag needs an argument"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		_, err := runPipeCmd(t.Context(), strings.NewReader("data"), &out, append([]string{"pipe"}, tt.args...)...)
		if tt.want == "" { // -L "" means no limit: fine
			if err != nil {
				t.Errorf("%q: %v", tt.args, err)
			}
			continue
		}
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != 2 || ee.Err == nil {
			t.Errorf("%q: error %v, want exit status 2", tt.args, err)
			continue
		}
		if msg := ee.Err.Error(); !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
			t.Errorf("%q: message %q, want one line with %q", tt.args, msg, tt.want)
		}
		if out.Len() != 0 {
			t.Errorf("%q: copied %d bytes", tt.args, out.Len())
		}
	}
}

// brokenPipe accepts n bytes, then fails as a closed pipe does.
type brokenPipe struct {
	n   int
	err error
}

func (w *brokenPipe) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, w.err
	}
	w.n -= len(p)
	return len(p), nil
}

// endless reads zeros forever.
type endless struct{}

func (endless) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestPipeClosedOutput: when the reader of the output goes away (EPIPE),
// weir pipe stops quietly with status 0; other write errors are status 1.
func TestPipeClosedOutput(t *testing.T) {
	tests := []struct {
		err  error
		code int
	}{
		{syscall.EPIPE, 0},
		{&os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}, 0},
		{io.ErrClosedPipe, 0},
		{syscall.ENOSPC, 1},
	}
	for _, tt := range tests {
		stderr, err := runPipeCmd(t.Context(), endless{}, &brokenPipe{n: 100000, err: tt.err}, "pipe", "-L", "1t")
		code := 0
		var ee *ExitError
		if errors.As(err, &ee) {
			code = ee.Code
		} else if err != nil {
			code = -1
		}
		if code != tt.code || stderr != "" {
			t.Errorf("write error %v: Run = %v (status %d), stderr %q; want status %d", tt.err, err, code, stderr, tt.code)
		}
	}
}

// TestPipeStopAtSize: -S stops after exactly --size bytes; throttled, it
// pays for no more than that (after the first step, paid before it
// moves), so the copy takes exactly (step+size)/rate.
func TestPipeStopAtSize(t *testing.T) {
	for _, rate := range []string{"", "1m"} {
		synctest.Test(t, func(t *testing.T) {
			args := []string{"pipe", "-S", "-s", "100001", "-B", "4k"}
			if rate != "" {
				args = append(args, "-L", rate)
			}
			var out bytes.Buffer
			start := time.Now()
			if _, err := runPipeCmd(t.Context(), endless{}, &out, args...); err != nil {
				t.Fatal(err)
			}
			if out.Len() != 100001 {
				t.Errorf("-L %q: copied %d bytes, want 100001", rate, out.Len())
			}
			want := time.Duration(0)
			if rate != "" {
				want = (100001 + (1<<20)/10) * time.Second / (1 << 20)
			}
			if d := time.Since(start) - want; d < -time.Microsecond || d > time.Microsecond {
				t.Errorf("-L %q: took %v, want %v", rate, time.Since(start), want)
			}
		})
	}
}

// TestPipeInterrupt: cancelling the context (SIGINT in main) ends a
// throttled copy at once with status 130.
func TestPipeInterrupt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(1500*time.Millisecond, cancel)
		start := time.Now()
		_, err := runPipeCmd(ctx, endless{}, io.Discard, "pipe", "-L", "1k")
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != 130 || ee.Err != nil {
			t.Errorf("Run = %v, want silent exit status 130", err)
		}
		if d := time.Since(start); d != 1500*time.Millisecond {
			t.Errorf("stopped after %v, want 1.5s", d)
		}
	})
}

// TestPipeProgress: -f draws a progress line every interval, with the
// percentage and ETA when the size is known, and ends it with a newline.
func TestPipeProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var stderr bytes.Buffer
		// The bucket starts empty; the copy pays for its first 10 KiB
		// (the burst) before moving them, then moves 10 KiB and pays for
		// them: 10 KiB at 50 ms, 100 ms, ..., so 10·⌊t/50ms⌋ KiB by t,
		// never more than 200 KiB/s·t. The ticks at 1.37 s, 2.74 s and
		// 4.11 s fall between steps; the 100th step is paid for at
		// 5.05 s, and the end of the input costs nothing more. Standard
		// error is not a terminal: the lines fit 80 columns.
		in := make([]byte, 1000<<10)
		err := Run(t.Context(), []string{"pipe", "-f", "-L", "200k", "--burst", "10k", "-s", "1000k", "-i", "1370ms"},
			IO{Stdin: bytes.NewReader(in), Stdout: io.Discard, Stderr: &stderr})
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimPrefix(stderr.String(), "\r"), "\r")
		wants := []string{
			"  270KiB 0:00:01 [   197KiB/s] [   197KiB/s] [====>          ]  27% ETA 0:00:03",
			"  540KiB 0:00:02 [   197KiB/s] [   197KiB/s] [========>      ]  54% ETA 0:00:02",
			"  820KiB 0:00:04 [   204KiB/s] [   200KiB/s] [============>  ]  82% ETA 0:00:00",
			" 0.98MiB 0:00:05 [   198KiB/s] [   198KiB/s] [==============] 100%             \n",
		}
		if len(lines) != len(wants) {
			t.Fatalf("%d progress lines, want %d: %q", len(lines), len(wants), stderr.String())
		}
		for i, want := range wants {
			if lines[i] != want {
				t.Errorf("line %d:\n got %q\nwant %q", i, lines[i], want)
			}
		}
	})
}

// TestPipeProcess runs weir pipe as a real process: through real pipes
// (the splice path) the output's checksum is the input's; a bad rate is
// one line on stderr and status 2; a reader that goes away early (as
// `| head -c 100` does) ends it quietly with status 0.
func TestPipeProcess(t *testing.T) {
	in := randomBytes(t, 4<<20+7)
	t.Run("checksum", func(t *testing.T) {
		for _, extra := range [][]string{nil, {"-C"}} {
			cmd := pipeProcess(t, append([]string{"pipe", "-q", "-L", "64m"}, extra...)...)
			cmd.Stdin = bytes.NewReader(in) // exec copies through a pipe
			var out, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v: %v, stderr %q", extra, err, stderr.String())
			}
			if sha256.Sum256(out.Bytes()) != sha256.Sum256(in) {
				t.Errorf("%v: output differs (%d bytes, want %d)", extra, out.Len(), len(in))
			}
		}
	})
	// A real process sleeps on a timer file in the network poller
	// (pollerSleeper), which the in-process tests cannot use.
	t.Run("rate", func(t *testing.T) {
		cmd := pipeProcess(t, "pipe", "-q", "-L", "4m")
		cmd.Stdin = bytes.NewReader(in[:1<<20])
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v, stderr %q", err, stderr.String())
		}
		// It starts with an empty bucket and pays for the last step
		// before it exits: 1 MiB at 4 MiB/s takes 250 ms at least.
		if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
			t.Errorf("1 MiB at 4 MiB/s took %v, want 250ms (and well under 5s)", d)
		}
		if !bytes.Equal(out.Bytes(), in[:1<<20]) {
			t.Errorf("output differs (%d bytes)", out.Len())
		}
	})
	t.Run("interrupt while sleeping", func(t *testing.T) {
		zero, err := os.Open("/dev/zero")
		if err != nil {
			t.Skip("no /dev/zero:", err)
		}
		defer zero.Close()
		cmd := pipeProcess(t, "pipe", "-q", "-L", "1k")
		cmd.Stdin = zero
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Its first byte means it runs, and it now sleeps for a second
		// (1 KiB steps at 1 KiB/s) before the next.
		if _, err := io.ReadFull(out, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		go io.Copy(io.Discard, out)
		sent := time.Now()
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		var xe *exec.ExitError
		if !errors.As(err, &xe) || xe.ExitCode() != 130 {
			t.Fatalf("exit %v, want status 130", err)
		}
		if d := time.Since(sent); d > 500*time.Millisecond { // a step sleeps 1 s at 1 KiB/s
			t.Errorf("exited %v after the interrupt", d)
		}
	})
	t.Run("bad rate", func(t *testing.T) {
		cmd := pipeProcess(t, "pipe", "-L", "fast")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var xe *exec.ExitError
		if !errors.As(err, &xe) || xe.ExitCode() != 2 {
			t.Fatalf("exit %v, want status 2", err)
		}
		if s := stderr.String(); strings.Count(s, "\n") != 1 || !strings.Contains(s, "invalid rate") {
			t.Errorf("stderr %q, want one line about the rate", s)
		}
	})
	t.Run("closed stdout", func(t *testing.T) {
		zero, err := os.Open("/dev/zero")
		if err != nil {
			t.Skip("no /dev/zero:", err)
		}
		defer zero.Close()
		for _, extra := range [][]string{nil, {"-C"}} {
			cmd := pipeProcess(t, append([]string{"pipe", "-L", "100m"}, extra...)...)
			cmd.Stdin = zero
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(out, make([]byte, 100)); err != nil {
				t.Fatal(err)
			}
			out.Close() // as head does after 100 bytes
			if err := cmd.Wait(); err != nil {
				t.Errorf("%v: %v, stderr %q; want a quiet exit 0", extra, err, stderr.String())
			}
			if stderr.Len() != 0 {
				t.Errorf("%v: stderr %q", extra, stderr.String())
			}
		}
	})
}

// blockedReader blocks in Read until unblock is closed, like a terminal
// with no input.
type blockedReader struct{ unblock chan struct{} }

func (r blockedReader) Read(p []byte) (int, error) { <-r.unblock; return 0, io.EOF }

// TestPipeInterruptBlockedRead: an interrupt ends weir pipe even while it
// is stuck reading an input that has nothing to say.
func TestPipeInterruptBlockedRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		in := blockedReader{unblock: make(chan struct{})}
		defer close(in.unblock) // let the stuck copy end, for goleak
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		_, err := runPipeCmd(ctx, in, io.Discard, "pipe", "-q")
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != 130 {
			t.Errorf("Run = %v, want exit status 130", err)
		}
		if d := time.Since(start); d > 1100*time.Millisecond {
			t.Errorf("stopped after %v, want within 100ms of the interrupt", d)
		}
	})
}
