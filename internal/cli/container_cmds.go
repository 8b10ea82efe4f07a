package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/cli/formatter"
	"github.com/skiff-dev/skiff/internal/cli/opts"
)

func (c *CLI) newStartCommand() *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runStart(cmd.Context(), args, attach, interactive, detachKeys)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	f.BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	f.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

func (c *CLI) runStart(ctx context.Context, containers []string, attach, interactive bool, detachKeys string) error {
	api, err := c.Client(ctx)
	if err != nil {
		return err
	}
	if !attach && !interactive {
		var failed []string
		for _, name := range containers {
			if _, err := api.ContainerStart(ctx, name, client.ContainerStartOptions{}); err != nil {
				fmt.Fprintln(c.err, err)
				failed = append(failed, name)
				continue
			}
			fmt.Fprintln(c.out, name)
		}
		if len(failed) > 0 {
			return fmt.Errorf("Error: failed to start containers: %s", strings.Join(failed, ", "))
		}
		return nil
	}

	if len(containers) > 1 {
		return errors.New("you cannot start and attach multiple containers at once")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res, err := api.ContainerInspect(ctx, containers[0], client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	ctr := res.Container
	tty := ctr.Config != nil && ctr.Config.Tty
	autoRemove := ctr.HostConfig != nil && ctr.HostConfig.AutoRemove
	var proxy *signalProxy
	if !tty {
		proxy = newSignalProxy()
		proxy.forward(context.WithoutCancel(ctx), api, ctr.ID)
	}
	defer proxy.stop()
	opts := client.ContainerAttachOptions{
		Stream:     true,
		Stdin:      interactive && ctr.Config != nil && ctr.Config.OpenStdin,
		Stdout:     true,
		Stderr:     true,
		DetachKeys: detachKeys,
	}
	closeFn, errCh, err := c.attachContainer(ctx, api, ctr.ID, ctr.Config, opts)
	if err != nil {
		return err
	}
	defer closeFn()
	statusC := c.waitExitOrRemoved(ctx, api, ctr.ID, autoRemove)
	proxy.wait()
	if _, err := api.ContainerStart(ctx, ctr.ID, client.ContainerStartOptions{}); err != nil {
		cancel()
		<-errCh
		return err
	}
	if tty {
		c.monitorTtySize(ctx, func(ctx context.Context, h, w uint) error {
			_, err := api.ContainerResize(ctx, ctr.ID, client.ContainerResizeOptions{Height: h, Width: w})
			return err
		})
	}
	if err := <-errCh; err != nil {
		if errors.Is(err, errDetached) {
			return nil
		}
		return err
	}
	if status := <-statusC; status != 0 {
		return StatusError{StatusCode: status}
	}
	return nil
}

// stopOptions are shared by stop and restart.
type stopOptions struct {
	signal  string
	timeout int
}

func (c *CLI) newStopCommand() *cobra.Command {
	var o stopOptions
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			timeout, err := stopTimeout(cmd, &o)
			if err != nil {
				return err
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			return c.eachContainer(cmd.Context(), args, func(ctx context.Context, id string) error {
				_, err := api.ContainerStop(ctx, id, client.ContainerStopOptions{Signal: o.signal, Timeout: timeout})
				return err
			})
		},
		DisableFlagsInUseLine: true,
	}
	addStopFlags(cmd, &o)
	return cmd
}

func (c *CLI) newRestartCommand() *cobra.Command {
	var o stopOptions
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			timeout, err := stopTimeout(cmd, &o)
			if err != nil {
				return err
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			return c.eachName(cmd.Context(), args, func(ctx context.Context, name string) error {
				_, err := api.ContainerRestart(ctx, name, client.ContainerRestartOptions{Signal: o.signal, Timeout: timeout})
				return err
			}, nil)
		},
		DisableFlagsInUseLine: true,
	}
	addStopFlags(cmd, &o)
	return cmd
}

