package builder

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-dev/skiff/internal/buildcontext"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/image"
)

// defaultPath is the PATH a stage gets when its base image sets none
// (Docker's default for Linux).
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// emptyLayerDiffID is the diff id of a layer tar with no entries: a step
// that changed nothing adds no layer, like Docker.
var emptyLayerDiffID = digest.FromBytes(make([]byte, 1024))

// build is one run of Builder.Build.
type build struct {
	b       *Builder
	bc      *buildcontext.Context
	opts    Options
	out     io.Writer
	file    string // the Dockerfile's name, for error messages
	lex     *shell.Lex
	escape  rune // the Dockerfile's escape character
	stages  []instructions.Stage
	results map[int]*stageResult // by stage index, once built
	pulled  map[string]bool      // refs pulled in this build
	netMode string
	args    *buildArgs // the global scope: meta args and --build-arg
	step    int
	total   int
}

// stageResult is a built stage; img nil is an empty (scratch) stage.
type stageResult struct{ img *image.Image }

// stageState is the state of the stage being built: the image so far and
// the config the next step starts from.
type stageState struct {
	index  int          // the stage's index in the Dockerfile
	img    *image.Image // nil: scratch, nothing committed yet
	cfg    dockerspec.DockerOCIImageConfig
	author string // MAINTAINER; not inherited from the base, like Docker
	args   *buildArgs
	cmdSet bool // a CMD was set in this stage (ENTRYPOINT then keeps it)
	line   int  // line of the instruction being dispatched
}

func (st *stageState) id() string {
	if st.img == nil {
		return ""
	}
	return st.img.ID
}

// shell is the shell of shell-form commands and of history comments.
func (st *stageState) shell() []string {
	if len(st.cfg.Shell) > 0 {
		return slices.Clone(st.cfg.Shell)
	}
	return []string{"/bin/sh", "-c"}
}

// env is what variables in an instruction expand with: ENV, then the args
// in scope that no ENV shadows.
func (st *stageState) env() []string {
	return append(slices.Clone(st.cfg.Env), st.args.inEffect(st.cfg.Env)...)
}

func (bd *build) printStep(text string) {
	bd.step++
	fmt.Fprintf(bd.out, "Step %d/%d : %s\n", bd.step, bd.total, text)
}

// run builds the stages target needs and returns the target's image id.
func (bd *build) run(ctx context.Context, metaArgs []instructions.ArgCommand, target int) (string, error) {
	bd.args = newBuildArgs(bd.opts.BuildArgs)
	for k, v := range platformArgs() {
		bd.args.meta[k] = &v
		bd.args.declared[k] = &v
	}
	for i := range metaArgs {
		env := envList(bd.args.resolved(bd.args.declared))
		if err := metaArgs[i].Expand(bd.expander(env)); err != nil {
			return "", bd.lineError(startLine(metaArgs[i].Location()), errdefs.Invalid("%v", err))
		}
		for _, a := range metaArgs[i].Args {
			bd.args.declareMeta(a.Key, a.Value)
		}
	}
	need := bd.needed(target)
	bd.total = len(metaArgs)
	for i, s := range bd.stages {
		if need[i] {
			bd.total += 1 + len(s.Commands)
		}
	}
	for i := range metaArgs {
		bd.printStep(metaArgs[i].String())
	}
	for i := range bd.stages {
		if !need[i] {
			continue
		}
		if err := bd.buildStage(ctx, i); err != nil {
			return "", err
		}
	}
	bd.args.warnUnused(bd.out)
	img := bd.results[target].img
	if img == nil {
		return "", errdefs.Invalid("No image was generated. Is your Dockerfile empty?")
	}
	return img.ID, nil
}

// expander expands a word against env (K=V lines).
func (bd *build) expander(env []string) instructions.SingleWordExpander {
	getter := shell.EnvsFromSlice(env)
	return func(word string) (string, error) {
		s, _, err := bd.lex.ProcessWord(word, getter)
		return s, err
	}
}

