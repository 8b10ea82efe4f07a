package cli

// `skiff build`: docker's legacy builder client (docker/cli's
// cli/command/image/build.go), plus skiff's local fast path: over the
// daemon's unix socket the context directory is named, not sent.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/cli/opts"
)

// Headers of the fast path (apiserver.HeaderContextDir and
// HeaderDockerfile; the CLI does not link the server).
const (
	headerContextDir = "X-Skiff-Context-Dir"
	headerContextID  = "X-Skiff-Context-Id"
	headerDockerfile = "X-Skiff-Dockerfile"
)

type buildOptions struct {
	tags       opts.ListOpts
	dockerfile string
	buildArgs  opts.ListOpts
	labels     opts.ListOpts
	target     string
	noCache    bool
	pull       bool
	quiet      bool
	iidFile    string
	network    string
	platform   string
	rm         bool
	forceRm    bool
	context    string
}

func (c *CLI) newBuildCommand() *cobra.Command {
	o := buildOptions{
		tags:      opts.NewListOpts(validateBuildTag),
		buildArgs: opts.NewListOpts(opts.ValidateEnv),
		labels:    opts.NewListOpts(opts.ValidateLabel),
	}
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | URL | -",
		Short: "Build an image from a Dockerfile",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.context = args[0]
			return c.runBuild(cmd.Context(), &o)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.VarP(&o.tags, "tag", "t", `Name and optionally a tag in the "name:tag" format`)
	f.StringVarP(&o.dockerfile, "file", "f", "", `Name of the Dockerfile (Default is "PATH/Dockerfile")`)
	f.Var(&o.buildArgs, "build-arg", "Set build-time variables")
	f.Var(&o.labels, "label", "Set metadata for an image")
	f.StringVar(&o.target, "target", "", "Set the target build stage to build.")
	f.BoolVar(&o.noCache, "no-cache", false, "Do not use cache when building the image")
	f.BoolVar(&o.pull, "pull", false, "Always attempt to pull a newer version of the image")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress the build output and print image ID on success")
	f.StringVar(&o.iidFile, "iidfile", "", "Write the image ID to the file")
	f.StringVar(&o.network, "network", "default", "Set the networking mode for the RUN instructions during build")
	f.StringVar(&o.platform, "platform", "", "Set platform if server is multi-platform capable")
	f.BoolVar(&o.rm, "rm", true, "Remove intermediate containers after a successful build")
	f.BoolVar(&o.forceRm, "force-rm", false, "Always remove intermediate containers")
	return cmd
}

func validateBuildTag(s string) (string, error) {
	if _, err := parseNormalizedNamed(s); err != nil {
		return "", err
	}
	return s, nil
}

// buildRequest is what runBuild sends: a body (a context tar, a Dockerfile
// with the fast path, or nothing) and its headers.
type buildRequest struct {
	body       io.Reader
	dockerfile string // the dockerfile query parameter
	remote     string
	headers    http.Header
	// fallback is the same request with the context as a tar, for a fast
	// path the daemon refuses (it sees other files at that path).
	fallback func() (*buildRequest, error)
}