func addStopFlags(cmd *cobra.Command, o *stopOptions) {
	f := cmd.Flags()
	f.StringVarP(&o.signal, "signal", "s", "", "Signal to send to the container")
	f.IntVarP(&o.timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	f.IntVar(&o.timeout, "time", 0, "Seconds to wait before killing the container (deprecated: use --timeout)")
	_ = f.MarkDeprecated("time", "use --timeout instead")
}

// stopTimeout is nil unless -t was given, so the container's own stop
// timeout applies.
func stopTimeout(cmd *cobra.Command, o *stopOptions) (*int, error) {
	f := cmd.Flags()
	if f.Changed("time") && f.Changed("timeout") {
		return nil, errors.New("conflicting options: cannot specify both --timeout and --time")
	}
	if f.Changed("time") || f.Changed("timeout") {
		return &o.timeout, nil
	}
	return nil, nil
}

// eachContainer runs op on every container (in parallel, like docker),
// prints the names that succeeded in order and joins the errors.
func (c *CLI) eachContainer(ctx context.Context, names []string, op func(ctx context.Context, id string) error) error {
	return c.eachContainerIgnoring(ctx, names, op, nil)
}

func (c *CLI) eachContainerIgnoring(ctx context.Context, names []string, op func(ctx context.Context, id string) error, ignore func(error) bool) error {
	results := make([]chan error, len(names))
	sem := make(chan struct{}, 50)
	for i, name := range names {
		results[i] = make(chan error, 1)
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] <- op(ctx, name)
		}()
	}
	var errs []error
	for i, name := range names {
		if err := <-results[i]; err != nil {
			if ignore != nil && ignore(err) {
				continue
			}
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(c.out, name)
	}
	return errors.Join(errs...)
}

// eachName runs op on each name in order, as docker's rm and restart
// commands do: it prints each name that op handled, keeps going past
// failures and returns them joined. Errors that ignore accepts (rm -f of
// what is already gone) are neither printed nor returned.
func (c *CLI) eachName(ctx context.Context, names []string, op func(ctx context.Context, name string) error, ignore func(error) bool) error {
	var errs []error
	for _, name := range names {
		if err := op(ctx, name); err != nil {
			if ignore == nil || !ignore(err) {
				errs = append(errs, err)
			}
			continue
		}
		fmt.Fprintln(c.out, name)
	}
	return errors.Join(errs...)
}

