// Package cli is the weir command line: a cobra command tree whose Run is
// called by the thin main in cmd/weir, and by its tests in-process. Each
// subcommand is in a file of its own (serve.go, check.go, config.go,
// override.go, pipe.go, sim.go, version.go); commands lists them all.
package cli

import (
	"context"
	"io"
	"runtime/debug"
	"strconv"

	"github.com/spf13/cobra"
)

// IO is where a command reads and writes.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// ExitError carries a process exit status for main to use.
type ExitError struct {
	Code int
	Err  error
}

// Error returns the underlying error text, or the exit status.
func (e *ExitError) Error() string {
	if e.Err == nil {
		return "exit status " + strconv.Itoa(e.Code)
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *ExitError) Unwrap() error { return e.Err }

// Run runs the weir command line with args (without the program name).
// ctx is cancelled on SIGINT/SIGTERM by main.
func Run(ctx context.Context, args []string, stdio IO) error {
	root := &cobra.Command{
		Use:           "weir",
		Short:         "Weir: rate limiting as a library, a service and a pipe",
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version prints what `weir version` prints.
		Version: versionText(debug.ReadBuildInfo()),
	}
	root.SetVersionTemplate("{{.Version}}")
	root.SetIn(stdio.Stdin)
	root.SetOut(stdio.Stdout)
	root.SetErr(stdio.Stderr)
	root.SetArgs(args)
	for _, sub := range commands() {
		root.AddCommand(sub(stdio))
	}
	return root.ExecuteContext(ctx)
}

// commands lists the constructors of the subcommands (help sorts them by
// name). A new subcommand is added here, in a file of its own.
func commands() []func(IO) *cobra.Command {
	return []func(IO) *cobra.Command{
		checkCommand,    // check.go: one decision asked of a running server
		configCommand,   // config.go: config check
		newPipeCmd,      // pipe.go: throttle a byte stream
		overrideCommand, // override.go: per-key overrides on a running server
		serveCommand,    // serve.go: the daemon (package server/daemon)
		simCommand,      // sim.go: simulate a policy against traffic
		versionCommand,  // version.go
	}
}
