package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-go/weir/internal/doccmd"
)

// simDocMaxFor is the longest run (--for) of a documented `weir sim`
// command that TestDocsSim runs as written; a longer one runs for this
// long instead, and only the shape of its output is compared.
const simDocMaxFor = time.Minute

// TestDocsSim runs every `weir sim` command of docs/ and README.md, in a
// code block or an inline code span, as `weir sim` runs it (in process,
// in a temporary directory; a --plot file goes there too). A command
// whose run (--for) is a minute or less runs as written, and when the doc
// shows its output (the code block right after the command's), prints
// exactly those lines. A longer one (a day) runs for a minute instead,
// which the flags allow without changing anything else, and prints a line
// of the shown form per scenario: the same scenarios, limits and fields,
// the numbers aside (and the retry-after part, which a line has only when
// there were denials). A command whose output the doc does not show must
// print one line per scenario. A file the command reads (a replay) is made by the
// commands before it in the block (awk, run with bash) from the file the
// doc shows in a block introduced by a line ending in "`NAME`:".
func TestDocsSim(t *testing.T) {
	files, err := doccmd.Read(filepath.Join(docsDir, ".."))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, file := range files {
		doc := file.Text
		for _, unit := range file.Units {
			for i, l := range unit {
				for _, c := range doccmd.Split(l.Text) {
					if len(c.Args) < 3 || c.Args[0] != "weir" || c.Args[1] != "sim" || !strings.HasPrefix(c.Args[2], "--") {
						continue // the command's name, or its synopsis
					}
					n++
					where := file.Name + ":" + strconv.Itoa(l.N)
					var before []doccmd.Line
					var shown []string
					if l.Block {
						before, shown = unit[:i], outputAfter(doc, l.N)
					}
					t.Run(where, func(t *testing.T) { checkSimCommand(t, where, doc, c.Args[2:], before, shown) })
				}
			}
		}
	}
	if n < 8 {
		t.Fatalf("%d weir sim commands in the docs, want at least 8 (is the parser broken?)", n)
	}
}

// checkSimCommand runs one documented `weir sim ARGS` (see TestDocsSim).
func checkSimCommand(t *testing.T, where, doc string, args []string, before []doccmd.Line, shown []string) {
	dir := t.TempDir()
	args = slices.Clone(args)
	short := false
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--for":
			d, err := parseSimFor(args[i+1])
			if err != nil {
				t.Fatalf("%s: --for %s: %v", where, args[i+1], err)
			}
			if d > simDocMaxFor {
				args[i+1], short = simDocMaxFor.String(), true
			}
		case "--plot":
			args[i+1] = filepath.Join(dir, filepath.Base(args[i+1]))
		}
	}
	// The files the block's earlier commands read, then those commands.
	for _, l := range before {
		for _, c := range doccmd.Split(l.Text) {
			for _, w := range c.Args {
				if content, ok := shownFile(doc, w); ok {
					if err := os.WriteFile(filepath.Join(dir, w), []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		cmd := exec.Command("bash", "-c", l.Text)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %s: %v\n%s", where, l.Text, err, out)
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir) // a relative file: pattern is read from the block's directory
	out, err := runSim(t, args...)
	if err != nil {
		t.Fatalf("%s: weir sim %q: %v", where, args, err)
	}
	t.Chdir(wd)
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if shown == nil {
		if scenarios := countFlag(args, "--limit") + countFlag(args, "--policy"); len(got) != scenarios {
			t.Fatalf("%s: %d lines for %d scenarios:\n%s", where, len(got), scenarios, out)
		}
		return
	}
	if short {
		shapes := simShapes(shown)
		for i, g := range got {
			// Without denials there is no retry-after part.
			if i < len(shapes) && strings.Contains(g, "), denied 0;") && !strings.Contains(g, "; retry after ") {
				shapes[i], _, _ = strings.Cut(shapes[i], "; retry after ")
			}
		}
		got, shown = simShapes(got), shapes
	}
	if !slices.Equal(got, shown) {
		t.Errorf("%s: weir sim %q prints\n%s\nthe doc shows\n%s", where, args, strings.Join(got, "\n"), strings.Join(shown, "\n"))
	}
}

// parseSimFor reads a --for value as weir sim does, days included.
func parseSimFor(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		return time.Duration(n) * 24 * time.Hour, err
	}
	return time.ParseDuration(s)
}

func countFlag(args []string, flag string) int {
	n := 0
	for _, a := range args {
		if a == flag {
			n++
		}
	}
	return n
}

// simNumber is a figure of a weir sim line: a count, a percentage, a
// duration, or "not tracked" in its place.
var simNumber = regexp.MustCompile(`not tracked|[0-9][0-9.]*(?:%|[a-zµ]+[0-9.a-zµ]*)?`)

// simShapes replaces the figures of lines that follow a limit's text (the
// scenario and "[LIMIT]") by #, keeping the limits' own text.
func simShapes(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		name, rest, _ := strings.Cut(l, ": ")
		var b strings.Builder
		b.WriteString(name + ": ")
		for rest != "" {
			open := strings.IndexByte(rest, '[')
			if open < 0 {
				open = len(rest)
			}
			b.WriteString(simNumber.ReplaceAllString(rest[:open], "#"))
			rest = rest[open:]
			if end := strings.IndexByte(rest, ']'); end >= 0 {
				b.WriteString(rest[:end+1])
				rest = rest[end+1:]
			}
		}
		out[i] = b.String()
	}
	return out
}

// outputAfter returns the lines of the fenced block (without an info
// string) that follows, after blank lines only, the block holding line n
// (1-based) of doc: the output the doc shows for a command; nil if none.
func outputAfter(doc string, n int) []string {
	lines := strings.Split(doc, "\n")
	i := n // 0-based index of the line after line n
	for i < len(lines) && strings.TrimSpace(lines[i]) != "```" {
		i++
	}
	for i++; i < len(lines) && strings.TrimSpace(lines[i]) == ""; i++ {
	}
	if i >= len(lines) || strings.TrimSpace(lines[i]) != "```" {
		return nil
	}
	var out []string
	for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
		out = append(out, lines[i])
	}
	return out
}

// shownFile returns the content of the fenced block that a line ending in
// "`name`:" introduces in doc.
func shownFile(doc, name string) (string, bool) {
	intro := "`" + name + "`:\n"
	i := strings.Index(doc, intro)
	if i < 0 {
		return "", false
	}
	rest := strings.TrimLeft(doc[i+len(intro):], "\n")
	if !strings.HasPrefix(rest, "```") {
		return "", false
	}
	rest = rest[strings.IndexByte(rest, '\n')+1:]
	end := strings.Index(rest, "```")
	if end < 0 {
		return "", false
	}
	return rest[:end], true
}
