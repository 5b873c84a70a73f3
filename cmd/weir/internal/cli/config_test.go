package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckShowsLimitNames: config check lists each limit with its
// own name when it has one.
func TestConfigCheckShowsLimitNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weir.yaml")
	yaml := "policies:\n  api:\n    limits: [\"10/s\", \"5000/h algo=sliding-window name=hourly\"]\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"config", "check", path}, IO{Stdout: &out, Stderr: &out}); err != nil {
		t.Fatalf("config check: %v\n%s", err, out.String())
	}
	if want := "  api: [10/s] [hourly: 5000/h algo=sliding-window] key="; !strings.Contains(out.String(), want) {
		t.Errorf("config check printed\n%s\nwant a line with %q", out.String(), want)
	}
}
