package daemontest

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/weir-go/weir/server/daemon"
)

// Serve is a RunFunc that runs `weir serve ARGS...` as the command line
// does without the command line's package: the same flags
// (daemon.Flags), then daemon.Run. args[0] must be "serve".
func Serve(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "serve" {
		return fmt.Errorf("daemontest.Serve runs only serve, not %q", args)
	}
	var fl daemon.Flags
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fl.AddFlags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments: %q", fs.Args())
	}
	o, err := fl.ServeOptions(stdout, stderr)
	if err != nil {
		return err
	}
	return daemon.Run(ctx, o)
}
