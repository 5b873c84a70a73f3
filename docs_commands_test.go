package weir_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/weir-go/weir/internal/doccmd"
)

// testFunc is a test, example, fuzz test or benchmark in a _test.go file.
var testFunc = regexp.MustCompile(`(?m)^func ((?:Test|Example|Fuzz|Benchmark)\w*)\(`)

// TestDocsGoTestCommands: every `go test -run PATTERN PACKAGES` and `go
// test -bench PATTERN PACKAGES` in docs/ and README.md names tests that
// exist: the pattern (its first element, before any subtest '/') matches
// at least one test (or benchmark) function of the packages. So do the
// -test.run and -test.bench patterns given to a binary that `go test -c -o
// BIN` built earlier in the same file, and the tests that
// ./scripts/test-under-load is told to run. A renamed or deleted test that
// docs still tell readers to run fails here.
//
// The packages are resolved as a shell would: relative to the directory
// that a `cd DIR` earlier in the same code block or paragraph moved to (a
// `(cd DIR && ...)` subshell only for its own line), from the repository
// root otherwise; a command without a package tests the package of that
// directory. A command split over lines (a `\` continuation in a code
// block, an inline code span broken by the paragraph's line wrap) is read
// whole.
func TestDocsGoTestCommands(t *testing.T) {
	files, err := doccmd.Read(".")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, file := range files {
		c := &docChecker{t: t, file: file.Name, bins: map[string]testBinary{}}
		for _, u := range file.Units {
			cwd := "."
			for _, cmd := range u {
				cwd = c.line(cmd, cwd)
			}
		}
		checked += c.checked
	}
	if checked < 60 {
		t.Fatalf("checked %d -run/-bench patterns in the docs, want at least 60 (is the command parser broken?)", checked)
	}
	t.Logf("%d -run/-bench patterns checked", checked)
}

// testBinary is a test binary built by `go test -c -o BIN PKG`.
type testBinary struct {
	cwd  string
	pkgs []string
}

// docChecker checks the commands of one file.
type docChecker struct {
	t       *testing.T
	file    string
	bins    map[string]testBinary // by the -o path
	checked int
}

// line checks the commands of one command line run in directory cwd
// (relative to the repository root) and returns the directory the shell is
// in after it.
func (c *docChecker) line(cmd doccmd.Line, cwd string) string {
	where := c.file + ":" + strconv.Itoa(cmd.N)
	depth := 0 // subshell nesting
	outer := []string{}
	for _, sc := range doccmd.Split(cmd.Text) {
		switch sc.Op {
		case "(":
			outer = append(outer, cwd)
			depth++
			continue
		case ")":
			if depth > 0 {
				depth--
				cwd = outer[len(outer)-1]
				outer = outer[:len(outer)-1]
			}
			continue
		}
		args := sc.Args
		for len(args) > 0 && isAssignment(args[0]) {
			args = args[1:]
		}
		if len(args) == 0 {
			continue
		}
		switch {
		case args[0] == "cd" && len(args) == 2:
			if filepath.IsAbs(args[1]) {
				c.t.Errorf("%s: cd %s: an absolute path holds only on one machine; give it from the repository root", where, args[1])
				continue
			}
			cwd = filepath.Join(cwd, args[1])
		case args[0] == "./scripts/test-under-load" && len(args) > 2:
			c.goTest(where, cwd, args[2:], "-")
		default:
			for i := 0; i+1 < len(args); i++ {
				if args[i] == "go" && args[i+1] == "test" {
					c.goTest(where, cwd, args[i+2:], "-")
					break
				}
				if bin, ok := c.bins[args[i]]; ok {
					c.check(where, bin.cwd, bin.pkgs, patterns(args[i+1:], "-test."))
					break
				}
			}
		}
	}
	return cwd
}

// isAssignment reports whether a shell word is an environment assignment.
func isAssignment(w string) bool {
	name, _, ok := strings.Cut(w, "=")
	return ok && regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(name)
}