func (c *CLI) newKillCommand() *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			return c.eachContainer(cmd.Context(), args, func(ctx context.Context, id string) error {
				_, err := api.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: signal})
				return err
			})
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func (c *CLI) newWaitCommand() *cobra.Command {
	var condition string
	cmd := &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			var errs []error
			for _, name := range args {
				res := api.ContainerWait(cmd.Context(), name, client.ContainerWaitOptions{Condition: container.WaitCondition(condition)})
				select {
				case r := <-res.Result:
					fmt.Fprintln(c.out, strconv.FormatInt(r.StatusCode, 10))
				case err := <-res.Error:
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
		DisableFlagsInUseLine: true,
	}
	// The API's condition (docker's CLI has no flag for it).
	cmd.Flags().StringVar(&condition, "condition", "", `Wait for "not-running" (default), "next-exit" or "removed"`)
	return cmd
}

func (c *CLI) newRmCommand() *cobra.Command {
	var force, volumes, link bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			op := func(ctx context.Context, name string) error {
				name = strings.Trim(name, "/")
				if name == "" {
					return errors.New("container name cannot be empty")
				}
				_, err := api.ContainerRemove(ctx, name, client.ContainerRemoveOptions{RemoveVolumes: volumes, RemoveLinks: link, Force: force})
				return err
			}
			// rm -f of a container that does not exist is not an error.
			ignore := func(err error) bool { return force && cerrdefs.IsNotFound(err) }
			return c.eachContainerIgnoring(cmd.Context(), args, op, ignore)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	f.BoolVarP(&link, "link", "l", false, "Remove the specified link")
	f.BoolVarP(&force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	return cmd
}

type psOptions struct {
	quiet   bool
	size    bool
	all     bool
	noTrunc bool
	latest  bool
	last    int
	format  string
	filter  opts.FilterOpt
}

func (c *CLI) newPsCommand() *cobra.Command {
	o := psOptions{filter: opts.NewFilterOpt()}
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runPs(cmd.Context(), &o, cmd.Flags().Changed("size"))
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only display container IDs")
	f.BoolVarP(&o.size, "size", "s", false, "Display total file sizes")
	f.BoolVarP(&o.all, "all", "a", false, "Show all containers (default shows just running)")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&o.latest, "latest", "l", false, "Show the latest created container (includes all states)")
	f.IntVarP(&o.last, "last", "n", -1, "Show n last created containers (includes all states)")
	f.StringVar(&o.format, "format", "", "Format output using a custom template")
	f.VarP(&o.filter, "filter", "f", "Filter output based on conditions provided")
	return cmd
}

// psListOptions builds the list request; a --format using .Size asks for
// sizes unless --size=false was given.
func psListOptions(o *psOptions, sizeChanged bool) (client.ContainerListOptions, error) {
	lo := client.ContainerListOptions{All: o.all, Limit: o.last, Size: o.size, Filters: o.filter.Value()}
	if o.latest && o.last == -1 {
		lo.Limit = 1
	}
	if o.format != "" {
		tmpl, err := formatter.ParseTemplate(o.format)
		if err != nil {
			return lo, fmt.Errorf("failed to parse template: %w", err)
		}
		probe := formatter.NewContainerContext()
		if err := tmpl.Execute(io.Discard, probe); err != nil {
			return lo, fmt.Errorf("failed to execute template: %w", err)
		}
		if !o.quiet && !lo.Size && !sizeChanged {
			if _, ok := probe.FieldsUsed["Size"]; ok {
				lo.Size = true
			}
		}
	}
	return lo, nil
}

func (c *CLI) runPs(ctx context.Context, o *psOptions, sizeChanged bool) error {
	if o.format != "" && o.quiet {
		fmt.Fprintln(c.err, "WARNING: Ignoring custom format, because both --format and --quiet are set.")
	}
	lo, err := psListOptions(o, sizeChanged)
	if err != nil {
		return err
	}
	api, err := c.Client(ctx)
	if err != nil {
		return err
	}
	res, err := api.ContainerList(ctx, lo)
	if err != nil {
		return err
	}
	return formatter.ContainerWrite(formatter.Context{
		Output: c.out,
		Format: formatter.NewContainerFormat(o.format, o.quiet, lo.Size),
		Trunc:  !o.noTrunc,
		Now:    c.now,
	}, res.Items)
}

func (c *CLI) newLogsCommand() *cobra.Command {
	var o client.ContainerLogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			api, err := c.Client(ctx)
			if err != nil {
				return err
			}
			res, err := api.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			o.ShowStdout, o.ShowStderr = true, true
			body, err := api.ContainerLogs(ctx, res.Container.ID, o)
			if err != nil {
				return err
			}
			defer body.Close()
			if res.Container.Config != nil && res.Container.Config.Tty {
				_, err = io.Copy(c.out, body)
			} else {
				_, err = stdcopy.StdCopy(c.out, c.err, body)
			}
			return err
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&o.Follow, "follow", "f", false, "Follow log output")
	f.StringVar(&o.Since, "since", "", `Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	f.StringVar(&o.Until, "until", "", `Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	f.BoolVarP(&o.Timestamps, "timestamps", "t", false, "Show timestamps")
	f.BoolVar(&o.Details, "details", false, "Show extra details provided to logs")
	f.StringVarP(&o.Tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	return cmd
}

type execOptions struct {
	detachKeys  string
	interactive bool
	tty         bool
	detach      bool
	user        string
	privileged  bool
	env         opts.ListOpts
	envFile     opts.ListOpts
	workdir     string
}

func (c *CLI) newExecCommand() *cobra.Command {
	o := execOptions{env: opts.NewListOpts(opts.ValidateEnv), envFile: opts.NewListOpts(nil)}
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  requiresMinArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runExec(cmd.Context(), args[0], args[1:], &o)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	f.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	f.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	f.BoolVarP(&o.detach, "detach", "d", false, "Detached mode: run command in the background")
	f.StringVarP(&o.user, "user", "u", "", `Username or UID (format: "<name|uid>[:<group|gid>]")`)
	f.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to the command")
	f.VarP(&o.env, "env", "e", "Set environment variables")
	f.Var(&o.envFile, "env-file", "Read in a file of environment variables")
	f.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	return cmd
}

// parseExec builds the exec request from the flags.
func parseExec(o *execOptions, cmd []string) (*client.ExecCreateOptions, error) {
	eo := &client.ExecCreateOptions{
		User:       o.user,
		Privileged: o.privileged,
		TTY:        o.tty,
		Cmd:        cmd,
		WorkingDir: o.workdir,
		DetachKeys: o.detachKeys,
	}
	env, err := opts.ReadKVEnvStrings(o.envFile.GetSlice(), o.env.GetSlice())
	if err != nil {
		return nil, err
	}
	eo.Env = env
	if !o.detach {
		eo.AttachStdout, eo.AttachStderr = true, true
		eo.AttachStdin = o.interactive
	}
	if _, err := parseDetachKeys(o.detachKeys); err != nil {
		return nil, err
	}
	return eo, nil
}

func (c *CLI) runExec(ctx context.Context, ctr string, command []string, o *execOptions) error {
	eo, err := parseExec(o, command)
	if err != nil {
		return err
	}
	api, err := c.Client(ctx)
	if err != nil {
		return err
	}
	// "No such container" comes before the tty check, and the check comes
	// before the exec is created so that a refused one leaks nothing. The
	// container is looked up only when the check fails: otherwise creating
	// the exec reports a missing one in the same words, one round trip less.
	if !o.detach {
		if err := c.in.CheckTty(eo.AttachStdin, eo.TTY); err != nil {
			if _, ierr := api.ContainerInspect(ctx, ctr, client.ContainerInspectOptions{}); ierr != nil {
				return ierr
			}
			return err
		}
	}
	if eo.TTY {
		h, w := c.out.TtySize()
		eo.ConsoleSize = client.ConsoleSize{Height: h, Width: w}
	}
	created, err := api.ExecCreate(ctx, ctr, *eo)
	if err != nil {
		return err
	}
	if created.ID == "" {
		return errors.New("exec ID empty")
	}
	if o.detach {
		_, err := api.ExecStart(ctx, created.ID, client.ExecStartOptions{Detach: true, TTY: eo.TTY, ConsoleSize: eo.ConsoleSize})
		return err
	}
	resp, err := api.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: eo.TTY, ConsoleSize: eo.ConsoleSize})
	if err != nil {
		return err
	}
	defer resp.Close()
	var (
		in        io.Reader
		out, serr io.Writer
	)
	if eo.AttachStdin {
		in = c.in
	}
	if eo.AttachStdout {
		out = c.out
	}
	if eo.AttachStderr {
		serr = c.err
		if eo.TTY {
			serr = c.out
		}
	}
	s := hijackedIOStreamer{cli: c, inputStream: in, outputStream: out, errorStream: serr, resp: resp.HijackedResponse, tty: eo.TTY, detachKeys: eo.DetachKeys}
	if eo.TTY {
		resizeCtx, stop := context.WithCancel(ctx)
		defer stop()
		c.monitorTtySize(resizeCtx, func(ctx context.Context, h, w uint) error {
			_, err := api.ExecResize(ctx, created.ID, client.ExecResizeOptions{Height: h, Width: w})
			return err
		})
	}
	if err := s.stream(ctx); err != nil {
		if errors.Is(err, errDetached) {
			return nil
		}
		return err
	}
	res, err := api.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
	if err != nil {
		if client.IsErrConnectionFailed(err) {
			return StatusError{StatusCode: -1}
		}
		return err
	}
	if res.ExitCode != 0 {
		return StatusError{StatusCode: res.ExitCode}
	}
	return nil
}