// expandMeta expands a FROM operand (or COPY --from) with the meta args.
func (bd *build) expandMeta(word string) (string, error) {
	if !strings.Contains(word, "$") {
		return word, nil
	}
	return bd.expander(envList(bd.args.metaValues()))(word)
}

// stageRef resolves a COPY --from value used in stage cur: the index of an
// earlier stage (by name or number), -1 for an image name, or an error for
// the current or a later stage.
func (bd *build) stageRef(ref string, cur int) (int, error) {
	for i, s := range bd.stages {
		if s.Name != "" && strings.EqualFold(s.Name, ref) {
			if i >= cur {
				return 0, errdefs.Invalid("stage %s is not defined before the stage that uses it", ref)
			}
			return i, nil
		}
	}
	if n, err := strconv.Atoi(ref); err == nil {
		switch {
		case n == cur:
			return 0, errdefs.Invalid("refers to current build stage")
		case n < 0 || n > cur:
			return 0, errdefs.Invalid("index out of bounds")
		}
		return n, nil
	}
	return -1, nil
}

// stageBefore finds the stage a FROM in stage cur names, if any: only
// earlier stages count (a later name is an image, as in Docker).
func (bd *build) stageBefore(name string, cur int) (int, bool) {
	for i := range cur {
		if n := bd.stages[i].Name; n != "" && strings.EqualFold(n, name) {
			return i, true
		}
	}
	return 0, false
}

// needed marks the stages target depends on through FROM <stage> and
// COPY --from=<stage>; the others are not built (as with BuildKit).
func (bd *build) needed(target int) []bool {
	need := make([]bool, len(bd.stages))
	var visit func(i int)
	visit = func(i int) {
		if need[i] {
			return
		}
		need[i] = true
		s := bd.stages[i]
		if base, err := bd.expandMeta(s.BaseName); err == nil {
			if j, ok := bd.stageBefore(base, i); ok {
				visit(j)
			}
		}
		for _, c := range s.Commands {
			cp, ok := c.(*instructions.CopyCommand)
			if !ok || cp.From == "" {
				continue
			}
			from, err := bd.expandMeta(cp.From)
			if err != nil {
				continue // reported when the COPY runs
			}
			if j, err := bd.stageRef(from, i); err == nil && j >= 0 {
				visit(j)
			}
		}
	}
	visit(target)
	return need
}

func (bd *build) buildStage(ctx context.Context, i int) error {
	s := &bd.stages[i]
	st := &stageState{index: i, args: bd.args.forStage(), line: startLine(s.Location)}
	bd.printStep(s.SourceCode)
	if err := bd.from(ctx, st, i); err != nil {
		return bd.lineError(startLine(s.Location), err)
	}
	fmt.Fprintf(bd.out, " ---> %s\n", image.ShortID(st.id()))
	for _, cmd := range s.Commands {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("build cancelled: %w", err)
		}
		bd.printStep(fmt.Sprint(cmd))
		st.line = startLine(cmd.Location())
		if err := bd.dispatch(ctx, st, cmd); err != nil {
			return bd.lineError(st.line, err)
		}
		fmt.Fprintf(bd.out, " ---> %s\n", image.ShortID(st.id()))
	}
	bd.results[i] = &stageResult{img: st.img}
	return nil
}

