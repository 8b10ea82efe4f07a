// Package cli is the `skiff` command line. It is a client of the Docker Engine
// API only, like the docker CLI, and keeps docker's command names, flags,
// output and exit codes so that habits and scripts carry over. Much of the
// flag parsing and output follows docker/cli (Apache-2.0) closely.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/cli/opts"
)

// Version and GitCommit are set at build time with -ldflags -X.
var (
	Version   = "dev"
	GitCommit = "unknown"
	BuildTime = ""
)

// binName is the name used in messages ("skiff: ...", "Run 'skiff run --help'").
const binName = "skiff"

// DefaultHost is the engine's socket: the address used when neither -H nor
// SKIFF_HOST/DOCKER_HOST is set (daemon.DefaultHost; package daemon is not
// imported here so that the client side does not link the engine).
const DefaultHost = "unix:///run/skiff/skiff.sock"

// CLI holds the streams and the API client of one invocation.
type CLI struct {
	in     *InStream
	out    *OutStream
	err    io.Writer
	getenv func(string) string

	// defaultHost is used when neither -H nor SKIFF_HOST/DOCKER_HOST is set;
	// only then may the CLI start a daemon itself.
	defaultHost string
	// startDaemon starts `skiff daemon` in the background; nil disables
	// auto-start.
	startDaemon func(ctx context.Context) error
	// daemonLogPath replaces the auto-started daemon's log file (tests).
	daemonLogPath string
	now           func() time.Time

	hosts    opts.ListOpts // -H
	debug    bool
	logLevel string

	clientOnce sync.Once
	client     *client.Client
	clientErr  error
}

// Option configures a CLI.
type Option func(*CLI)

// WithStreams replaces stdin, stdout and stderr.
func WithStreams(in io.Reader, out, errw io.Writer) Option {
	return func(c *CLI) {
		c.in = NewInStream(in)
		c.out = NewOutStream(out)
		c.err = errw
	}
}

// WithEnv replaces the environment lookup (tests).
func WithEnv(getenv func(string) string) Option { return func(c *CLI) { c.getenv = getenv } }

// WithDefaultHost replaces the default daemon address and the function that
// starts a daemon there when nothing answers (nil: never start one).
func WithDefaultHost(host string, start func(ctx context.Context) error) Option {
	return func(c *CLI) {
		c.defaultHost = host
		c.startDaemon = start
	}
}

// WithClock replaces the clock used for "x minutes ago".
func WithClock(now func() time.Time) Option { return func(c *CLI) { c.now = now } }

// New returns a CLI on the process's streams and environment.
func New(options ...Option) *CLI {
	c := &CLI{
		in:          NewInStream(os.Stdin),
		out:         NewOutStream(os.Stdout),
		err:         os.Stderr,
		getenv:      os.Getenv,
		defaultHost: DefaultHost,
		now:         time.Now,
		hosts:       opts.NewListOpts(nil),
	}
	c.startDaemon = c.autoStartDaemon
	for _, o := range options {
		o(c)
	}
	return c
}

// Main runs the command line with args (without the program name) and
// returns the process exit status.
func Main(args []string, options ...Option) int {
	c := New(options...)
	err := c.Run(context.Background(), args)
	c.Close()
	if err != nil {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(c.err, msg)
		}
	}
	return exitCodeFor(err)
}

// Run parses args and runs the command they name.
func (c *CLI) Run(ctx context.Context, args []string) error {
	root := c.newRootCommand(requestedCommand(args))
	root.SetArgs(args)
	root.SetIn(c.in)
	root.SetOut(c.out)
	root.SetErr(c.err)
	return root.ExecuteContext(ctx)
}

// Close releases the API client.
func (c *CLI) Close() {
	if c.client != nil {
		_ = c.client.Close()
	}
}

// Out is standard output.
func (c *CLI) Out() *OutStream { return c.out }

// Err is standard error.
func (c *CLI) Err() io.Writer { return c.err }

// In is standard input.
func (c *CLI) In() *InStream { return c.in }

// Client returns the API client, connecting (and, for the default socket,
// starting a daemon) on first use.
func (c *CLI) Client(ctx context.Context) (*client.Client, error) {
	c.clientOnce.Do(func() {
		c.client, c.clientErr = c.newClient(ctx)
	})
	return c.client, c.clientErr
}

// hotCommands are built alone when they are the command asked for: the
// whole tree (about a hundred commands and their flags) takes about 1 ms
// to build, paid by every invocation.
var hotCommands = map[string]func(*CLI) *cobra.Command{
	"run": (*CLI).newRunCommand, "exec": (*CLI).newExecCommand, "create": (*CLI).newCreateCommand,
	"start": (*CLI).newStartCommand, "stop": (*CLI).newStopCommand, "restart": (*CLI).newRestartCommand,
	"kill": (*CLI).newKillCommand, "rm": (*CLI).newRmCommand, "ps": (*CLI).newPsCommand,
	"logs": (*CLI).newLogsCommand, "wait": (*CLI).newWaitCommand, "inspect": (*CLI).newInspectCommand,
	"compose": (*CLI).newComposeCommand,
}

// requestedCommand is the first argument that is not a global option (or
// an option's value): the top-level command asked for, "" when unsure.
func requestedCommand(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-H" || a == "--host" || a == "-l" || a == "--log-level":
			i++ // its value
		case strings.HasPrefix(a, "--"):
			if a == "--" {
				return ""
			}
		case strings.HasPrefix(a, "-"):
			if len(a) > 2 { // -DH host, -Hhost: leave it to the full tree
				return ""
			}
		default:
			return a
		}
	}
	return ""
}

