package builder

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-connections/nat"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/image"
)

// dispatch runs one instruction of a stage (or an ONBUILD trigger).
func (bd *build) dispatch(ctx context.Context, st *stageState, cmd instructions.Command) error {
	env := st.env()
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if err := ex.Expand(bd.expander(env)); err != nil {
			return errdefs.Invalid("%s: %v", strings.ToUpper(cmd.Name()), err)
		}
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		// Heredoc bodies expand variables but keep their quotes.
		lex := shell.NewLex(bd.escape)
		lex.SkipProcessQuotes = true
		getter := shell.EnvsFromSlice(env)
		err := ex.ExpandRaw(func(word string) (string, error) {
			s, _, err := lex.ProcessWord(word, getter)
			return s, err
		})
		if err != nil {
			return errdefs.Invalid("%s: %v", strings.ToUpper(cmd.Name()), err)
		}
	}
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		return bd.dispatchEnv(ctx, st, c)
	case *instructions.MaintainerCommand:
		st.author = c.Maintainer
		return bd.commitNop(ctx, st, "MAINTAINER "+c.Maintainer)
	case *instructions.LabelCommand:
		if st.cfg.Labels == nil {
			st.cfg.Labels = map[string]string{}
		}
		comment := "LABEL"
		for _, kv := range c.Labels {
			st.cfg.Labels[kv.Key] = kv.Value
			comment += " " + kv.String()
		}
		return bd.commitNop(ctx, st, comment)
	case *instructions.AddCommand:
		return bd.dispatchAdd(ctx, st, c)
	case *instructions.CopyCommand:
		return bd.dispatchCopy(ctx, st, c)
	case *instructions.OnbuildCommand:
		st.cfg.OnBuild = append(st.cfg.OnBuild, c.Expression)
		return bd.commitNop(ctx, st, "ONBUILD "+c.Expression)
	case *instructions.WorkdirCommand:
		return bd.dispatchWorkdir(ctx, st, c)
	case *instructions.RunCommand:
		return bd.dispatchRun(ctx, st, c)
	case *instructions.CmdCommand:
		cmdLine, err := resolveCmdLine(st, c.ShellDependantCmdLine)
		if err != nil {
			return err
		}
		st.cfg.Cmd = cmdLine
		st.cfg.ArgsEscaped = false
		if len(c.CmdLine) != 0 {
			st.cmdSet = true
		}
		return bd.commitNop(ctx, st, fmt.Sprintf("CMD %q", cmdLine))
	case *instructions.HealthCheckCommand:
		if old := st.cfg.Healthcheck; old != nil && len(old.Test) > 0 && old.Test[0] != "NONE" {
			fmt.Fprintf(bd.out, "Note: overriding previous HEALTHCHECK: %v\n", old.Test)
		}
		st.cfg.Healthcheck = c.Health
		return bd.commitNop(ctx, st, "HEALTHCHECK "+healthcheckText(st.cfg.Healthcheck))
	case *instructions.EntrypointCommand:
		ep, err := resolveCmdLine(st, c.ShellDependantCmdLine)
		if err != nil {
			return err
		}
		st.cfg.Entrypoint = ep
		st.cfg.ArgsEscaped = false
		if !st.cmdSet {
			// Docker: a new ENTRYPOINT drops the CMD inherited from the
			// base, whose arguments were meant for the old entrypoint.
			st.cfg.Cmd = nil
		}
		return bd.commitNop(ctx, st, fmt.Sprintf("ENTRYPOINT %q", st.cfg.Entrypoint))
	case *instructions.ExposeCommand:
		return bd.dispatchExpose(ctx, st, c, env)
	case *instructions.UserCommand:
		st.cfg.User = c.User
		return bd.commitNop(ctx, st, "USER "+c.User)
	case *instructions.VolumeCommand:
		if st.cfg.Volumes == nil {
			st.cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v == "" {
				return errdefs.Invalid("VOLUME specified can not be an empty string")
			}
			st.cfg.Volumes[v] = struct{}{}
		}
		return bd.commitNop(ctx, st, fmt.Sprintf("VOLUME %v", c.Volumes))
	case *instructions.StopSignalCommand:
		if err := image.CheckSignal(c.Signal); err != nil {
			return err
		}
		st.cfg.StopSignal = c.Signal
		return bd.commitNop(ctx, st, "STOPSIGNAL "+c.Signal)
	case *instructions.ArgCommand:
		var b strings.Builder
		b.WriteString("ARG")
		for _, a := range c.Args {
			b.WriteString(" " + a.Key)
			if a.Value != nil {
				b.WriteString("=" + *a.Value)
			}
			st.args.declare(a.Key, a.Value)
		}
		return bd.commitNop(ctx, st, b.String())
	case *instructions.ShellCommand:
		st.cfg.Shell = append([]string(nil), c.Shell...)
		return bd.commitNop(ctx, st, fmt.Sprintf("SHELL %v", st.cfg.Shell))
	}
	return errdefs.NotImplemented("%s is not supported by this builder", strings.ToUpper(cmd.Name()))
}

