package cli

import (
	"bytes"
	"context"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionText(t *testing.T) {
	installed := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/weir-go/weir/cmd/weir", Version: "v0.1.0"},
		Deps: []*debug.Module{
			{Path: "github.com/spf13/cobra", Version: "v1.10.2"},
			{Path: "github.com/weir-go/weir", Version: "v0.1.0"},
			{Path: "github.com/weir-go/weir/server", Version: "v0.1.0"},
			{Path: "github.com/weir-go/weirdo", Version: "v9.9.9"},
		},
		Settings: []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"}},
	}
	fromTree := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/weir-go/weir/cmd/weir", Version: "(devel)"},
		Deps: []*debug.Module{
			{Path: "github.com/weir-go/weir/server", Version: "v0.1.0", Replace: &debug.Module{Path: "../../server"}},
			{Path: "github.com/weir-go/weir/redisstore", Version: "v0.1.0", Replace: &debug.Module{Path: "example.com/fork", Version: "v0.1.1"}},
		},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "e9a9072abc"},
			{Key: "vcs.time", Value: "2026-12-06T21:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"go install", installed, true, "weir v0.1.0\n" +
			"  github.com/weir-go/weir v0.1.0\n" +
			"  github.com/weir-go/weir/server v0.1.0\n" +
			"  built with go1.26.8 for linux/arm64\n"},
		{"working tree", fromTree, true, "weir (devel)\n" +
			"  github.com/weir-go/weir/server v0.1.0 => ../../server\n" +
			"  github.com/weir-go/weir/redisstore v0.1.0 => example.com/fork v0.1.1\n" +
			"  built with go1.26.8\n" +
			"  revision e9a9072abc (2026-12-06T21:00:00Z), with uncommitted changes\n"},
		{"no build info", nil, false, "weir (unknown)\n"},
	}
	for _, tt := range tests {
		if got := versionText(tt.bi, tt.ok); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

// TestVersionCommand: `weir version` and `weir --version` print the same
// text, starting with "weir ".
func TestVersionCommand(t *testing.T) {
	var outs []string
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out, errb bytes.Buffer
		if err := Run(context.Background(), args, IO{Stdout: &out, Stderr: &errb}); err != nil {
			t.Fatalf("%v: %v (stderr %q)", args, err, errb.String())
		}
		if !strings.HasPrefix(out.String(), "weir ") || !strings.HasSuffix(out.String(), "\n") {
			t.Errorf("%v printed %q", args, out.String())
		}
		outs = append(outs, out.String())
	}
	if outs[0] != outs[1] {
		t.Errorf("weir version printed %q, weir --version %q", outs[0], outs[1])
	}
}
