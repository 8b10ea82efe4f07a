// Command skiffd is the skiff engine: what `skiff daemon` runs. It lives
// apart from the CLI so that every `skiff` command starts without loading
// (or paying the package initialization of) the engine.
package main

import (
	"fmt"
	"os"

	"github.com/skiff-dev/skiff/internal/cli/daemoncmd"
	"github.com/skiff-dev/skiff/internal/daemon"
)

func main() {
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
