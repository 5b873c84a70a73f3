package weir_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var (
	// goTestCmd is a `go test` command of the docs, up to the end of its
	// line, its inline code span or a shell comment; an optional
	// `cd DIR &&` before it (environment assignments may stand between).
	goTestCmd = regexp.MustCompile("(?:cd ([\\w./-]+) *&& *(?:[A-Z_]+=\\S* +)*)?go test((?: +[^`#\\s]+)*)")
	// testFunc is a test, example, fuzz test or benchmark in a _test.go file.
	testFunc = regexp.MustCompile(`(?m)^func ((?:Test|Example|Fuzz|Benchmark)\w*)\(`)
)

// TestDocsGoTestCommands: every `go test -run PATTERN PACKAGES` and `go
// test -bench PATTERN PACKAGES` in docs/ and README.md names tests that
// exist: the pattern (its first element, before any subtest '/') matches
// at least one test (or benchmark) function of the packages. A renamed or
// deleted test that docs still tell readers to run fails here. Commands
// whose package cannot be found from the repository root (no package
// argument, or one that is not there, and no `cd DIR &&` before them) are
// listed with -v.
func TestDocsGoTestCommands(t *testing.T) {
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, file := range append(files, "README.md") {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range strings.Split(string(b), "\n") {
			for _, m := range goTestCmd.FindAllStringSubmatch(line, -1) {
				where := file + ":" + strconv.Itoa(n+1)
				checked += checkGoTest(t, where, m[1], strings.Fields(m[2]))
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d -run/-bench patterns in the docs, want at least 10 (is the command pattern broken?)", checked)
	}
	t.Logf("%d -run/-bench patterns checked", checked)
}

// checkGoTest checks one command's -run and -bench patterns against the
// test functions of its packages, and returns how many it checked.
func checkGoTest(t *testing.T, where, cd string, args []string) int {
	t.Helper()
	var pkgs []string
	patterns := map[string]string{} // flag -> pattern
	for i := 0; i < len(args); i++ {
		a := strings.TrimSuffix(args[i], ")") // (cd DIR && go test ...)
		switch {
		case (a == "-run" || a == "-bench") && i+1 < len(args):
			patterns[a] = strings.Trim(args[i+1], `'"`)
			i++
		case strings.HasPrefix(a, "-run=") || strings.HasPrefix(a, "-bench="):
			f, p, _ := strings.Cut(a, "=")
			patterns[f] = strings.Trim(p, `'"`)
		case a == "." || strings.HasPrefix(a, "./"):
			pkgs = append(pkgs, a)
		}
	}
	if len(patterns) == 0 {
		return 0
	}
	if len(pkgs) == 0 {
		pkgs = []string{"."}
	}
	if cd == "" && pkgs[0] == "." {
		t.Logf("%s: go test %s: no package to check from the repository root", where, strings.Join(args, " "))
		return 0
	}
	for _, p := range pkgs {
		if _, err := os.Stat(filepath.Join(cd, strings.TrimSuffix(p, "/..."))); cd == "" && err != nil {
			t.Logf("%s: go test %s: package %s is not in the repository root (a cd in the text before?)", where, strings.Join(args, " "), p)
			return 0
		}
	}
	funcs := testFuncs(t, where, cd, pkgs)
	n := 0
	for flag, p := range patterns {
		if p == "^$" || p == "XXX" { // the idioms for "no tests"
			continue
		}
		first, _, _ := strings.Cut(p, "/")
		re, err := regexp.Compile(first)
		if err != nil {
			t.Errorf("%s: go test %s %q: %v", where, flag, p, err)
			continue
		}
		found := false
		for _, f := range funcs {
			if (flag == "-bench") == strings.HasPrefix(f, "Benchmark") && re.MatchString(f) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s: go test %s %q matches no %s function in %s", where, flag, p, map[bool]string{true: "Benchmark", false: "Test"}[flag == "-bench"], strings.Join(pkgs, " "))
		}
		n++
	}
	return n
}

// testFuncs lists the test functions of the packages (relative to cd, in
// the repository; DIR/... takes the directories below DIR too).
func testFuncs(t *testing.T, where, cd string, pkgs []string) []string {
	t.Helper()
	var funcs []string
	for _, p := range pkgs {
		dir, all := strings.CutSuffix(p, "/...")
		dir = filepath.Join(cd, dir)
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s: package %s: %v", where, p, err)
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
