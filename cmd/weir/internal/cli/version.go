package cli

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

func versionCommand(stdio IO) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of weir and of the Weir modules it was built from",
		Long: `Print the version of weir and of the Weir modules it was built from,
the Go version, and the version-control revision when the build recorded one.

The first line is "weir VERSION": the module version for a binary built by
go install github.com/weir-go/weir/cmd/weir@VERSION, "(devel)" for a build
from a working tree (its revision follows). weir --version prints the same.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprint(stdio.Stdout, versionText(debug.ReadBuildInfo()))
			return err
		},
	}
}

// weirModule is the path of the root module; the others are below it.
const weirModule = "github.com/weir-go/weir"

// versionText describes the build: the main module's version, the Weir
// modules it was built with, Go's version and platform, and the VCS
// revision. ok false (a binary built without module support) gives
// "weir (unknown)".
func versionText(bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return "weir (unknown)\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "weir %s\n", moduleVersion(&bi.Main))
	for _, d := range bi.Deps {
		if d.Path == weirModule || strings.HasPrefix(d.Path, weirModule+"/") {
			fmt.Fprintf(&b, "  %s %s\n", d.Path, moduleVersion(d))
		}
	}
	var goos, goarch string
	vcs := map[string]string{}
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		case "vcs.revision", "vcs.time", "vcs.modified":
			vcs[s.Key] = s.Value
		}
	}
	fmt.Fprintf(&b, "  built with %s", bi.GoVersion)
	if goos != "" {
		fmt.Fprintf(&b, " for %s/%s", goos, goarch)
	}
	b.WriteString("\n")
	if rev := vcs["vcs.revision"]; rev != "" {
		fmt.Fprintf(&b, "  revision %s", rev)
		if t := vcs["vcs.time"]; t != "" {
			fmt.Fprintf(&b, " (%s)", t)
		}
		if vcs["vcs.modified"] == "true" {
			b.WriteString(", with uncommitted changes")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// moduleVersion is m's version, and where a replace directive (or a
// go.work) took it from.
func moduleVersion(m *debug.Module) string {
	v := m.Version
	if v == "" {
		v = "(devel)"
	}
	if r := m.Replace; r != nil {
		if r.Version != "" {
			return v + " => " + r.Path + " " + r.Version
		}
		return v + " => " + r.Path
	}
	return v
}
