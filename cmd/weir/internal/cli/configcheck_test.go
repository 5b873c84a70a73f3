package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// weir config check prints "ok" only when everything is ok: a file whose
// policies parse but whose TLS files are missing prints nothing on
// stdout and exits 1 (issue 15: it used to print "ok" first).
func TestConfigCheckOKOnlyWhenAllOK(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "weir.yaml")
	os.WriteFile(cfg, []byte("server:\n  tls:\n    cert: tls/server.pem\n    key: tls/server-key.pem\npolicies:\n  p:\n    limits: [\"1/s\"]\n"), 0o600)
	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"config", "check", cfg}, IO{Stdout: &out, Stderr: &errb})
	if err == nil {
		t.Fatal("config check passed with missing TLS files")
	}
	if out.Len() != 0 {
		t.Errorf("config check failed (%v) but printed:\n%s", err, out.String())
	}
}

// A quota the Redis store cannot hold (2^63-1; the store's maximum is
// 2^51) is refused where it is written when the configured store is Redis
// (the file's server.store or --store), naming the file, the line and the
// key; on the memory store it is fine (issue 16.5). weir serve refuses it
// at start-up the same way, before it connects to anything.
func TestConfigCheckStoreLimits(t *testing.T) {
	dir := t.TempDir()
	body := "policies:\n  ok:\n    limits: [\"100/s\"]\n  huge:\n    limits:\n      - \"10/s\"\n      - {quota: 9223372036854775807, period: 1d, name: daily}\n"
	mem := filepath.Join(dir, "mem.yaml")
	os.WriteFile(mem, []byte(body), 0o600)
	red := filepath.Join(dir, "redis.yaml")
	os.WriteFile(red, []byte("server:\n  store: redis://127.0.0.1:1/0\n"+body), 0o600)
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := Run(context.Background(), args, IO{Stdout: &out, Stderr: &out})
		return out.String(), err
	}
	if out, err := run("config", "check", mem); err != nil {
		t.Errorf("memory store: %v\n%s", err, out)
	}
	want := `: policy "huge": limits[1] (daily): quota 9223372036854775807 is above the Redis store's maximum of 2^51`
	for _, c := range []struct {
		args []string
		at   string // file:line
	}{
		{[]string{"config", "check", red}, red + ":9"},
		{[]string{"config", "check", "--store", "redis://127.0.0.1:1/0", mem}, mem + ":7"},
		{[]string{"serve", "--config", mem, "--store", "redis://127.0.0.1:1/0", "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0"}, mem + ":7"},
	} {
		args := c.args
		out, err := run(args...)
		if err == nil || !strings.Contains(err.Error(), c.at+want) {
			t.Errorf("%v: %v\nwant %s%s", args, err, c.at, want)
		}
		if strings.Contains(out, "ok") {
			t.Errorf("%v printed %q", args, out)
		}
	}
}

// weir config check lists the plans and a policy's plan table, and refuses
// a plan the configured Redis store cannot hold, naming its line.
func TestConfigCheckPlans(t *testing.T) {
	dir := t.TempDir()
	body := "plans:\n  free: [\"10/s\"]\n  pro: [\"100/s burst=200\"]\npolicies:\n  api:\n    plans: {default: free, keys: {acme: pro}}\n"
	cfg := filepath.Join(dir, "weir.yaml")
	os.WriteFile(cfg, []byte(body), 0o600)
	var out, errb bytes.Buffer
	if err := Run(context.Background(), []string{"config", "check", cfg}, IO{Stdout: &out, Stderr: &errb}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"api: [per-s: 10/s] key={key} plans: default free, 1 key listed", "plan pro: [100/s burst=200]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("config check printed:\n%s\nwant a line with %q", out.String(), want)
		}
	}
	red := filepath.Join(dir, "redis.yaml")
	os.WriteFile(red, []byte("server:\n  store: redis://127.0.0.1:1/0\nplans:\n  free: [\"10/s\"]\n  pro:\n    - \"9007199254740992/d\"\npolicies:\n  api:\n    plans: {default: free}\n"), 0o600)
	err := Run(context.Background(), []string{"config", "check", red}, IO{Stdout: &out, Stderr: &errb})
	if err == nil || !strings.Contains(err.Error(), "redis.yaml:6: plans.pro[0]") || !strings.Contains(err.Error(), "quota") {
		t.Fatalf("a plan above the Redis maximum: %v", err)
	}
}