// newRootCommand builds the command tree; only the command named only when
// it is one of hotCommands.
func (c *CLI) newRootCommand(only string) *cobra.Command {
	root := &cobra.Command{
		Use:              binName + " [OPTIONS] COMMAND [ARG...]",
		Short:            "A container engine that does what Docker does",
		SilenceUsage:     true,
		SilenceErrors:    true,
		TraverseChildren: true,
		Args:             noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
		Version:               fmt.Sprintf("%s, build %s", Version, GitCommit),
		DisableFlagsInUseLine: true,
		CompletionOptions:     cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetVersionTemplate(binName + " version {{.Version}}\n")
	root.SetFlagErrorFunc(flagErrorFunc)

	// Global options come before the command (`skiff -H host ps`), as in docker:
	// they are the root's own flags, parsed by TraverseChildren.
	pf := root.Flags()
	pf.VarP(&c.hosts, "host", "H", "Daemon socket to connect to")
	pf.BoolVarP(&c.debug, "debug", "D", false, "Enable debug mode")
	pf.StringVarP(&c.logLevel, "log-level", "l", "info", `Set the logging level ("debug", "info", "warn", "error", "fatal")`)
	root.Flags().BoolP("version", "v", false, "Print version information and quit")

	if mk, ok := hotCommands[only]; ok {
		root.AddCommand(mk(c))
		return root
	}
	root.AddCommand(
		// management commands
		c.newContainerCommand(),
		c.newImageCommand(),
		c.newSystemCommand(),
		c.newBuilderCommand(),
		// top-level shortcuts, like docker's
		c.newCreateCommand(),
		c.newRunCommand(),
		c.newStartCommand(),
		c.newStopCommand(),
		c.newRestartCommand(),
		c.newKillCommand(),
		c.newWaitCommand(),
		c.newRmCommand(),
		c.newPsCommand(),
		c.newLogsCommand(),
		c.newExecCommand(),
		c.newRenameCommand(),
		c.newInspectCommand(),
		c.newImagesCommand(),
		c.newTagCommand(),
		c.newRmiCommand(),
		c.newImportCommand(),
		c.newSaveCommand(),
		c.newLoadCommand(),
		c.newCommitCommand(),
		c.newExportCommand(),
		c.newHistoryCommand(),
		c.newVersionCommand(),
		c.newInfoCommand(),
		c.newEventsCommand(),
		c.newPullCommand(),
		c.newPushCommand(),
		c.newBuildCommand(), // build_cmds.go
		c.newLoginCommand(),
		c.newLogoutCommand(),
	)
	root.AddCommand(c.newVolumeCommand(), c.newCpCommand())    // volume_cmds.go, cp_cmds.go
	root.AddCommand(c.newNetworkCommand(), c.newPortCommand()) // network_cmds.go
	root.AddCommand(c.livingCommands()...)                     // living_cmds.go
	root.AddCommand(c.newDaemonCommand())                      // daemon_cmd.go
	root.AddCommand(c.newComposeCommand())                     // compose_cmd.go
	return root
}

func (c *CLI) newContainerCommand() *cobra.Command {
	cmd := managementCommand("container", "Manage containers")
	cmd.AddCommand(
		c.newCreateCommand(),
		c.newRunCommand(),
		c.newStartCommand(),
		c.newStopCommand(),
		c.newRestartCommand(),
		c.newKillCommand(),
		c.newWaitCommand(),
		withAliases(c.newRmCommand(), "rm", "remove"),
		withUse(withAliases(c.newPsCommand(), "ps", "list"), "ls [OPTIONS]"),
		c.newLogsCommand(),
		c.newExecCommand(),
		c.newRenameCommand(),
		c.newContainerInspectCommand(),
		c.newPruneCommand(),
		c.newCpCommand(),
		c.newCommitCommand(),
		c.newExportCommand(),
	)
	cmd.AddCommand(c.livingCommands()...) // living_cmds.go
	return cmd
}

func (c *CLI) newImageCommand() *cobra.Command {
	cmd := managementCommand("image", "Manage images")
	cmd.AddCommand(
		withUse(withAliases(c.newImagesCommand(), "list"), "ls [OPTIONS] [REPOSITORY[:TAG]]"),
		c.newTagCommand(),
		withUse(withAliases(c.newRmiCommand(), "rmi", "remove"), "rm [OPTIONS] IMAGE [IMAGE...]"),
		c.newImportCommand(),
		c.newImageInspectCommand(),
		c.newPullCommand(),
		c.newPushCommand(),
		c.newSaveCommand(),
		c.newLoadCommand(),
		c.newHistoryCommand(),
		c.newImagePruneCommand(),
		c.newBuildCommand(),
	)
	return cmd
}

func (c *CLI) newSystemCommand() *cobra.Command {
	cmd := managementCommand("system", "Manage skiff")
	cmd.AddCommand(c.newInfoCommand(), c.newEventsCommand())
	cmd.AddCommand(c.newSystemDFCommand(), c.newSystemPruneCommand())
	return cmd
}

func managementCommand(name, short string) *cobra.Command {
	return &cobra.Command{
		Use:   name,
		Short: short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
		DisableFlagsInUseLine: true,
	}
}

func withAliases(cmd *cobra.Command, aliases ...string) *cobra.Command {
	cmd.Aliases = aliases
	return cmd
}

func withUse(cmd *cobra.Command, use string) *cobra.Command {
	cmd.Use = use
	return cmd
}

// commandName is the name for "Run 'skiff run --help'" hints.
func commandName(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), binName+" ")
}