// healthcheckText is Docker's history text of a HEALTHCHECK: %q of its
// HealthConfig struct, so durations are quoted and Retries is printed as a
// rune: &{["CMD-SHELL" "true"] "5s" "0s" "0s" "0s" '\x03'}. Written out
// field by field (go vet rejects %q of a struct).
func healthcheckText(h *dockerspec.HealthcheckConfig) string {
	if h == nil {
		return "<nil>"
	}
	return fmt.Sprintf("&{%q %q %q %q %q %q}", h.Test, h.Interval.String(), h.Timeout.String(),
		h.StartPeriod.String(), h.StartInterval.String(), rune(h.Retries))
}

func (bd *build) dispatchEnv(ctx context.Context, st *stageState, c *instructions.EnvCommand) error {
	comment := "ENV"
	for _, kv := range c.Env {
		comment += " " + kv.String()
		setEnv(&st.cfg.Env, kv.Key, kv.Value)
	}
	return bd.commitNop(ctx, st, comment)
}

func setEnv(env *[]string, key, value string) {
	kv := key + "=" + value
	for i, e := range *env {
		if k, _, _ := strings.Cut(e, "="); shell.EqualEnvKeys(k, key) {
			(*env)[i] = kv
			return
		}
	}
	*env = append(*env, kv)
}

// resolveCmdLine gives a RUN, CMD or ENTRYPOINT its argv: the shell form
// runs through SHELL. A RUN whose whole command is one heredoc runs the
// heredoc's body as the shell script (BuildKit's simple heredoc form).
func resolveCmdLine(st *stageState, c instructions.ShellDependantCmdLine) ([]string, error) {
	if len(c.Files) > 0 {
		if !c.PrependShell || len(c.Files) != 1 || len(c.CmdLine) != 1 || parser.MustParseHeredoc(c.CmdLine[0]) == nil {
			return nil, errdefs.NotImplemented("only a RUN whose whole command is one heredoc (RUN <<EOF) is supported")
		}
		data := c.Files[0].Data
		if c.Files[0].Chomp {
			data = parser.ChompHeredocContent(data)
		}
		return append(st.shell(), data), nil
	}
	if !c.PrependShell {
		return append([]string(nil), c.CmdLine...), nil
	}
	if c.CmdLine == nil {
		return nil, nil
	}
	return append(st.shell(), c.CmdLine...), nil
}

func (bd *build) dispatchExpose(ctx context.Context, st *stageState, c *instructions.ExposeCommand, env []string) error {
	// EXPOSE is the one instruction whose variables expand to several
	// words ("EXPOSE $PORTS" with PORTS="80 443").
	getter := shell.EnvsFromSlice(env)
	var ports []string
	for _, p := range c.Ports {
		words, err := bd.lex.ProcessWords(p, getter)
		if err != nil {
			return errdefs.Invalid("EXPOSE: %v", err)
		}
		ports = append(ports, words...)
	}
	specs, _, err := nat.ParsePortSpecs(ports)
	if err != nil {
		return errdefs.Invalid("EXPOSE: %v", err)
	}
	if st.cfg.ExposedPorts == nil {
		st.cfg.ExposedPorts = map[string]struct{}{}
	}
	for p := range specs {
		st.cfg.ExposedPorts[string(p)] = struct{}{}
	}
	return bd.commitNop(ctx, st, "EXPOSE "+strings.Join(ports, " "))
}

// dispatchWorkdir sets the working directory and, like Docker, creates it
// in a layer when the image lacks it (an existing one adds no layer).
func (bd *build) dispatchWorkdir(ctx context.Context, st *stageState, c *instructions.WorkdirCommand) error {
	wd := c.Path
	if !path.IsAbs(wd) {
		wd = path.Join("/", st.cfg.WorkingDir, wd)
	}
	wd = path.Clean(wd)
	st.cfg.WorkingDir = wd
	parent := st.id()
	return bd.commit(ctx, st, &step{
		createdBy: nopString(st, "WORKDIR "+wd),
		layer: func(ctx context.Context, _ *step) (*image.Layer, error) {
			root, release, err := bd.b.be.ImageRootFS(ctx, parent)
			if err != nil {
				return nil, fmt.Errorf("WORKDIR: read image: %w", err)
			}
			missing := missingDirs(root, wd)
			release()
			if len(missing) == 0 {
				return nil, nil
			}
			return bd.addLayer(ctx, parent, func(w io.Writer) error { return writeDirs(w, missing) })
		},
	})
}