// goTest checks one `go test ARGS` run in cwd, and records the binary of a
// `go test -c -o BIN`.
func (c *docChecker) goTest(where, cwd string, args []string, prefix string) {
	var pkgs []string
	out, compile := "", false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-c":
			compile = true
		case a == "-o" && i+1 < len(args):
			out = args[i+1]
			i++
		case strings.HasPrefix(a, "-"):
			if takesValue(strings.TrimLeft(a, "-")) && !strings.Contains(a, "=") {
				i++
			}
		default:
			pkgs = append(pkgs, a)
		}
	}
	if len(pkgs) == 0 {
		pkgs = []string{"."}
	}
	if compile && out != "" {
		c.bins[out] = testBinary{cwd, pkgs}
	}
	c.check(where, cwd, pkgs, patterns(args, prefix))
}

// takesValue reports whether a go test flag (without its dashes) takes the
// next argument as its value.
func takesValue(flag string) bool {
	switch flag {
	case "run", "bench", "skip", "count", "benchtime", "timeout", "cpu", "parallel", "tags", "o",
		"coverprofile", "cpuprofile", "memprofile", "blockprofile", "mutexprofile", "trace",
		"fuzz", "fuzztime", "exec", "p", "list", "shuffle", "covermode", "coverpkg", "outputdir":
		return true
	}
	return false
}

// patterns returns the -run and -bench patterns of args (flags spelt with
// prefix: "-" for go test, "-test." for a test binary), by "run" and "bench".
func patterns(args []string, prefix string) map[string]string {
	p := map[string]string{}
	for i := 0; i < len(args); i++ {
		for _, name := range []string{"run", "bench"} {
			for _, dash := range []string{prefix, "-" + prefix} {
				switch {
				case args[i] == dash+name && i+1 < len(args):
					p[name] = args[i+1]
				case strings.HasPrefix(args[i], dash+name+"="):
					p[name] = strings.TrimPrefix(args[i], dash+name+"=")
				}
			}
		}
	}
	return p
}

// check checks patterns against the test functions of pkgs (relative to
// cwd).
func (c *docChecker) check(where, cwd string, pkgs []string, patterns map[string]string) {
	c.t.Helper()
	if len(patterns) == 0 {
		return
	}
	funcs := testFuncs(c.t, where, cwd, pkgs)
	for flag, p := range patterns {
		if p == "^$" || regexp.MustCompile(`^[A-Z]+$`).MatchString(p) { // "no tests" (XXX), or a placeholder (PATTERN)
			continue
		}
		first, _, _ := strings.Cut(p, "/")
		re, err := regexp.Compile(first)
		if err != nil {
			c.t.Errorf("%s: -%s %q: %v", where, flag, p, err)
			continue
		}
		found := false
		for _, f := range funcs {
			if (flag == "bench") == strings.HasPrefix(f, "Benchmark") && re.MatchString(f) {
				found = true
				break
			}
		}
		if !found {
			c.t.Errorf("%s: -%s %q matches no %s function in %s (from %s)", where, flag, p,
				map[bool]string{true: "Benchmark", false: "Test"}[flag == "bench"], strings.Join(pkgs, " "), cwd)
		}
		c.checked++
	}
}

// testFuncs lists the test functions of the packages (relative to cwd, in
// the repository; DIR/... takes the directories below DIR too).
func testFuncs(t *testing.T, where, cwd string, pkgs []string) []string {
	t.Helper()
	var funcs []string
	for _, p := range pkgs {
		dir, all := strings.CutSuffix(p, "/...")
		dir = filepath.Join(cwd, dir)
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s: package %s (from %s): %v", where, p, cwd, err)
			continue
		}
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != dir && !all {
				return filepath.SkipDir
			}
			if !strings.HasSuffix(path, "_test.go") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range testFunc.FindAllStringSubmatch(string(b), -1) {
				funcs = append(funcs, m[1])
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return funcs
}