// from starts stage i: its base image (scratch, an earlier stage or an
// image, pulled when missing or with --pull), then the base's ONBUILD
// triggers.
func (bd *build) from(ctx context.Context, st *stageState, i int) error {
	s := &bd.stages[i]
	if s.Platform != "" {
		p, err := bd.expandMeta(s.Platform)
		if err != nil {
			return errdefs.Invalid("failed to process arguments for platform %s: %v", s.Platform, err)
		}
		if err := checkPlatform(p); err != nil {
			return err
		}
	}
	name, err := bd.expandMeta(s.BaseName)
	if err != nil {
		return errdefs.Invalid("failed to process arguments for FROM %s: %v", s.BaseName, err)
	}
	if name == "" {
		return errdefs.Invalid("base name (%s) should not be blank", s.BaseName)
	}
	var base *image.Image
	if j, ok := bd.stageBefore(name, i); ok {
		r := bd.results[j]
		if r == nil {
			return errdefs.System("stage %s was not built", name)
		}
		base = r.img
	} else if name != "scratch" {
		if base, err = bd.image(ctx, name); err != nil {
			return err
		}
	}
	st.img = base
	if base != nil {
		st.cfg = copyConfig(base.Config.Config)
	}
	if !slices.ContainsFunc(st.cfg.Env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		st.cfg.Env = append(st.cfg.Env, defaultPath)
	}
	if len(st.cfg.OnBuild) == 0 {
		return nil
	}
	triggers := st.cfg.OnBuild
	st.cfg.OnBuild = nil
	plural := ""
	if len(triggers) > 1 {
		plural = "s"
	}
	fmt.Fprintf(bd.out, "# Executing %d build trigger%s\n", len(triggers), plural)
	for _, t := range triggers {
		cmd, err := parseTrigger(t)
		if err != nil {
			return err
		}
		if err := bd.dispatch(ctx, st, cmd); err != nil {
			return err
		}
	}
	return nil
}

// parseTrigger parses one ONBUILD trigger of a base image's config: one
// instruction. Errors are Invalid.
func parseTrigger(t string) (instructions.Command, error) {
	res, err := parser.Parse(strings.NewReader(t))
	if err != nil {
		return nil, errdefs.Invalid("ONBUILD trigger %q: %v", t, err)
	}
	if len(res.AST.Children) != 1 {
		return nil, errdefs.Invalid("onbuild trigger should be a single expression")
	}
	cmd, err := instructions.ParseCommand(res.AST.Children[0])
	if err != nil {
		return nil, errdefs.Invalid("ONBUILD trigger %q: %v", t, err)
	}
	return cmd, nil
}

// image finds a local image by reference or id, pulling it when missing
// (or always once per build with --pull, for references).
func (bd *build) image(ctx context.Context, ref string) (*image.Image, error) {
	isRef := false
	if _, err := reference.ParseNormalizedNamed(ref); err == nil {
		isRef = true
	}
	if bd.opts.Pull && isRef && !bd.pulled[ref] {
		if err := bd.pull(ctx, ref); err != nil {
			return nil, err
		}
	}
	img, err := bd.b.be.ImageGet(ctx, ref)
	if errdefs.IsNotFound(err) && isRef && !bd.pulled[ref] {
		if err := bd.pull(ctx, ref); err != nil {
			return nil, err
		}
		img, err = bd.b.be.ImageGet(ctx, ref)
	}
	if err != nil {
		return nil, err
	}
	return img, nil
}

func (bd *build) pull(ctx context.Context, ref string) error {
	bd.pulled[ref] = true
	p := bd.opts.Platform
	if strings.EqualFold(p, "local") {
		p = ""
	}
	auth := ""
	if bd.opts.RegistryAuth != nil {
		auth = bd.opts.RegistryAuth(ref)
	}
	return bd.b.be.ImagePull(ctx, ref, p, auth, bd.out)
}

// step is one image-making step.
type step struct {
	// createdBy is the history text; the cache key includes it.
	createdBy string
	// keyText replaces createdBy in the cache key when the history text is
	// only known once the step runs (COPY --from).
	keyText string
	// layer makes the step's layer on a cache miss (nil: metadata only).
	// It may set s.createdBy. The layer is held by the build's lease.
	layer func(ctx context.Context, s *step) (l *image.Layer, err error)
}

// commitNop records a metadata step: Docker's "#(nop) " history comment
// as two words (the form every instruction but WORKDIR, COPY and ADD has).
func (bd *build) commitNop(ctx context.Context, st *stageState, comment string) error {
	return bd.commit(ctx, st, &step{createdBy: strings.Join(append(st.shell(), "#(nop) ", comment), " ")})
}