func (c *CLI) runBuild(ctx context.Context, o *buildOptions) error {
	fromStdin := o.dockerfile == "-"
	if fromStdin && o.context == "-" {
		return errors.New("invalid argument: can't use stdin for both build context and dockerfile")
	}
	if o.iidFile != "" {
		// No stale file if this build fails.
		if err := os.Remove(o.iidFile); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("removing image ID file: %w", err)
		}
	}
	api, err := c.Client(ctx)
	if err != nil {
		return err
	}
	var req *buildRequest
	switch {
	case o.context == "-":
		req, err = c.stdinContext(o)
	case isURL(o.context):
		req = &buildRequest{remote: o.context, dockerfile: o.dockerfile}
	case isGitURL(o.context):
		return fmt.Errorf("unable to prepare context: git repositories are not supported as build contexts: %s", o.context)
	default:
		req, err = c.localContext(ctx, api, o)
	}
	if err != nil {
		return err
	}
	if c, ok := req.body.(io.Closer); ok {
		defer c.Close()
	}

	bo := client.ImageBuildOptions{
		Version:        build.BuilderV1,
		Tags:           o.tags.GetSlice(),
		SuppressOutput: o.quiet,
		NoCache:        o.noCache,
		Remove:         o.rm,
		ForceRemove:    o.forceRm,
		PullParent:     o.pull,
		NetworkMode:    o.network,
		Dockerfile:     req.dockerfile,
		RemoteContext:  req.remote,
		BuildArgs:      buildArgsMap(o.buildArgs.GetSlice()),
		Labels:         opts.ConvertKVStringsToMap(o.labels.GetSlice()),
		Target:         o.target,
		// Every registry's credentials, as docker sends them: the
		// Dockerfile decides which images get pulled.
		AuthConfigs: allRegistryAuths(),
	}
	if o.platform != "" {
		p, err := parsePlatform(o.platform)
		if err != nil {
			return err
		}
		bo.Platforms = []ocispec.Platform{p}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res, err := api.ImageBuild(withRequestHeaders(ctx, req.headers), req.body, bo)
	if err != nil && req.fallback != nil && cerrdefs.IsConflict(err) && strings.Contains(err.Error(), headerContextDir) {
		if req, err = req.fallback(); err != nil {
			return err
		}
		if c, ok := req.body.(io.Closer); ok {
			defer c.Close()
		}
		bo.Dockerfile = req.dockerfile
		res, err = api.ImageBuild(ctx, req.body, bo)
	}
	if err != nil {
		return err
	}
	defer res.Body.Close()

	var out io.Writer = c.out
	var buf *bytes.Buffer
	if o.quiet {
		buf = &bytes.Buffer{}
		out = buf
	}
	imageID, err := displayBuildStream(res.Body, out)
	if err != nil {
		if buf != nil {
			fmt.Fprint(c.err, buf.String())
		}
		return err
	}
	if o.quiet {
		// The daemon sends only the id then.
		imageID = strings.TrimSpace(buf.String())
		fmt.Fprintln(c.out, imageID)
	}
	if o.iidFile != "" {
		if imageID == "" {
			return fmt.Errorf("server did not provide an image ID. Cannot write %s", o.iidFile)
		}
		if err := os.WriteFile(o.iidFile, []byte(imageID), 0o666); err != nil {
			return err
		}
	}
	return nil
}

// displayBuildStream prints the build's messages as they come and returns
// the image id (the aux message). An error in the stream ends it: a failing
// RUN's exit code becomes the command's (as docker's legacy build does).
func displayBuildStream(in io.Reader, out io.Writer) (string, error) {
	if s, ok := out.(*OutStream); ok && s.IsTerminal() {
		// As docker's legacy build: a FROM's pull is drawn one line per
		// layer.
		imageID := ""
		err := renderJSONMessages(in, s, func(m jsonstream.Message) {
			var r build.Result
			if json.Unmarshal(*m.Aux, &r) == nil && r.ID != "" {
				imageID = r.ID
			}
		})
		var je *jsonstream.Error
		if errors.As(err, &je) {
			code := je.Code
			if code == 0 {
				code = 1
			}
			return imageID, StatusError{Status: je.Message, StatusCode: code}
		}
		return imageID, err
	}
	dec := json.NewDecoder(in)
	imageID := ""
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return imageID, nil
			}
			return imageID, err
		}
		switch {
		case m.Error != nil:
			code := m.Error.Code
			if code == 0 {
				code = 1
			}
			return imageID, StatusError{Status: m.Error.Message, StatusCode: code}
		case m.Aux != nil:
			var r build.Result
			if err := json.Unmarshal(*m.Aux, &r); err == nil {
				imageID = r.ID
			}
		case m.Stream != "":
			fmt.Fprint(out, m.Stream)
		case m.Progress != nil && (m.Progress.Current > 0 || m.Progress.Total > 0):
		case m.Status != "":
			if m.ID != "" {
				fmt.Fprintf(out, "%s: ", m.ID)
			}
			fmt.Fprintln(out, m.Status)
		}
	}
}

