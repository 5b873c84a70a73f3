package redistest

import "os"

// Multi-process tests re-execute the test binary with
// -test.run=TestHelperProcess and WEIR_HELPER set to the helper's name; the
// test's TestMain calls RunHelper instead of running the tests.

var helpers = map[string]func(){}

// RegisterHelper registers a helper process body under name.
func RegisterHelper(name string, fn func()) { helpers[name] = fn }

// IsHelper reports whether this process is a helper.
func IsHelper() bool { return os.Getenv("WEIR_HELPER") != "" }

// RunHelper runs the helper named by WEIR_HELPER and exits.
func RunHelper() {
	fn, ok := helpers[os.Getenv("WEIR_HELPER")]
	if !ok {
		os.Stderr.WriteString("redistest: unknown helper " + os.Getenv("WEIR_HELPER") + "\n")
		os.Exit(2)
	}
	fn()
	os.Exit(0)
}
