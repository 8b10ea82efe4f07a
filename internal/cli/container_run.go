package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	gosignal "os/signal"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// Values of --pull.
const (
	pullAlways  = "always"
	pullMissing = "missing"
	pullNever   = "never"
)

type createOptions struct {
	name         string
	platform     string
	pull         string
	quiet        bool
	useAPISocket bool
}

type runOptions struct {
	createOptions
	detach     bool
	sigProxy   bool
	detachKeys string
}

func (c *CLI) newCreateCommand() *cobra.Command {
	var o createOptions
	var copts *containerOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			copts.Image = args[0]
			if len(args) > 1 {
				copts.Args = args[1:]
			}
			return c.runCreate(cmd.Context(), cmd.Flags(), &o, copts)
		},
		DisableFlagsInUseLine: true,
	}
	flags := cmd.Flags()
	flags.SetInterspersed(false)
	addCreateFlags(flags, &o)
	copts = addFlags(flags)
	return cmd
}

func addCreateFlags(flags *pflag.FlagSet, o *createOptions) {
	flags.StringVar(&o.name, "name", "", "Assign a name to the container")
	flags.StringVar(&o.pull, "pull", pullMissing, `Pull image before running ("always", "missing", "never")`)
	flags.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress the pull output")
	flags.StringVar(&o.platform, "platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	// -h is --hostname here, so help gets no shorthand (as in docker).
	flags.Bool("help", false, "Print usage")
	flags.Bool("disable-content-trust", true, "Skip image verification")
	flags.BoolVar(&o.useAPISocket, "use-api-socket", false, "Bind mount Docker API socket and required auth")
}

func (c *CLI) newRunCommand() *cobra.Command {
	var o runOptions
	var copts *containerOptions
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			copts.Image = args[0]
			if len(args) > 1 {
				copts.Args = args[1:]
			}
			return c.runRun(cmd.Context(), cmd.Flags(), &o, copts)
		},
		DisableFlagsInUseLine: true,
	}
	flags := cmd.Flags()
	flags.SetInterspersed(false)
	flags.BoolVarP(&o.detach, "detach", "d", false, "Run container in background and print container ID")
	flags.BoolVar(&o.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	flags.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	addCreateFlags(flags, &o.createOptions)
	copts = addFlags(flags)
	return cmd
}

func validatePullOpt(val string) error {
	switch val {
	case pullAlways, pullMissing, pullNever, "":
		return nil
	}
	return fmt.Errorf("invalid pull option: '%s': must be one of %q, %q or %q", val, pullAlways, pullMissing, pullNever)
}

func (c *CLI) runCreate(ctx context.Context, flags *pflag.FlagSet, o *createOptions, copts *containerOptions) error {
	if err := preflightRunFlags(flags, c.err); err != nil {
		return err
	}
	if err := validatePullOpt(o.pull); err != nil {
		return usageError(err, "create")
	}
	cfg, err := parse(flags, copts)
	if err != nil {
		return usageError(err, "create")
	}
	api, err := c.Client(ctx)
	if err != nil {
		return err
	}
	id, err := c.createContainer(ctx, api, cfg, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.out, id)
	return nil
}

