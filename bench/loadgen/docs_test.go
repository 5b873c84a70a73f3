package main

import (
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/weir-go/weir/internal/doccmd"
)

// TestDocsFlags: every loadgen command of docs/ and README.md (a binary
// built from ./bench/loadgen by `go build -o BIN` earlier in the same
// file, run as BIN ARGS) gives flags loadgen has, with values it takes. A
// shell variable ($!, $FPID) stands for a process id. The commands measure
// a server for minutes and are not run here.
func TestDocsFlags(t *testing.T) {
	files, err := doccmd.Read("../..")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, file := range files {
		bins := map[string]bool{}
		for _, unit := range file.Units {
			for _, l := range unit {
				for _, c := range doccmd.Split(l.Text) {
					if i := slices.Index(c.Args, "-o"); len(c.Args) > 4 && c.Args[0] == "go" && c.Args[1] == "build" && i > 0 && i+1 < len(c.Args) && slices.Contains(c.Args, "./bench/loadgen") {
						bins[c.Args[i+1]] = true
					}
					if len(c.Args) == 0 || !bins[c.Args[0]] {
						continue
					}
					n++
					args := slices.Clone(c.Args[1:])
					for i, a := range args {
						if strings.HasPrefix(a, "$") {
							args[i] = "1"
						}
					}
					if _, err := parseFlags(args, io.Discard); err != nil {
						t.Errorf("%s:%s: %s: %v", file.Name, strconv.Itoa(l.N), strings.Join(c.Args, " "), err)
					}
				}
			}
		}
	}
	if n < 5 {
		t.Fatalf("%d loadgen commands in the docs, want at least 5 (is the parser broken?)", n)
	}
}

// TestFlagsRejected: a value loadgen cannot use is an error naming its
// flag.
func TestFlagsRejected(t *testing.T) {
	for _, tt := range []struct {
		args []string
		flag string
	}{
		{[]string{"-proto", "http,smtp"}, "-proto"},
		{[]string{"-clients", "16,0"}, "-clients"},
		{[]string{"-clients", "x"}, "-clients"},
		{[]string{"-mode", "fast"}, "-mode"},
		{[]string{"-keys", "many"}, "-keys"},
		{[]string{"extra"}, "arguments"},
	} {
		if _, err := parseFlags(tt.args, io.Discard); err == nil || !strings.Contains(err.Error(), tt.flag) {
			t.Errorf("parseFlags(%q) = %v, want an error naming %s", tt.args, err, tt.flag)
		}
	}
}
