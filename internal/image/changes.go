package image

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/docker/go-connections/nat"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// changeCommands are the Dockerfile instructions `import --change` and
// `commit --change` accept (Docker's list).
var changeCommands = map[string]bool{
	"cmd": true, "entrypoint": true, "env": true, "expose": true, "healthcheck": true,
	"label": true, "onbuild": true, "stopsignal": true, "user": true, "volume": true,
	"workdir": true,
}

// ApplyChanges applies Dockerfile instructions (CMD, ENTRYPOINT, ENV,
// EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR, in
// JSON or shell form) to cfg, the way `docker import --change` does:
// variables expand against the environment built so far. A bad change is an
// Invalid error and leaves cfg unchanged.
func ApplyChanges(cfg *dockerspec.DockerOCIImageConfig, changes []string) error {
	if len(changes) == 0 {
		return nil
	}
	res, err := parser.Parse(strings.NewReader(strings.Join(changes, "\n")))
	if err != nil {
		return errdefs.Invalid("dockerfile parse error: %v", err)
	}
	var cmds []instructions.Command
	for _, n := range res.AST.Children {
		if !changeCommands[strings.ToLower(n.Value)] {
			return errdefs.Invalid("dockerfile parse error on line %d: %s is not a valid change command", n.StartLine, strings.ToUpper(n.Value))
		}
		c, err := instructions.ParseCommand(n)
		if err != nil {
			return errdefs.Invalid("dockerfile parse error on line %d: %v", n.StartLine, err)
		}
		cmds = append(cmds, c)
	}

	out := copyConfig(cfg)
	lex := shell.NewLex(res.EscapeToken)
	cmdSet := false
	for _, c := range cmds {
		env := shell.EnvsFromSlice(out.Env)
		expand := func(word string) (string, error) {
			s, _, err := lex.ProcessWord(word, env)
			return s, err
		}
		if ex, ok := c.(instructions.SupportsSingleWordExpansion); ok {
			if err := ex.Expand(expand); err != nil {
				return errdefs.Invalid("dockerfile parse error: %s: %v", c.Name(), err)
			}
		}
		if err := dispatch(&out, c, lex, env, &cmdSet); err != nil {
			return errdefs.Invalid("dockerfile parse error: %s: %v", strings.ToUpper(c.Name()), err)
		}
	}
	*cfg = out
	return nil
}

func copyConfig(in *dockerspec.DockerOCIImageConfig) dockerspec.DockerOCIImageConfig {
	out := *in
	out.Env = append([]string(nil), in.Env...)
	out.Cmd = append([]string(nil), in.Cmd...)
	out.Entrypoint = append([]string(nil), in.Entrypoint...)
	out.OnBuild = append([]string(nil), in.OnBuild...)
	out.Shell = append([]string(nil), in.Shell...)
	out.Labels = copyMap(in.Labels)
	out.ExposedPorts = copySet(in.ExposedPorts)
	out.Volumes = copySet(in.Volumes)
	if in.Healthcheck != nil {
		h := *in.Healthcheck
		out.Healthcheck = &h
	}
	return out
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func copySet(m map[string]struct{}) map[string]struct{} {
	if m == nil {
		return nil
	}
	out := make(map[string]struct{}, len(m))
	for k := range m {
		out[k] = struct{}{}
	}
	return out
}

func dispatch(cfg *dockerspec.DockerOCIImageConfig, c instructions.Command, lex *shell.Lex, env shell.EnvGetter, cmdSet *bool) error {
	switch c := c.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			setEnv(&cfg.Env, kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.CmdCommand:
		cfg.Cmd = cmdLine(cfg, c.ShellDependantCmdLine)
		cfg.ArgsEscaped = false
		*cmdSet = true
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = cmdLine(cfg, c.ShellDependantCmdLine)
		cfg.ArgsEscaped = false
		if !*cmdSet {
			// As in a Dockerfile: a new entrypoint drops the inherited CMD.
			cfg.Cmd = nil
		}
	case *instructions.WorkdirCommand:
		p := c.Path
		if !path.IsAbs(p) {
			p = path.Join("/", cfg.WorkingDir, p)
		}
		cfg.WorkingDir = path.Clean(p)
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.ExposeCommand:
		var ports []string
		for _, p := range c.Ports {
			words, err := lex.ProcessWords(p, env)
			if err != nil {
				return err
			}
			ports = append(ports, words...)
		}
		specs, _, err := nat.ParsePortSpecs(ports)
		if err != nil {
			return err
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for p := range specs {
			cfg.ExposedPorts[string(p)] = struct{}{}
		}
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v = strings.TrimSpace(v); v == "" {
				return fmt.Errorf("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.StopSignalCommand:
		if err := CheckSignal(c.Signal); err != nil {
			return err
		}
		cfg.StopSignal = c.Signal
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
	case *instructions.HealthCheckCommand:
		cfg.Healthcheck = c.Health
	default:
		return fmt.Errorf("%s is not a valid change command", c.Name())
	}
	return nil
}

// cmdLine resolves the shell form ("CMD echo hi") with the image's shell.
func cmdLine(cfg *dockerspec.DockerOCIImageConfig, c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return append([]string{}, c.CmdLine...)
	}
	sh := cfg.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(append([]string{}, sh...), strings.Join(c.CmdLine, " "))
}

func setEnv(env *[]string, key, value string) {
	kv := key + "=" + value
	for i, e := range *env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			(*env)[i] = kv
			return
		}
	}
	*env = append(*env, kv)
}

// CheckSignal accepts what Docker's STOPSIGNAL accepts: a number or a
// signal name, with or without SIG.
func CheckSignal(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return errdefs.Invalid("Invalid signal: %s", s)
		}
		return nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if _, ok := RTSignal(name); unix.SignalNum(name) != 0 || ok {
		return nil
	}
	return errdefs.Invalid("Invalid signal: %s", s)
}

// RTSignal parses the real-time signal names Docker knows (its signal map),
// upper case with SIG: SIGRTMIN (34), SIGRTMIN+1 to +15, SIGRTMAX-14 to -1
// and SIGRTMAX (64). systemd's halt signal, the STOPSIGNAL of a systemd
// image, is SIGRTMIN+3.
func RTSignal(name string) (int, bool) {
	const rtmin, rtmax = 34, 64
	switch name {
	case "SIGRTMIN":
		return rtmin, true
	case "SIGRTMAX":
		return rtmax, true
	}
	if n, ok := strings.CutPrefix(name, "SIGRTMIN+"); ok {
		if v, err := strconv.Atoi(n); err == nil && v >= 1 && v <= 15 && n == strconv.Itoa(v) {
			return rtmin + v, true
		}
	}
	if n, ok := strings.CutPrefix(name, "SIGRTMAX-"); ok {
		if v, err := strconv.Atoi(n); err == nil && v >= 1 && v <= 14 && n == strconv.Itoa(v) {
			return rtmax - v, true
		}
	}
	return 0, false
}