// createContainer creates the container, pulling its image first when it is
// missing (--pull=missing) or always (--pull=always).
func (c *CLI) createContainer(ctx context.Context, api client.APIClient, cfg *containerConfig, o *createOptions) (string, error) {
	var platform *ocispec.Platform
	if o.platform != "" {
		p, err := parsePlatform(o.platform)
		if err != nil {
			return "", fmt.Errorf("error parsing specified platform: %w", err)
		}
		platform = &p
	}
	var namedRef reference.Named
	ref, err := reference.ParseAnyReference(cfg.Config.Image)
	if err != nil {
		return "", err
	}
	if named, ok := ref.(reference.Named); ok {
		namedRef = reference.TagNameOnly(named)
	}
	cidFile, err := newCIDFile(cfg.HostConfig.ContainerIDFile)
	if err != nil {
		return "", err
	}
	defer cidFile.Close()

	var socketCreds map[string]registry.AuthConfig
	if o.useAPISocket {
		if socketCreds, err = c.useAPISocket(cfg); err != nil { // run_extra_opts.go
			return "", err
		}
	}
	if o.pull == pullAlways {
		if err := c.pullImage(ctx, api, cfg.Config.Image, o, platform); err != nil {
			return "", err
		}
	}
	h, w := c.out.TtySize()
	cfg.HostConfig.ConsoleSize = [2]uint{h, w}

	create := func() (client.ContainerCreateResult, error) {
		return api.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name:             o.name,
			Platform:         platform,
			Config:           cfg.Config,
			HostConfig:       cfg.HostConfig,
			NetworkingConfig: cfg.NetworkingConfig,
		})
	}
	resp, err := create()
	if err != nil {
		if !cerrdefs.IsNotFound(err) || namedRef == nil || o.pull != pullMissing {
			return "", err
		}
		if !o.quiet {
			// stdout carries only the container id.
			fmt.Fprintf(c.err, "Unable to find image '%s' locally\n", reference.FamiliarString(namedRef))
		}
		if err := c.pullImage(ctx, api, cfg.Config.Image, o, platform); err != nil {
			return "", err
		}
		if resp, err = create(); err != nil {
			return "", err
		}
	}
	for _, w := range resp.Warnings {
		fmt.Fprintln(c.err, "WARNING:", w)
	}
	if err := cidFile.Write(resp.ID); err != nil {
		return resp.ID, err
	}
	if len(socketCreds) > 0 {
		return resp.ID, copyAPISocketConfig(ctx, api, resp.ID, socketCreds)
	}
	return resp.ID, nil
}

func (c *CLI) pullImage(ctx context.Context, api client.APIClient, image string, o *createOptions, platform *ocispec.Platform) error {
	opts := client.ImagePullOptions{}
	if platform != nil {
		opts.Platforms = []ocispec.Platform{*platform}
	}
	resp, err := api.ImagePull(ctx, image, opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	if o.quiet {
		return displayJSONMessages(resp, io.Discard)
	}
	// docker run shows the pull on stderr, drawn as a terminal pull is.
	return renderJSONMessages(resp, c.err, nil)
}

// parsePlatform parses os[/arch[/variant]].
func parsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || parts[0] == "" {
		return ocispec.Platform{}, fmt.Errorf("%q: unknown operating system or architecture: invalid argument", s)
	}
	p := ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}

type cidFile struct {
	path    string
	file    *os.File
	written bool
}

func newCIDFile(path string) (*cidFile, error) {
	if path == "" {
		return &cidFile{}, nil
	}
	if _, err := os.Stat(path); err == nil {
		return nil, errors.New("container ID file found, make sure the other container isn't running or delete " + path)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("failed to create the container ID file: %w", err)
	}
	return &cidFile{path: path, file: f}, nil
}

func (f *cidFile) Write(id string) error {
	if f.file == nil {
		return nil
	}
	if _, err := f.file.WriteString(id); err != nil {
		return fmt.Errorf("failed to write the container ID (%s) to file: %w", id, err)
	}
	f.written = true
	return nil
}

func (f *cidFile) Close() {
	if f.file == nil {
		return
	}
	f.file.Close()
	if !f.written {
		os.Remove(f.path)
	}
}

func (c *CLI) runRun(ctx context.Context, flags *pflag.FlagSet, o *runOptions, copts *containerOptions) error {
	if err := preflightRunFlags(flags, c.err); err != nil {
		return err
	}
	if err := validatePullOpt(o.pull); err != nil {
		return usageError(err, "run")
	}
	cfg, err := parse(flags, copts)
	if err != nil {
		return usageError(err, "run")
	}
	return c.runContainer(ctx, o, copts, cfg)
}

