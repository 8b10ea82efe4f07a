// Command skiff is the skiff command line. `skiff daemon` runs the engine,
// skiffd, found next to this executable.
package main

import (
	"os"

	"github.com/skiff-dev/skiff/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
