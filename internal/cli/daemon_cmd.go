package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
)

// daemonBinary is the engine's executable, cmd/skiffd.
const daemonBinary = "skiffd"

// newDaemonCommand is `skiff daemon`: this process becomes skiffd, which
// parses the flags (and answers --help). The engine is a binary of its own
// so that no other command pays for loading it.
func (c *CLI) newDaemonCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "daemon [OPTIONS]",
		Short:              "Run the skiff engine (serves the Docker Engine API)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := findDaemon()
			if err != nil {
				return err
			}
			// The process keeps showing as `skiff daemon ...` in ps (skiffd
			// takes the leading "daemon"); its name (comm) is skiffd.
			argv := []string{binName, "daemon"}
			if c.debug { // `skiff -D daemon`
				argv = append(argv, "--debug")
			}
			argv = append(argv, args...)
			err = syscall.Exec(path, argv, os.Environ())
			return fmt.Errorf("run the skiff engine %s: %w", path, err)
		},
	}
}

// findDaemon looks for skiffd next to this executable (where hack/build.sh
// and installs put it), then in PATH.
func findDaemon() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), daemonBinary)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(daemonBinary); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("cannot run the skiff engine: %s is neither next to this executable nor in PATH", daemonBinary)
}