// runContainer is docker's run flow: create; attach (before start, so no
// output is lost); register the wait (next-exit, or removed with --rm)
// before start; start; stream; exit with the container's status.
func (c *CLI) runContainer(ctx context.Context, o *runOptions, copts *containerOptions, cfg *containerConfig) error {
	config := cfg.Config
	config.ArgsEscaped = false
	if !o.detach {
		if err := c.in.CheckTty(config.AttachStdin, config.Tty); err != nil {
			return err
		}
	} else {
		if copts.attach.Len() != 0 {
			return errors.New("conflicting options: cannot specify both --attach and --detach")
		}
		config.AttachStdin, config.AttachStdout, config.AttachStderr = false, false, false
		config.StdinOnce = false
	}

	api, err := c.Client(ctx)
	if err != nil {
		return err // no engine: reported as is, exit 1, like docker
	}
	attach := config.AttachStdin || config.AttachStdout || config.AttachStderr
	var proxy *signalProxy
	if o.sigProxy && attach && !config.Tty {
		proxy = newSignalProxy() // in place before the start, below
	}
	defer proxy.stop()
	id, err := c.createContainer(ctx, api, cfg, &o.createOptions)
	if err != nil {
		return toRunError(err, "run")
	}
	if proxy != nil {
		proxy.forward(context.WithoutCancel(ctx), api, id)
	}

	// The stream lives until the container's output ends, whatever happens
	// to the caller's context.
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()

	var errCh chan error
	if attach {
		closeFn, ch, err := c.attachContainer(ctx, api, id, config, client.ContainerAttachOptions{
			Stream:     true,
			Stdin:      config.AttachStdin,
			Stdout:     config.AttachStdout,
			Stderr:     config.AttachStderr,
			DetachKeys: o.detachKeys,
		})
		if err != nil {
			return toRunError(err, "run")
		}
		defer closeFn()
		errCh = ch
	}

	statusCtx, cancelStatus := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelStatus()
	statusC := c.waitExitOrRemoved(statusCtx, api, id, copts.autoRemove)

	proxy.wait()
	if _, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		if attach {
			cancel()
			<-errCh
		}
		if copts.autoRemove {
			c.removeAfterFailedStart(api, id, statusC)
		}
		return toRunError(err, "run")
	}

	if !attach {
		fmt.Fprintln(c.out, id)
		return nil
	}
	if config.Tty {
		c.monitorTtySize(ctx, func(ctx context.Context, h, w uint) error {
			_, err := api.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w})
			return err
		})
	}

	select {
	case err := <-errCh:
		if err != nil {
			if errors.Is(err, errDetached) {
				return nil
			}
			return err
		}
		if status := <-statusC; status != 0 {
			return StatusError{StatusCode: status}
		}
	case status := <-statusC:
		// The container exited; keep streaming until its output is drained,
		// unless no output is attached.
		if !config.AttachStdout && !config.AttachStderr {
			cancel()
		}
		<-errCh
		if status != 0 {
			return StatusError{StatusCode: status}
		}
	}
	return nil
}

// failedStartRemoveWait is how long a --rm container whose start failed is
// given to be removed by the engine.
var failedStartRemoveWait = 2 * time.Second

