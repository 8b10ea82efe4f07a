// Package builder builds images from Dockerfiles with Docker's legacy
// builder semantics (`DOCKER_BUILDKIT=0 docker build`): one image per
// instruction, Docker's history strings, and Docker's progress lines. It
// parses with BuildKit's dockerfile parser and instructions packages, runs
// RUN steps and stores layers and images through a Backend (the engine),
// reads COPY and ADD sources through package buildcontext, and keeps a
// build cache in meta.db so a rebuild of unchanged steps reads no file and
// starts no container.
//
// Two things differ from Docker's legacy builder on purpose, following
// BuildKit: only the stages the target needs are built, and COPY/ADD
// accept --chmod. BuildKit's automatic platform args (TARGETARCH...) are
// defined too.
package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/skiff-dev/skiff/internal/buildcontext"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/image"
	"github.com/skiff-dev/skiff/internal/meta"
)

// Options are a build's parameters (docker build's flags).
type Options struct {
	Dockerfile        string // path in the context; default "Dockerfile"
	DockerfileContent []byte // when non-nil, used instead (docker build -f -)
	Tags              []string
	BuildArgs         map[string]*string // a nil value sets nothing
	Target            string
	NoCache           bool
	Pull              bool
	Quiet             bool // write nothing to out; errors are returned
	Labels            map[string]string
	NetworkMode       string // "", "default", "bridge", "host", "none"
	Platform          string
	ForceRm, Rm       bool // accepted; intermediate containers are always removed
	// RegistryAuth returns the X-Registry-Auth value for pulling ref (FROM
	// or COPY --from an image not present, --pull): the credentials the
	// client sent for ref's registry, "" for none. nil: no credentials.
	RegistryAuth func(ref string) string
}

// Builder builds images; one Builder serves concurrent builds.
type Builder struct {
	be    Backend
	cache *cache
}

// New makes a Builder storing its cache in db.
func New(b Backend, db *meta.DB) (*Builder, error) {
	c, err := newCache(db)
	if err != nil {
		return nil, err
	}
	return &Builder{be: b, cache: c}, nil
}

// ExitError is a RUN step whose command exited non-zero. Its message is
// Docker's; Code is what Docker puts in the JSON stream's errorDetail.
type ExitError struct {
	Cmd  []string
	Code int
	Line int // the RUN's line in the Dockerfile
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("The command '%s' returned a non-zero code: %d", strings.Join(e.Cmd, " "), e.Code)
}

