package cli

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// runCheck runs `weir check ARGS` and returns its output and exit status.
func runCheck(t *testing.T, args ...string) (string, int, error) {
	t.Helper()
	var out bytes.Buffer
	err := Run(context.Background(), append([]string{"check"}, args...), IO{Stdout: &out, Stderr: &out})
	code := 0
	if err != nil {
		code = 1 // what main does with an error that carries no status
		var ee *ExitError
		if errors.As(err, &ee) {
			code = ee.Code
		}
	}
	return out.String(), code, err
}

// TestCheckExitStatus: 0 allowed, 1 denied, 2 bad usage, 3 refused by the
// server, 4 no decision (as `weir check --help` lists them).
func TestCheckExitStatus(t *testing.T) {
	s := start(t)
	// A port where nothing listens: one that was just free.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":{"code":"unavailable","message":"store unavailable"}}` + "\n"))
	}))
	defer failing.Close()
	garbled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>a proxy's page</html>"))
	}))
	defer garbled.Close()

	srv := []string{"--server", s.HTTP, "--token", ""}
	tests := []struct {
		name string
		args []string
		code int
		want string // in the output or the error
	}{
		{"allowed", append([]string{"--policy", "api", "--key", "a"}, srv...), 0, "allowed: policy api, limit 100/s burst=200, remaining 199"},
		// login allows 5 a minute: the 6th is denied for the rest of it.
		{"the last allowed", append([]string{"--policy", "login", "--key", "b", "--cost", "5"}, srv...), 0, "allowed: policy login"},
		{"denied", append([]string{"--policy", "login", "--key", "b"}, srv...), 1, "denied: policy login"},
		{"no policy", append([]string{"--key", "a"}, srv...), 2, `required flag "policy" not set`},
		{"bad flag", append([]string{"--policy", "api", "--bogus"}, srv...), 2, "unknown flag: --bogus"},
		{"bad cost", append([]string{"--policy", "api", "--cost", "many"}, srv...), 2, "invalid argument"},
		{"an argument", append([]string{"--policy", "api", "extra"}, srv...), 2, "unknown command"},
		{"missing CA", append([]string{"--policy", "api", "--ca", "/nonexistent/ca.pem"}, "--server", "https://127.0.0.1:1"), 2, "--ca /nonexistent/ca.pem"},
		{"unknown policy", append([]string{"--policy", "nope", "--key", "a"}, srv...), 3, "policy: unknown policy"},
		{"negative cost", append([]string{"--policy", "api", "--key", "a", "--cost", "-1"}, srv...), 3, "cost"},
		{"nothing listens", []string{"--policy", "api", "--key", "a", "--server", closed}, 4, "connection refused"},
		{"server fails", []string{"--policy", "api", "--key", "a", "--server", failing.URL}, 4, "503 Service Unavailable: store unavailable"},
		{"not a decision", []string{"--policy", "api", "--key", "a", "--server", garbled.URL}, 4, "bad answer from server"},
	}
	for _, tt := range tests {
		out, code, err := runCheck(t, tt.args...)
		text := out
		if err != nil {
			text += " " + err.Error()
		}
		if code != tt.code || !strings.Contains(text, tt.want) {
			t.Errorf("%s: weir check %q: status %d, %q; want status %d and %q", tt.name, tt.args, code, text, tt.code, tt.want)
		}
	}
}

// TestCheckLimitText: an unnamed limit shows as its numbers; a named one
// as its name and quota.
func TestCheckLimitText(t *testing.T) {
	answer := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(answer))
	}))
	defer srv.Close()
	tests := []struct{ answer, want string }{
		{`{"allowed":true,"policy":"api","limit":100,"limit_name":"100/s burst=200","remaining":7,"reset_after_ms":10}`,
			"allowed: policy api, limit 100/s burst=200, remaining 7, full again in 10ms\n"},
		{`{"allowed":false,"policy":"api","limit":10000,"limit_name":"daily","remaining":0,"retry_after_ms":1500,"reset_after_ms":3000}`,
			"denied: policy api, limit daily (quota 10000), remaining 0, retry after 1.5s, full again in 3s\n"},
		{`{"allowed":true,"policy":"api","limit":10,"limit_name":"5/s","remaining":3}`, // a name that reads as other numbers
			"allowed: policy api, limit 5/s (quota 10), remaining 3, full again in 0s\n"},
	}
	for _, tt := range tests {
		answer = tt.answer
		out, _, _ := runCheck(t, "--server", srv.URL, "--policy", "api", "--key", "k", "--token", "")
		if out != tt.want {
			t.Errorf("answer %s:\n got %q\nwant %q", tt.answer, out, tt.want)
		}
	}
}

// TestCheckSynopsis: the synopsis shows --server as optional, and the help
// its default.
func TestCheckSynopsis(t *testing.T) {
	out, code, err := runCheck(t, "--help")
	if err != nil || code != 0 {
		t.Fatalf("weir check --help: %v", err)
	}
	for _, want := range []string{"weir check --policy P --key K [--cost N] [--server URL]", `(default "http://127.0.0.1:8080")`, "3  the server refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("weir check --help lacks %q:\n%s", want, out)
		}
	}
}
