// Command skiff is the skiff command line and, as `skiff daemon`, the engine.
package main

import (
	"os"

	"github.com/skiff-dev/skiff/internal/cli"
	"github.com/skiff-dev/skiff/internal/cli/daemoncmd"
	"github.com/skiff-dev/skiff/internal/daemon"
)

func main() {
	daemonCmd := daemoncmd.New(daemoncmd.Runner{Run: daemon.Run, LoadConfigFile: daemon.LoadConfigFile})
	os.Exit(cli.Main(os.Args[1:], cli.WithCommands(daemonCmd)))
}