// Build builds the Dockerfile of bc (or opts.DockerfileContent), writing
// Docker's progress lines to out, tags the result and returns its id. A
// failed build tags nothing; the images of the steps it completed stay as
// cache.
func (b *Builder) Build(ctx context.Context, bc *buildcontext.Context, opts Options, out io.Writer) (string, error) {
	if opts.Quiet || out == nil {
		out = io.Discard
	}
	tags, err := parseTags(opts.Tags)
	if err != nil {
		return "", err
	}
	if err := checkPlatform(opts.Platform); err != nil {
		return "", err
	}
	netMode, err := networkMode(opts.NetworkMode)
	if err != nil {
		return "", err
	}
	name, content, err := readDockerfile(bc, opts)
	if err != nil {
		return "", err
	}
	res, stages, metaArgs, err := parseDockerfile(name, content)
	if err != nil {
		return "", err
	}
	target := len(stages) - 1
	if opts.Target != "" {
		i, ok := instructions.HasStage(stages, opts.Target)
		if !ok {
			return "", errdefs.Invalid("target stage %q could not be found", opts.Target)
		}
		target = i
	}
	// --label adds LABEL steps to the target stage, as Docker does.
	for _, k := range slices.Sorted(maps.Keys(opts.Labels)) {
		stages[target].AddCommand(instructions.NewLabelCommand(k, opts.Labels[k], true))
	}

	bd := &build{
		b:       b,
		bc:      bc,
		opts:    opts,
		out:     out,
		file:    name,
		lex:     shell.NewLex(res.EscapeToken),
		escape:  res.EscapeToken,
		stages:  stages,
		results: map[int]*stageResult{},
		pulled:  map[string]bool{},
		netMode: netMode,
	}
	res.PrintWarnings(out)
	// One lease for the whole build: every layer and image a step stores
	// stays until the build ends, when the images name what they need.
	ctx, release, err := b.be.Lease(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	id, err := bd.run(ctx, metaArgs, target)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(out, "Successfully built %s\n", image.ShortID(id))
	for _, t := range tags {
		if err := b.be.TagImage(ctx, id, t.String()); err != nil {
			return "", fmt.Errorf("tag %s: %w", reference.FamiliarString(t), err)
		}
		fmt.Fprintf(out, "Successfully tagged %s\n", reference.FamiliarString(t))
	}
	return id, nil
}

// parseTags validates and normalizes -t names before anything is built.
func parseTags(in []string) ([]reference.Named, error) {
	var out []reference.Named
	for _, t := range in {
		named, err := image.ParseReference(t)
		if err != nil {
			return nil, err
		}
		if _, ok := named.(reference.Canonical); ok {
			return nil, errdefs.Invalid("invalid tag %q: refusing to create a tag with a digest reference", t)
		}
		out = append(out, named)
	}
	return out, nil
}

// networkMode maps the build's --network to the RUN containers' mode.
func networkMode(m string) (string, error) {
	switch m {
	case "", "default", "bridge":
		return "bridge", nil
	case "host", "none":
		return m, nil
	}
	return "", errdefs.Invalid("network mode %q is not supported for builds: use bridge, host or none", m)
}

// readDockerfile returns the Dockerfile's name (for error messages) and
// content. Like Docker, a missing "Dockerfile" falls back to
// "dockerfile".
func readDockerfile(bc *buildcontext.Context, opts Options) (string, []byte, error) {
	if opts.DockerfileContent != nil {
		return "Dockerfile", opts.DockerfileContent, nil
	}
	name := opts.Dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	if bc == nil {
		return "", nil, errdefs.Invalid("no build context to read %s from", name)
	}
	data, err := bc.ReadFile(name)
	if errdefs.IsNotFound(err) && opts.Dockerfile == "" {
		if d, err2 := bc.ReadFile("dockerfile"); err2 == nil {
			return "dockerfile", d, nil
		}
	}
	if errdefs.IsNotFound(err) {
		return "", nil, errdefs.Invalid("Cannot locate specified Dockerfile: %s", name)
	}
	if err != nil {
		return "", nil, fmt.Errorf("read %s: %w", name, err)
	}
	return name, data, nil
}

// parseDockerfile is the front end: the Dockerfile's syntax (buildkit's
// parser, heredocs included), its stages and the args before the first
// FROM. Every error is Invalid, with Docker's words.
func parseDockerfile(name string, content []byte) (*parser.Result, []instructions.Stage, []instructions.ArgCommand, error) {
	res, err := parser.Parse(bytes.NewReader(content))
	if err != nil {
		return nil, nil, nil, parseError(name, err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, nil, nil, errdefs.Invalid("%v", err)
	}
	if len(stages) == 0 {
		return nil, nil, nil, errdefs.Invalid("%s: no FROM instruction: a Dockerfile must start a stage with FROM", name)
	}
	if err := checkStageNames(name, stages); err != nil {
		return nil, nil, nil, err
	}
	return res, stages, metaArgs, nil
}

// parseError words an error of the Dockerfile parser: with its line in
// the form the instructions package gives its own errors ("dockerfile
// parse error on line 2: ..."), else as Docker does ("failed to parse
// Dockerfile: file with no instructions").
func parseError(file string, err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		return errdefs.Invalid("dockerfile parse error on line %d: %v", le.Locations[0][0].Start.Line, err)
	}
	return errdefs.Invalid("failed to parse %s: %v", file, err)
}

// checkStageNames refuses two stages of one name, as Docker does.
func checkStageNames(file string, stages []instructions.Stage) error {
	seen := map[string]bool{}
	for _, s := range stages {
		if s.Name == "" {
			continue
		}
		if seen[s.Name] {
			return errdefs.Invalid("%s:%d: %s stage name already used", file, startLine(s.Location), s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}

func startLine(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}

// lineError prefixes err with the Dockerfile line it comes from; its kind
// is kept. A failing RUN keeps Docker's exact message.
func (bd *build) lineError(line int, err error) error {
	var exit *ExitError
	if err == nil || line <= 0 || errors.As(err, &exit) {
		return err
	}
	return fmt.Errorf("%s:%d: %w", bd.file, line, err)
}

// CacheEntries lists the build cache: step cache key -> id of the image the
// step made (`system df` describes them).
func (b *Builder) CacheEntries() (map[string]string, error) {
	return b.cache.entries()
}

// Prune removes build cache entries (`builder prune`, `system prune`): those
// whose image is gone, or with all every one, so the next build of those
// steps runs them again. It returns the entries removed. The images the
// steps made are images: `image prune` removes the unused ones.
func (b *Builder) Prune(ctx context.Context, all bool) ([]string, error) {
	ents, err := b.cache.entries()
	if err != nil {
		return nil, err
	}
	var gone []string
	for key, id := range ents {
		if !all {
			if _, err := b.be.ImageGet(ctx, id); err == nil || !errdefs.IsNotFound(err) {
				continue
			}
		}
		gone = append(gone, key)
	}
	sort.Strings(gone)
	if err := b.cache.remove(gone); err != nil {
		return nil, err
	}
	return gone, nil
}