// missingDirs lists the directories to create for dir in the image at
// root, outermost first (paths inside the image, resolved through its
// symlinks).
func missingDirs(root, dir string) []string {
	var missing []string
	for d := dir; d != "/"; d = path.Dir(d) {
		if isDirInRoot(root, d) {
			break
		}
		missing = append([]string{d}, missing...)
	}
	return missing
}

// writeDirs writes a layer tar of root-owned 0755 directories made now
// (Docker's mkdir gives them the build's time, not the epoch).
func writeDirs(w io.Writer, dirs []string) error {
	tw := tar.NewWriter(w)
	now := time.Now()
	for _, d := range dirs {
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, ModTime: now, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
	}
	return tw.Close()
}

// addLayer streams the tar write produces into a new layer on parent (held
// by the build's lease, which ctx carries).
func (bd *build) addLayer(ctx context.Context, parent string, write func(io.Writer) error) (*image.Layer, error) {
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() {
		werr = write(pw)
		pw.CloseWithError(werr)
	})
	l, err := bd.b.be.AddLayer(ctx, parent, pr)
	pr.CloseWithError(io.ErrClosedPipe) // stops the writer if AddLayer failed early
	wg.Wait()
	if werr != nil && werr != io.ErrClosedPipe {
		return nil, werr
	}
	if err != nil {
		return nil, fmt.Errorf("store layer: %w", err)
	}
	return &l, nil
}

// dispatchRun runs a RUN step in a container of the current image.
func (bd *build) dispatchRun(ctx context.Context, st *stageState, c *instructions.RunCommand) error {
	if len(c.FlagsUsed) > 0 {
		return errdefs.NotImplemented("RUN --%s is not supported by this builder (it needs BuildKit)", c.FlagsUsed[0])
	}
	cmd, err := resolveCmdLine(st, c.ShellDependantCmdLine)
	if err != nil {
		return err
	}
	if len(cmd) == 0 {
		return errdefs.Invalid("RUN needs a command")
	}
	args := st.args.inEffect(st.cfg.Env)
	saveCmd := cmd
	if len(args) > 0 {
		// Docker's "|N K=V ..." prefix: the build args a RUN saw are part
		// of its history and cache key (proxy args only when declared).
		hist := st.args.inHistory(args)
		saveCmd = append(append([]string{fmt.Sprintf("|%d", len(hist))}, hist...), cmd...)
	}
	parent := st.id()
	runCfg := &container.Config{
		Image:        parent,
		User:         st.cfg.User,
		Env:          append(append([]string(nil), st.cfg.Env...), args...),
		Cmd:          cmd,
		WorkingDir:   st.cfg.WorkingDir,
		Labels:       maps.Clone(st.cfg.Labels),
		StopSignal:   st.cfg.StopSignal,
		Shell:        slices.Clone(st.cfg.Shell),
		Volumes:      maps.Clone(st.cfg.Volumes),
		Healthcheck:  &container.HealthConfig{Test: []string{"NONE"}},
		ExposedPorts: network.PortSet{},
	}
	for p := range st.cfg.ExposedPorts {
		if port, err := network.ParsePort(p); err == nil {
			runCfg.ExposedPorts[port] = struct{}{}
		}
	}
	hostCfg := &container.HostConfig{NetworkMode: container.NetworkMode(bd.netMode)}
	return bd.commit(ctx, st, &step{
		createdBy: strings.Join(saveCmd, " "),
		layer: func(ctx context.Context, _ *step) (*image.Layer, error) {
			ro := &runOutput{Writer: bd.out}
			l, code, err := bd.b.be.Run(ctx, parent, runCfg, hostCfg, ro)
			ro.removed()
			if err != nil {
				return nil, fmt.Errorf("RUN: %w", err)
			}
			if code != 0 {
				return nil, &ExitError{Cmd: cmd, Code: code, Line: st.line}
			}
			return &l, nil
		},
	})
}

// runOutput is the RunOutput a RUN's container writes to.
type runOutput struct {
	io.Writer
	mu sync.Mutex
	id string
}

func (r *runOutput) ContainerCreated(id string) {
	r.mu.Lock()
	r.id = id
	r.mu.Unlock()
	fmt.Fprintf(r.Writer, " ---> Running in %s\n", image.ShortID(id))
}

func (r *runOutput) removed() {
	r.mu.Lock()
	id := r.id
	r.mu.Unlock()
	if id != "" {
		fmt.Fprintf(r.Writer, " ---> Removed intermediate container %s\n", image.ShortID(id))
	}
}

var _ RunOutput = (*runOutput)(nil)