// removeAfterFailedStart makes sure a --rm container whose start failed is
// gone: the engine removes it itself; if it has not after a moment, ask.
func (c *CLI) removeAfterFailedStart(api client.APIClient, id string, statusC <-chan int) {
	select {
	case <-statusC:
		return
	case <-time.After(failedStartRemoveWait):
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
}

// attachContainer attaches to the container and streams in the background;
// the channel yields the stream's end.
func (c *CLI) attachContainer(ctx context.Context, api client.APIClient, id string, config *container.Config, opts client.ContainerAttachOptions) (func(), chan error, error) {
	resp, err := api.ContainerAttach(ctx, id, opts)
	if err != nil {
		return nil, nil, err
	}
	var (
		in        io.Reader
		out, cerr io.Writer
	)
	if opts.Stdin {
		in = c.in
	}
	if opts.Stdout {
		out = c.out
	}
	if opts.Stderr {
		if config.Tty {
			cerr = c.out
		} else {
			cerr = c.err
		}
	}
	ch := make(chan error, 1)
	go func() {
		s := hijackedIOStreamer{cli: c, inputStream: in, outputStream: out, errorStream: cerr, resp: resp.HijackedResponse, tty: config.Tty, detachKeys: opts.DetachKeys}
		ch <- s.stream(ctx)
	}()
	return resp.HijackedResponse.Close, ch, nil
}

// waitExitOrRemoved registers a wait for the container and returns its exit
// status; an error while waiting is 125, like docker.
func (c *CLI) waitExitOrRemoved(ctx context.Context, api client.APIClient, id string, waitRemove bool) <-chan int {
	condition := container.WaitConditionNextExit
	if waitRemove {
		condition = container.WaitConditionRemoved
	}
	res := api.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: condition})
	statusC := make(chan int, 1)
	go func() {
		defer close(statusC)
		select {
		case <-ctx.Done():
		case r := <-res.Result:
			if r.Error != nil {
				fmt.Fprintf(c.err, "Error waiting for container: %v\n", r.Error.Message)
				statusC <- 125
				return
			}
			statusC <- int(r.StatusCode)
		case err := <-res.Error:
			if errors.Is(err, context.Canceled) {
				return
			}
			fmt.Fprintf(c.err, "error waiting for container: %v\n", err)
			statusC <- 125
		}
	}()
	return statusC
}

// signalProxy forwards the signals the CLI receives to a container. Go
// enables the ~65 signals one by one, each with a round trip to a thread of
// its own (about 3 ms in all), so the handlers are installed in the
// background while the CLI makes its first API calls.
type signalProxy struct {
	sigc  chan os.Signal
	ready chan struct{}
}

func newSignalProxy() *signalProxy {
	p := &signalProxy{sigc: make(chan os.Signal, 128), ready: make(chan struct{})}
	go func() {
		gosignal.Notify(p.sigc)
		close(p.ready)
	}()
	return p
}

// forward sends what arrives to container id, once the handlers are in.
func (p *signalProxy) forward(ctx context.Context, api client.ContainerAPIClient, id string) {
	go func() {
		<-p.ready
		forwardAllSignals(ctx, api, id, p.sigc)
	}()
}

// wait returns once every signal is caught: call it before the container
// starts, so that none of its signals is missed. A nil proxy is a no-op.
func (p *signalProxy) wait() {
	if p != nil {
		<-p.ready
	}
}

func (p *signalProxy) stop() {
	if p != nil {
		<-p.ready
		gosignal.Stop(p.sigc)
	}
}

// forwardAllSignals sends the signals the CLI receives to the container.
func forwardAllSignals(ctx context.Context, api client.ContainerAPIClient, id string, sigc <-chan os.Signal) {
	for {
		var s os.Signal
		select {
		case <-ctx.Done():
			return
		case sig, ok := <-sigc:
			if !ok {
				return
			}
			s = sig
		}
		us, ok := s.(unix.Signal)
		// SIGCHLD and SIGPIPE are the CLI's own business, SIGURG is the Go
		// runtime's preemption signal.
		if !ok || us == unix.SIGCHLD || us == unix.SIGPIPE || us == unix.SIGURG {
			continue
		}
		name := strings.TrimPrefix(unix.SignalName(us), "SIG")
		if name == "" {
			continue
		}
		_, _ = api.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: name})
	}
}

// errDetached ends an attach when the user typed the detach keys.
var errDetached = errors.New("read escape sequence")

// hijackedIOStreamer copies stdin to the hijacked connection and the
// connection to stdout/stderr (demultiplexed unless there is a tty).
type hijackedIOStreamer struct {
	cli          *CLI
	inputStream  io.Reader
	outputStream io.Writer
	errorStream  io.Writer
	resp         client.HijackedResponse
	tty          bool
	detachKeys   string
}

