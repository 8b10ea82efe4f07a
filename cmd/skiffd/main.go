// Command skiffd is the skiff engine: what `skiff daemon` runs. It lives
// apart from the CLI so that every `skiff` command starts without loading
// (or paying the package initialization of) the engine.
package main

import (
	"fmt"
	"os"

	"github.com/skiff-dev/skiff/internal/cli/daemoncmd"
	"github.com/skiff-dev/skiff/internal/daemon"
	"github.com/skiff-dev/skiff/internal/runtime"
)

func main() {
	// A descriptor the engine inherited without close-on-exec (a shell's
	// `exec 251>file`) would otherwise pass to every monitor, container and
	// exec it starts.
	if err := runtime.MarkInheritedCloseOnExec(); err != nil {
		fmt.Fprintln(os.Stderr, "skiffd: mark inherited descriptors close-on-exec:", err)
		os.Exit(1)
	}
	cmd := daemoncmd.New(daemoncmd.Runner{Run: daemon.Run, LoadConfigFile: daemon.LoadConfigFile})
	cmd.Use = "skiffd [OPTIONS]"
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "daemon" { // started as `skiff daemon`
		args = args[1:]
	}
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "skiffd:", err)
		os.Exit(1)
	}
}
