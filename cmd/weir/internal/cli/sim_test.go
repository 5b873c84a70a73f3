package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weir-go/weir"
	"github.com/weir-go/weir/server/sim"
)

func runSim(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Run(context.Background(), append([]string{"sim"}, args...), IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut})
	return out.String(), err
}

// TestSimJSON: one JSON line per scenario, equal to what sim.Run gives for
// the same limits and traffic.
func TestSimJSON(t *testing.T) {
	out, err := runSim(t, "--limit", "10/s burst=20", "--limit", "10/s; 300/m algo=sliding-log",
		"--pattern", "poisson:25/s,seed=9,keys=2", "--for", "1m", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got []sim.Result
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r sim.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, r)
	}
	p, _ := sim.ParsePattern("poisson:25/s,seed=9,keys=2")
	want, err := sim.Run(context.Background(), []sim.Scenario{
		{Name: "10/s burst=20", Limits: []weir.Limit{weir.PerSecond(10).WithBurst(20)}},
		{Name: "10/s; 300/m algo=sliding-log", Limits: []weir.Limit{weir.PerSecond(10), weir.PerMinute(300).WithAlgorithm(weir.SlidingWindowLog)}},
	}, sim.Options{Pattern: p, For: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(got), out)
	}
	for i := range want {
		got[i].Wall, want[i].Wall = 0, 0
		got[i].Start, want[i].Start = got[i].Start.UTC(), want[i].Start.UTC()
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("scenario %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	// Two keys, each with its own 300 per minute.
	if got[1].Limits[1].MaxInWindow != 300 || got[1].Admitted != 600 || got[1].Keys != 2 {
		t.Errorf("the log of 300/m over a minute, two keys: admitted %d, max in window %d; want 600, 300", got[1].Admitted, got[1].Limits[1].MaxInWindow)
	}
}

// TestSimTextAndPlot: one line per scenario, from a policy file and a
// replay, and a PNG picture that decodes.
func TestSimTextAndPlot(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "weir.yaml")
	os.WriteFile(cfg, []byte("policies:\n  api:\n    limits: [\"2/s\"]\n  login:\n    limits: [\"3/m algo=sliding-log\"]\n    shadow: true\n"), 0o600)
	log := filepath.Join(dir, "access.log")
	os.WriteFile(log, []byte("1796551200.0 alice\n1796551200.1 alice\n1796551200.2 alice\n1796551200.3 alice\n1796551201.0 bob 2\n"), 0o600)
	plot := filepath.Join(dir, "out.png")
	out, err := runSim(t, "--config", cfg, "--policy", "api", "--policy", "login", "--pattern", "file:"+log, "--plot", plot)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{
		"api: offered 5, admitted 3 (60.00%), denied 2; [2/s] utilisation 100.0%, most in 1s 2 (bound 3), denied 2; retry after p50 200ms, p90 300ms, p99 300ms, max 300ms",
		"login: offered 5, admitted 4 (80.00%), denied 1 (shadow: the server would admit them all); [3/m algo=sliding-log] utilisation ",
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[0], want[0]) || !strings.HasPrefix(lines[1], want[1]) {
		t.Errorf("output:\n%s\nwant lines starting\n%s", out, strings.Join(want, "\n"))
	}
	f, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 800 {
		t.Errorf("picture: %v, %v", err, img)
	}
}

func TestSimBadUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "weir.yaml")
	os.WriteFile(cfg, []byte("policies:\n  api:\n    limits: [\"2/s\"]\n"), 0o600)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--pattern", "constant:1/s"}, "--limit"},
		{[]string{"--limit", "10/x", "--pattern", "constant:1/s"}, "--limit"},
		{[]string{"--limit", "10/s"}, "--pattern"},
		{[]string{"--limit", "10/s", "--pattern", "wave:1"}, "--pattern"},
		{[]string{"--limit", "10/s", "--pattern", "constant:1/s", "--for", "soon"}, "--for"},
		{[]string{"--limit", "10/s", "--pattern", "constant:1/s", "--plot", "a.gif"}, "--plot"},
		{[]string{"--config", cfg, "--pattern", "constant:1/s"}, "--config and --policy"},
		{[]string{"--policy", "api", "--pattern", "constant:1/s"}, "--config and --policy"},
		{[]string{"--config", cfg, "--policy", "nope", "--pattern", "constant:1/s"}, `--policy "nope"`},
		{[]string{"--config", filepath.Join(dir, "missing.yaml"), "--policy", "api", "--pattern", "constant:1/s"}, "--config"},
	}
	for _, tt := range tests {
		_, err := runSim(t, tt.args...)
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != 2 || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("weir sim %q: %v, want exit status 2 naming %s", tt.args, err, tt.want)
		}
	}
	// A concurrency limit cannot be simulated: an error, status 1.
	_, err := runSim(t, "--limit", "5/30s algo=concurrency", "--pattern", "constant:1/s", "--for", "1s")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 1 || !strings.Contains(err.Error(), "Algorithm") {
		t.Errorf("concurrency: %v", err)
	}
}
