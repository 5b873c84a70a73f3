//go:build !linux

package cli

import "io"

// spliceMover returns nil: splice(2) is Linux only, so weir pipe reads and
// writes through a buffer.
func spliceMover(r io.Reader, w io.Writer) func(n int) (int, error) { return nil }
