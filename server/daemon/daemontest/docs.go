package daemontest

import (
	"os"
	"strings"
	"testing"
)

// Fenced returns the contents of the fenced code blocks of lang in the
// markdown file, each with its lines' newlines; lang "" gives the blocks
// whose opening fence names no language. An unterminated block fails the
// test.
func Fenced(t testing.TB, file, lang string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var block strings.Builder
	in, want := false, false
	for line := range strings.Lines(string(b)) {
		fence, ok := strings.CutPrefix(strings.TrimLeft(line, " "), "```")
		switch {
		case ok && !in:
			in, want = true, strings.TrimSpace(fence) == lang
			block.Reset()
		case ok && in:
			in = false
			if want {
				out = append(out, block.String())
			}
		case in && want:
			block.WriteString(line)
		}
	}
	if in {
		t.Fatalf("%s: unterminated code block", file)
	}
	return out
}
