package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// composeBinary is docker compose built for skiff, cmd/skiff-compose. It is a
// binary (and a Go module) of its own: compose's libraries are large, and
// every other skiff command would pay for loading them.
const composeBinary = "skiff-compose"

// newComposeCommand is `skiff compose`: this process becomes skiff-compose,
// which parses the arguments as `docker compose` does and talks to the
// engine this CLI would talk to. `skiff compose install-plugin` is skiff's
// own.
func (c *CLI) newComposeCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "compose [OPTIONS] COMMAND",
		Short:              "Define and run multi-container applications (docker compose)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := findCompose()
			if err != nil {
				return err
			}
			if len(args) > 0 && args[0] == "install-plugin" {
				return c.installComposePlugin(path, args[1:])
			}
			env, err := c.composeEnv(cmd.Context())
			if err != nil {
				return err
			}
			// ps shows `skiff compose ARGS`; skiff-compose drops the
			// leading "compose" when its argv[0] is skiff.
			argv := []string{binName, "compose"}
			if c.debug { // `skiff -D compose ...`
				argv = append(argv, "--debug")
			}
			argv = append(argv, args...)
			err = syscall.Exec(path, argv, env)
			return fmt.Errorf("run docker compose %s: %w", path, err)
		},
	}
}

// composeEnv is this process's environment with DOCKER_HOST set to the
// engine skiff talks to (-H, SKIFF_HOST, DOCKER_HOST, or skiff's own socket,
// started if nothing answers there), so compose and this CLI see the same
// engine. DOCKER_HOST wins over a docker context in compose, as in docker.
func (c *CLI) composeEnv(ctx context.Context) ([]string, error) {
	host, err := resolveHost(c.hosts.GetSlice(), c.getenv, c.defaultHost)
	if err != nil {
		return nil, err
	}
	if host == c.defaultHost && c.startDaemon != nil {
		if err := c.ensureDaemon(ctx, host); err != nil {
			return nil, err
		}
	}
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DOCKER_HOST=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "DOCKER_HOST="+host)
	return env, nil
}

// findCompose looks for skiff-compose next to this executable (where
// hack/build.sh and installs put it), then in PATH.
func findCompose() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), composeBinary)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(composeBinary); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("cannot run docker compose: %s is neither next to this executable nor in PATH", composeBinary)
}

// installComposePlugin links skiff-compose as the docker CLI's compose
// plugin, $DOCKER_CONFIG/cli-plugins/docker-compose (~/.docker without
// DOCKER_CONFIG), so that `docker compose` works with only the docker CLI
// and skiff installed. A plugin that is not skiff's is replaced only with
// --force.
func (c *CLI) installComposePlugin(target string, args []string) error {
	force := false
	for _, a := range args {
		switch a {
		case "-f", "--force":
			force = true
		case "-h", "--help":
			fmt.Fprint(c.out, "Usage:  skiff compose install-plugin [--force]\n\n"+
				"Install skiff's docker compose as the docker CLI plugin\n"+
				"($DOCKER_CONFIG/cli-plugins/docker-compose, or ~/.docker/cli-plugins)\n\n"+
				"Options:\n  -f, --force   Replace a docker-compose plugin that is not skiff's\n")
			return nil
		default:
			return StatusError{Status: fmt.Sprintf("unknown flag: %s\nSee 'skiff compose install-plugin --help'.", a), StatusCode: 1}
		}
	}
	target, err := filepath.Abs(target)
	if err == nil {
		target, err = filepath.EvalSymlinks(target)
	}
	if err != nil {
		return fmt.Errorf("install the compose plugin: %w", err)
	}
	dir := c.getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return fmt.Errorf("install the compose plugin: %w", err)
		}
		dir = filepath.Join(home, ".docker")
	}
	dir = filepath.Join(dir, "cli-plugins")
	link := filepath.Join(dir, "docker-compose")
	if old, err := os.Readlink(link); err == nil && old == target {
		fmt.Fprintf(c.out, "docker compose plugin %s already points to %s\n", link, target)
		return nil
	} else if _, err := os.Lstat(link); err == nil && !force {
		return fmt.Errorf("%s exists and is not skiff's compose; use --force to replace it", link)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("install the compose plugin: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("install the compose plugin: %w", err)
	}
	// A symlink: the plugin follows skiff's upgrades. Made under a temporary
	// name and renamed, so a working plugin is never missing.
	tmp := link + ".skiff-tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("install the compose plugin: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("install the compose plugin: %w", err)
	}
	fmt.Fprintf(c.out, "Installed docker compose plugin: %s -> %s\n", link, target)
	return nil
}
