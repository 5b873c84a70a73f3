package cli

import "testing"

// TestExitErrorText: an ExitError without an underlying error reads as its
// status, negative ones included.
func TestExitErrorText(t *testing.T) {
	for _, tc := range []struct {
		code int
		want string
	}{
		{0, "exit status 0"},
		{2, "exit status 2"},
		{130, "exit status 130"},
		{-1, "exit status -1"},
	} {
		if got := (&ExitError{Code: tc.code}).Error(); got != tc.want {
			t.Errorf("ExitError{Code: %d}.Error() = %q, want %q", tc.code, got, tc.want)
		}
	}
}