func (h *hijackedIOStreamer) stream(ctx context.Context) error {
	restore := func() {}
	if h.inputStream != nil && h.tty {
		keys, err := parseDetachKeys(h.detachKeys)
		if err != nil {
			return err
		}
		if err := h.cli.in.SetRawTerminal(); err != nil {
			return fmt.Errorf("unable to set IO streams as raw terminal: %s", err)
		}
		var once bool
		restore = func() {
			if !once {
				once = true
				h.cli.in.RestoreTerminal()
			}
		}
		defer restore()
		h.inputStream = newEscapeProxy(h.inputStream, keys)
	}

	var outputDone chan error
	if h.outputStream != nil || h.errorStream != nil {
		outputDone = make(chan error, 1)
		go func() {
			var err error
			if h.outputStream != nil && h.tty {
				_, err = io.Copy(h.outputStream, h.resp.Reader)
			} else {
				_, err = stdcopy.StdCopy(orDiscard(h.outputStream), orDiscard(h.errorStream), h.resp.Reader)
			}
			outputDone <- err
		}()
	}
	inputDone := make(chan struct{})
	detached := make(chan error, 1)
	go func() {
		if h.inputStream != nil {
			_, err := io.Copy(h.resp.Conn, h.inputStream)
			if errors.Is(err, errDetached) {
				detached <- err
				return
			}
		}
		_ = h.resp.CloseWrite()
		close(inputDone)
	}()

	select {
	case err := <-outputDone:
		return err
	case <-inputDone:
		if outputDone != nil {
			select {
			case err := <-outputDone:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	case err := <-detached:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// parseDetachKeys parses docker's detach key syntax ("ctrl-p,ctrl-q",
// the default, or letters and ctrl-@ ... ctrl-_).
func parseDetachKeys(keys string) ([]byte, error) {
	if keys == "" {
		return []byte{16, 17}, nil
	}
	var out []byte
	for _, k := range strings.Split(keys, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			ch := k[5]
			switch {
			case ch >= 'a' && ch <= 'z':
				out = append(out, ch-'a'+1)
			case ch == '@':
				out = append(out, 0)
			case ch >= '[' && ch <= '_':
				out = append(out, ch-'['+27)
			default:
				return nil, fmt.Errorf("invalid detach keys (%s): unknown character: '%s'", keys, k)
			}
		default:
			return nil, fmt.Errorf("invalid detach keys (%s): unknown character: '%s'", keys, k)
		}
	}
	return out, nil
}

// escapeProxy passes input through until the detach sequence has been read
// completely; then it fails with errDetached. Bytes of a partial match are
// held back and released when the match breaks.
type escapeProxy struct {
	r       io.Reader
	keys    []byte
	matched int
	pending []byte
	err     error
}

func newEscapeProxy(r io.Reader, keys []byte) io.Reader { return &escapeProxy{r: r, keys: keys} }

func (e *escapeProxy) Read(p []byte) (int, error) {
	if len(e.pending) > 0 {
		n := copy(p, e.pending)
		e.pending = e.pending[n:]
		return n, nil
	}
	if e.err != nil {
		return 0, e.err
	}
	buf := make([]byte, len(p))
	n, err := e.r.Read(buf)
	var out []byte
	for _, b := range buf[:n] {
		if e.matched > 0 && b != e.keys[e.matched] {
			out = append(out, e.keys[:e.matched]...)
			e.matched = 0
		}
		if b == e.keys[e.matched] {
			e.matched++
			if e.matched == len(e.keys) {
				return copy(p, out), errDetached
			}
			continue
		}
		out = append(out, b)
	}
	if err != nil && e.matched > 0 {
		// The input ended inside a partial match: it was input after all.
		out = append(out, e.keys[:e.matched]...)
		e.matched = 0
	}
	m := copy(p, out)
	e.pending = append(e.pending, out[m:]...)
	if len(e.pending) > 0 && err != nil {
		e.err = err // report it after the pending bytes
		return m, nil
	}
	return m, err
}