// nopString is the one-word comment form of WORKDIR, COPY and ADD.
func nopString(st *stageState, comment string) string {
	return strings.Join(append(st.shell(), "#(nop) "+comment), " ")
}

// commit makes the image of a step whose resulting config is st.cfg, or
// reuses the cached one.
func (bd *build) commit(ctx context.Context, st *stageState, s *step) error {
	kt := s.keyText
	if kt == "" {
		kt = s.createdBy
	}
	k := cacheKey{Parent: st.id(), CreatedBy: kt, Config: st.cfg, Author: st.author}
	if st.img == nil {
		k.Platform = hostPlatform().String()
	}
	key, err := k.hash()
	if err != nil {
		return err
	}
	if !bd.opts.NoCache {
		if id, err := bd.b.cache.get(key); err != nil {
			return err
		} else if id != "" {
			if img, err := bd.b.be.ImageGet(ctx, id); err == nil {
				fmt.Fprintln(bd.out, " ---> Using cache")
				st.img = img
				return nil
			}
		}
	}
	var layer *image.Layer
	if s.layer != nil {
		l, err := s.layer(ctx, s)
		if err != nil {
			return err
		}
		layer = l
	}
	if layer != nil && layer.DiffID == emptyLayerDiffID {
		layer = nil
	}
	cfg, layers := st.child(s.createdBy, layer)
	img, err := bd.b.be.CreateImage(ctx, cfg, layers, st.id())
	if err != nil {
		return fmt.Errorf("create image: %w", err)
	}
	st.img = img
	return bd.b.cache.put(key, img.ID)
}

// child is the image config of a step on st's image.
func (st *stageState) child(createdBy string, layer *image.Layer) (dockerspec.DockerOCIImage, []image.Layer) {
	now := time.Now().UTC()
	var out dockerspec.DockerOCIImage
	var layers []image.Layer
	if st.img != nil {
		p := st.img.Config
		out.Platform = p.Platform
		out.History = slices.Clone(p.History)
		layers = slices.Clone(st.img.Layers)
	} else {
		h := hostPlatform()
		out.OS, out.Architecture, out.Variant = h.os, h.arch, h.variant
	}
	if layer != nil {
		layers = append(layers, *layer)
	}
	out.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: make([]digest.Digest, 0, len(layers))}
	for _, l := range layers {
		out.RootFS.DiffIDs = append(out.RootFS.DiffIDs, l.DiffID)
	}
	out.Created = &now
	out.Author = st.author
	out.Config = copyConfig(st.cfg)
	out.History = append(out.History, ocispec.History{
		Created:    &now,
		CreatedBy:  createdBy,
		Author:     st.author,
		EmptyLayer: layer == nil,
	})
	return out, layers
}

// copyConfig deep-copies an image config so steps never share slices or
// maps with the base image or each other.
func copyConfig(in dockerspec.DockerOCIImageConfig) dockerspec.DockerOCIImageConfig {
	out := in
	out.Env = slices.Clone(in.Env)
	out.Cmd = slices.Clone(in.Cmd)
	out.Entrypoint = slices.Clone(in.Entrypoint)
	out.OnBuild = slices.Clone(in.OnBuild)
	out.Shell = slices.Clone(in.Shell)
	out.Labels = maps.Clone(in.Labels)
	out.ExposedPorts = maps.Clone(in.ExposedPorts)
	out.Volumes = maps.Clone(in.Volumes)
	if in.Healthcheck != nil {
		h := *in.Healthcheck
		h.Test = slices.Clone(in.Healthcheck.Test)
		out.Healthcheck = &h
	}
	return out
}

// hashString is Docker's "prefix:hex(sha256(parts joined by commas))".
func hashString(prefix string, parts []string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, ",")))
	return fmt.Sprintf("%s:%x", prefix, sum)
}