func (c *CLI) newPruneCommand() *cobra.Command {
	return c.newPruneCmd(pruneSpec{
		short: "Remove all stopped containers", what: "container",
		warning: func(bool) string {
			return "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?"
		},
		filterHelp: `Provide filter values (e.g. "until=<timestamp>")`,
		run: func(ctx context.Context, api client.APIClient, _ bool, f client.Filters) (string, []string, int64, error) {
			res, err := api.ContainerPrune(ctx, client.ContainerPruneOptions{Filters: f})
			return "Deleted Containers:", res.Report.ContainersDeleted, int64(res.Report.SpaceReclaimed), err
		},
	})
}

// printPruned writes a prune report as docker does: the heading and the
// items (then a blank line) when anything went, then the space reclaimed,
// unless space is negative (network prune reports none).
func (c *CLI) printPruned(heading string, items []string, space int64) {
	if len(items) > 0 {
		fmt.Fprintln(c.out, heading)
		for _, it := range items {
			fmt.Fprintln(c.out, it)
		}
		if space >= 0 {
			fmt.Fprintln(c.out)
		}
	}
	if space >= 0 {
		fmt.Fprintln(c.out, "Total reclaimed space:", units.HumanSize(float64(space)))
	}
}

// confirm asks a y/N question on stdin, like docker's prompt.
func (c *CLI) confirm(question string) bool {
	fmt.Fprintf(c.out, "%s [y/N] ", question)
	line, _ := bufio.NewReader(c.in).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}

func (c *CLI) newRenameCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			if _, err := api.ContainerRename(cmd.Context(), args[0], client.ContainerRenameOptions{NewName: args[1]}); err != nil {
				return fmt.Errorf("failed to rename container: %w", err)
			}
			return nil
		},
		DisableFlagsInUseLine: true,
	}
}
