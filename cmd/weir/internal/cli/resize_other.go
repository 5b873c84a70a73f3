//go:build !unix

package cli

// onResize does nothing: there is no SIGWINCH here. The progress line
// still follows the terminal's width at its next drawing.
func onResize(f func()) (stop func()) { return func() {} }
