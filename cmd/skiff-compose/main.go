// Command skiff-compose is docker compose (github.com/docker/compose/v5,
// linked as a library) built for skiff: what `skiff compose` runs, and what
// `skiff compose install-plugin` installs as the docker CLI's compose plugin.
//
// It runs two ways, as compose's own binary does:
//   - as a docker CLI plugin (`docker compose ...`): the docker CLI sets
//     DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND and passes `compose ARGS`;
//   - standalone (`skiff compose ARGS`, or `skiff-compose ARGS`): the
//     docker-compose style arguments are turned into the plugin's
//     (`compose` inserted after the global -H/--context/... options).
//
// It lives in a Go module of its own (see go.mod), so the skiff CLI, which
// starts for every command, links none of compose.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	dockercli "github.com/docker/cli/cli"
	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker/compose/v5/cmd/compatibility"
	commands "github.com/docker/compose/v5/cmd/compose"
	"github.com/docker/compose/v5/cmd/prompt"
	"github.com/docker/compose/v5/pkg/compose"
)

// composeModule is the library this binary is built from.
const composeModule = "github.com/docker/compose/v5"

// helpName is the program name help texts show before "compose": "skiff"
// when run as `skiff compose`, docker's otherwise.
var helpName = "docker"

// skiffVersion is skiff's version, set at build time like the CLI's
// (-ldflags -X main.skiffVersion=...).
var skiffVersion = "dev"

func main() {
	if plugin.RunningStandalone() {
		args := os.Args[1:]
		// `skiff compose ARGS` execs this binary with argv `skiff compose
		// ARGS`, so ps shows what the user typed; the leading "compose" is
		// the command's name, not an argument.
		if filepath.Base(os.Args[0]) == "skiff" && len(args) > 0 && args[0] == "compose" {
			args = args[1:]
			helpName = "skiff"
		}
		// plugin.Run parses argv as the docker CLI would hand it to a
		// plugin: `docker [global options] compose ARGS`.
		os.Args = append([]string{"docker"}, compatibility.Convert(args)...)
	}
	version := composeVersion()
	plugin.Run(newRootCommand,
		metadata.Metadata{
			SchemaVersion:    "0.1.0",
			Vendor:           "skiff",
			Version:          version,
			ShortDescription: "Docker Compose (skiff build)",
		},
		command.WithUserAgent("compose/"+version),
	)
}

// newRootCommand is compose's command tree, set up as compose's own main
// does, with a `version` that also names this build.
func newRootCommand(cli command.Cli) *cobra.Command {
	backend := &commands.BackendOptions{
		Options: []compose.Option{compose.WithPrompt(prompt.NewPrompt(cli.In(), cli.Out()).Confirm)},
	}
	cmd := commands.RootCommand(cli, backend)
	cmd.AddCommand(commands.HooksCommand())
	parentPreRun := cmd.PersistentPreRunE
	cmd.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		// Initializes the docker CLI (flags, config, API client).
		if err := plugin.PersistentPreRunE(c, args); err != nil {
			return err
		}
		if parentPreRun != nil {
			return parentPreRun(c, args)
		}
		return nil
	}
	// compose exits 1 on a bad flag (cobra's default would be the docker
	// CLI's 125).
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return dockercli.StatusError{StatusCode: 1, Status: err.Error()}
	})
	wrapVersion(cmd, cli)
	wrapFileErrors(cmd)
	if helpName != "docker" {
		// plugin.Run puts the tree under a root named "docker", which
		// help texts print ("Usage:  docker compose up ..."); it exists by
		// the time help is shown.
		help := cmd.HelpFunc()
		cmd.SetHelpFunc(func(c *cobra.Command, args []string) {
			c.Root().Use = helpName + " [OPTIONS] compose [ARG...]"
			help(c, args)
		})
	}
	return cmd
}

// wrapVersion makes the plain `version` output say that this is skiff's
// build; --short and --format json stay compose's, for scripts.
func wrapVersion(root *cobra.Command, cli command.Cli) {
	for _, c := range root.Commands() {
		if c.Name() != "version" {
			continue
		}
		run := c.RunE
		c.RunE = func(cmd *cobra.Command, args []string) error {
			short, _ := cmd.Flags().GetBool("short")
			format, _ := cmd.Flags().GetString("format")
			if short || (format != "" && format != "pretty") {
				return run(cmd, args)
			}
			_, err := fmt.Fprintf(cli.Out(), "Docker Compose version %s (skiff-compose, skiff %s)\n",
				composeVersion(), skiffVersion)
			return err
		}
	}
}

// composeVersion is the version of the compose library linked in, from the
// binary's build information ("v5.6.0").
func composeVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == composeModule {
				if d.Replace != nil {
					d = d.Replace
				}
				return strings.TrimSpace(d.Version)
			}
		}
	}
	return "dev"
}
