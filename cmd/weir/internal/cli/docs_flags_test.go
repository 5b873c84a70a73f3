package cli

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/weir-go/weir/internal/doccmd"
)

// TestDocsWeirFlags: every weir command of docs/ and README.md (`weir
// ...`, `go run ./cmd/weir ...`, a built `/tmp/weir ...`, in code blocks,
// with or without a `$ ` prompt, and inline code spans) names a
// subcommand that exists, with flags it has and values they accept, and
// the number of arguments it takes. Usage synopses (with [optional] parts)
// are left out, and so is output (a line such as the banner's "weir
// serve: ..."). Most of these commands are also run by other tests; this
// one reaches those that cannot run here (deployments, measurements).
func TestDocsWeirFlags(t *testing.T) {
	files, err := doccmd.Read(filepath.Join(docsDir, ".."))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, file := range files {
		for _, unit := range file.Units {
			for _, l := range unit {
				text := strings.TrimPrefix(l.Text, "$ ")
				if strings.Contains(text, "[--") || strings.Contains(text, "...") {
					continue // a synopsis
				}
				for _, c := range doccmd.Split(text) {
					args := weirArgs(c.Args)
					if len(args) == 0 {
						continue
					}
					if !weirWord.MatchString(args[0]) {
						continue // output, such as the banner's "weir serve: ..."
					}
					n++
					where := file.Name + ":" + strconv.Itoa(l.N)
					if err := parseWeirArgs(args, !l.Block); err != nil {
						t.Errorf("%s: weir %s: %v", where, strings.Join(args, " "), err)
					}
				}
			}
		}
	}
	if n < 30 {
		t.Fatalf("checked %d weir commands of the docs, want at least 30 (is the parser broken?)", n)
	}
	t.Logf("%d weir commands checked", n)
}

// weirArgs returns the arguments of a weir command (nil if args is not
// one).
func weirArgs(args []string) []string {
	switch {
	case len(args) >= 2 && (args[0] == "weir" || strings.HasSuffix(args[0], "/weir")):
		return args[1:]
	case len(args) >= 4 && args[0] == "go" && args[1] == "run" && args[2] == "./cmd/weir":
		return args[3:]
	}
	return nil
}

// weirWord is what a weir command's first argument looks like: a
// subcommand's name or a flag.
var weirWord = regexp.MustCompile(`^(?:[a-z][a-z-]*|--?[a-z][a-z-]*(?:=.*)?)$`)

// parseWeirArgs finds the subcommand of args in weir's command tree and
// parses its flags and arguments, without running it. A mention in prose
// (an inline span) may name a subcommand without its arguments, or a flag
// without its value.
func parseWeirArgs(args []string, mention bool) error {
	root := &cobra.Command{Use: "weir"}
	root.Flags().Bool("version", false, "")
	for _, sub := range commands() {
		root.AddCommand(sub(IO{}))
	}
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	if cmd == root && !(len(args) == 1 && args[0] == "--version") {
		return errUnknownCommand(args)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		if mention && strings.HasPrefix(err.Error(), "flag needs an argument") {
			return nil
		}
		return err
	}
	if mention && len(rest) == 0 {
		return nil
	}
	return cmd.ValidateArgs(cmd.Flags().Args())
}

type errUnknownCommand []string

func (e errUnknownCommand) Error() string { return "no subcommand in " + strings.Join(e, " ") }