// stdinContext reads `build -`: a tar context, or a Dockerfile alone (then
// the context is empty), as docker decides.
func (c *CLI) stdinContext(o *buildOptions) (*buildRequest, error) {
	br := bufio.NewReaderSize(c.in, 64<<10)
	if isArchiveStart(br) {
		return &buildRequest{body: br, dockerfile: o.dockerfile}, nil
	}
	if o.dockerfile != "" {
		return nil, errors.New("unable to prepare context from STDIN: ambiguous Dockerfile source: both stdin and flag correspond to Dockerfiles")
	}
	df, err := io.ReadAll(br)
	if err != nil {
		return nil, fmt.Errorf("unable to prepare context from STDIN: %w", err)
	}
	return &buildRequest{body: bytes.NewReader(singleFileTar("Dockerfile", df)), dockerfile: "Dockerfile"}, nil
}

// localContext prepares a directory context: named (fast path) when the
// daemon is a skiff daemon on a unix socket, else tarred here with the
// .dockerignore applied, as the docker CLI sends it.
func (c *CLI) localContext(ctx context.Context, api *client.Client, o *buildOptions) (*buildRequest, error) {
	dir, err := contextDir(o.context)
	if err != nil {
		return nil, err
	}
	// -f is relative to the current directory, not to the context.
	var dfContent []byte
	rel := ""
	switch {
	case o.dockerfile == "-":
		if dfContent, err = io.ReadAll(c.in); err != nil {
			return nil, fmt.Errorf("read Dockerfile from stdin: %w", err)
		}
	default:
		rel, err = dockerfileRelPath(dir, o.dockerfile)
		if err != nil {
			return nil, fmt.Errorf("unable to prepare context: %w", err)
		}
		if strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			// Outside the context: sent along, as docker does.
			if dfContent, err = os.ReadFile(o.dockerfile); err != nil {
				return nil, fmt.Errorf("unable to open Dockerfile: %w", err)
			}
			rel = ""
		}
	}
	rel = filepath.ToSlash(rel)
	tarred := func() (*buildRequest, error) {
		excludes, err := readDockerignore(dir)
		if err != nil {
			return nil, err
		}
		excludes = trimBuildFilesFromExcludes(excludes, rel, dfContent != nil)
		df := rel
		var extra *extraFile
		if dfContent != nil {
			extra = &extraFile{name: ".dockerfile." + randomHex(10), data: dfContent}
			df = extra.name
		}
		return &buildRequest{body: tarContext(ctx, dir, excludes, extra), dockerfile: df}, nil
	}
	var st unix.Stat_t
	if c.isLocalSkiff(ctx, api) && unix.Stat(dir, &st) == nil {
		req := &buildRequest{dockerfile: rel, fallback: tarred, headers: http.Header{
			headerContextDir: {dir},
			headerContextID:  {fmt.Sprintf("%d:%d", st.Dev, st.Ino)},
		}}
		if dfContent != nil {
			req.body = bytes.NewReader(dfContent)
			req.headers.Set(headerDockerfile, "body")
		}
		return req, nil
	}
	return tarred()
}

// isLocalSkiff reports whether the client talks to a skiff daemon over a
// unix socket (so on this host: the daemon can read the context in place).
func (c *CLI) isLocalSkiff(ctx context.Context, api *client.Client) bool {
	if !strings.HasPrefix(api.DaemonHost(), "unix://") {
		return false
	}
	v, err := api.ServerVersion(ctx, client.ServerVersionOptions{})
	return err == nil && strings.HasPrefix(v.Platform.Name, "skiff")
}

type requestHeadersKey struct{}

// withRequestHeaders has the API client add h to the requests made with
// the returned context (see addRequestHeaders in newClient).
func withRequestHeaders(ctx context.Context, h http.Header) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return context.WithValue(ctx, requestHeadersKey{}, h)
}

// addRequestHeaders is the API client's request hook for withRequestHeaders.
func addRequestHeaders(r *http.Request) error {
	if h, ok := r.Context().Value(requestHeadersKey{}).(http.Header); ok {
		for k, v := range h {
			r.Header[k] = v
		}
	}
	return nil
}

// buildArgsMap is docker's ConvertKVStringsToMapWithNil: "K" without a
// value (and none in the environment) is nil, so the daemon can tell it
// from an empty value.
func buildArgsMap(values []string) map[string]*string {
	out := make(map[string]*string, len(values))
	for _, kv := range values {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			out[k] = nil
			continue
		}
		out[k] = &v
	}
	return out
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

func isGitURL(s string) bool {
	return strings.HasPrefix(s, "git://") || strings.HasPrefix(s, "git@") || strings.HasPrefix(s, "github.com/")
}
