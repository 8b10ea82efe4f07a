package apiserver

// POST /build: Docker's legacy builder API (the one `DOCKER_BUILDKIT=0
// docker build` speaks). The Dockerfile builder sits behind BuildBackend;
// this file only reads the request and writes the JSON stream.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/moby/moby/api/types/registry"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/archive"
	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/image"
)

// Headers of skiff's local fast path: the skiff CLI, talking to the daemon
// over its unix socket, names the context directory instead of sending it
// as a tar. The daemon then reads the directory in place, so a rebuild of
// an unchanged context reads almost nothing. Only a unix socket client is
// on the daemon's host (and needs root-equivalent access to the socket), so
// the header is refused on other listeners.
const (
	HeaderContextDir = "X-Skiff-Context-Dir"
	// HeaderContextID is "DEV:INO" of the directory as the client sees
	// it. A client in another mount namespace (a CLI in a container with
	// the socket bound in) may name a path that is other files here: the
	// daemon refuses (Conflict) when the ids differ, and the client sends
	// a tar instead.
	HeaderContextID = "X-Skiff-Context-Id"
	// HeaderDockerfile "body": the request body is the Dockerfile (-f - or
	// a Dockerfile outside the context directory), not a context.
	HeaderDockerfile = "X-Skiff-Dockerfile"
)

// maxDockerfileSize bounds a Dockerfile read whole into memory (sent in the
// body with the fast path, or downloaded from a remote URL).
const maxDockerfileSize = 8 << 20

// BuildBackend runs Dockerfile builds. It is separate from Backend: the
// engine knows nothing of Dockerfiles; the daemon wires the builder in.
type BuildBackend interface {
	// Build builds req and returns the id of the image. Progress goes to out
	// as it comes, each Write one message. A failing RUN step's error
	// carries the step's exit code (ExitCode() int).
	Build(ctx context.Context, req *BuildRequest, out io.Writer) (imageID string, err error)
	// PruneCache removes build cache entries: those whose image is gone,
	// or every one with all (POST /build/prune).
	PruneCache(ctx context.Context, all bool) (build.CachePruneReport, error)
	// CacheUsage describes the build cache entries (GET /system/df).
	CacheUsage(ctx context.Context) ([]*build.CacheRecord, error)
}

// BuildRequest is a POST /build request, read.
type BuildRequest struct {
	// The context: a tar stream (plain or compressed), or ContextDir, a
	// directory on the daemon's host (the fast path). One of them is set.
	Context    io.Reader
	ContextDir string
	// DockerfileContent, when set, is the Dockerfile, instead of the file
	// Dockerfile names in the context.
	DockerfileContent []byte

	Dockerfile  string // path in the context; "" = "Dockerfile"
	Tags        []string
	BuildArgs   map[string]*string
	Labels      map[string]string
	Target      string
	NetworkMode string
	Platform    string
	NoCache     bool
	Pull        bool
	Quiet       bool
	Rm          bool // remove intermediate containers after a successful build (default true)
	ForceRm     bool // and after a failed one
	// AuthConfigs are the client's registry credentials (X-Registry-Config),
	// by registry (config.json keys), for pulls during the build.
	AuthConfigs map[string]registry.AuthConfig
}

// exitCoder is an error that carries a process exit code (a failing RUN).
type exitCoder interface{ ExitCode() int }

// build serves POST /build.
func (s *Server) build(w *respWriter, r *http.Request) error {
	if s.builds == nil {
		return errdefs.NotImplemented("builds are not supported by this daemon")
	}
	req, err := parseBuildQuery(r.URL.Query())
	if err != nil {
		return err
	}
	req.AuthConfigs = decodeRegistryConfig(r.Header.Get("X-Registry-Config"))
	ctx := r.Context()
	switch {
	case r.Header.Get(HeaderContextDir) != "":
		if err := fastPathContext(r, req); err != nil {
			return err
		}
	case r.URL.Query().Get("remote") != "":
		body, err := s.downloadContext(ctx, r.URL.Query().Get("remote"), req)
		if err != nil {
			return err
		}
		defer body.Close()
	default:
		req.Context = r.Body
	}

	js := newJSONStream(w)
	out := &buildOutput{js: js}
	if req.Quiet {
		// As dockerd: the output is kept and shown only if the build fails.
		out.quiet = &bytes.Buffer{}
	}
	id, err := s.builds.Build(ctx, req, out)
	if err != nil {
		if out.quiet != nil && out.quiet.Len() > 0 {
			js.send(jsonstream.Message{Stream: out.quiet.String()})
		}
		return finishBuild(js, err)
	}
	if req.Quiet {
		js.send(jsonstream.Message{Stream: id + "\n"})
		return nil
	}
	// The id for docker build --iidfile (the builder has printed
	// "Successfully built/tagged" already).
	aux, _ := json.Marshal(build.Result{ID: id})
	raw := json.RawMessage(aux)
	js.send(jsonstream.Message{Aux: &raw})
	return nil
}

// finishBuild writes a build error into the stream once it has started, and
// always for a failing RUN (the docker CLI reads its exit code from
// errorDetail.code and exits with it); before any output other errors are
// the reply's HTTP status, as with dockerd.
func finishBuild(js *jsonStream, err error) error {
	code := 1
	var ec exitCoder
	if errors.As(err, &ec) && ec.ExitCode() != 0 {
		code = ec.ExitCode()
	} else if !js.w.started() {
		// Nothing streamed yet (a bad Dockerfile, a missing base image):
		// an HTTP error, which clients show as dockerd's "Error response
		// from daemon: ...".
		return err
	}
	if !js.w.started() {
		js.w.Header()["Content-Type"] = hdrJSON
		js.w.WriteHeader(http.StatusOK)
	}
	_ = js.enc.Encode(streamError{Detail: jsonstream.Error{Code: code, Message: err.Error()}, Message: err.Error()})
	js.w.Flush()
	return nil
}

// buildPrune is POST /build/prune (`builder prune`, and a step of `docker
// system prune`).
func (s *Server) buildPrune(w *respWriter, r *http.Request) error {
	if s.builds == nil {
		return errdefs.NotImplemented("builds are not supported by this daemon")
	}
	rep, err := s.builds.PruneCache(r.Context(), boolValue(r.URL.Query(), "all"))
	if err != nil {
		return err
	}
	if rep.CachesDeleted == nil {
		rep.CachesDeleted = []string{}
	}
	return writeJSON(w, http.StatusOK, rep)
}

// decodeRegistryConfig reads X-Registry-Config: base64url JSON of registry
// key -> credentials. Like dockerd, a header it cannot read means no
// credentials, not a failed build.
func decodeRegistryConfig(h string) map[string]registry.AuthConfig {
	if h == "" {
		return nil
	}
	raw, err := base64.URLEncoding.DecodeString(h)
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(h); err != nil {
			return nil
		}
	}
	var m map[string]registry.AuthConfig
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

func parseBuildQuery(q url.Values) (*BuildRequest, error) {
	switch v := q.Get("version"); v {
	case "", string(build.BuilderV1):
	case string(build.BuilderBuildKit):
		return nil, errdefs.NotImplemented("BuildKit is not supported by skiff: use the legacy builder (DOCKER_BUILDKIT=0 docker build ...)")
	default:
		return nil, invalidf("unsupported builder version %q", v)
	}
	if boolValue(q, "squash") {
		return nil, invalidf("squash is only supported with experimental mode")
	}
	req := &BuildRequest{
		Dockerfile:  q.Get("dockerfile"),
		Tags:        q["t"],
		Target:      q.Get("target"),
		NetworkMode: q.Get("networkmode"),
		Platform:    q.Get("platform"),
		NoCache:     boolValue(q, "nocache"),
		Pull:        boolValue(q, "pull"),
		Quiet:       boolValue(q, "q"),
		Rm:          boolDefault(q, "rm", true),
		ForceRm:     boolValue(q, "forcerm"),
	}
	for _, t := range req.Tags {
		n, err := image.ParseReference(t)
		if err != nil {
			return nil, err
		}
		if _, ok := n.(interface{ Digest() digest.Digest }); ok {
			return nil, invalidf("invalid tag %q: refusing to create a tag with a digest reference", t)
		}
	}
	if v := q.Get("buildargs"); v != "" {
		if err := json.Unmarshal([]byte(v), &req.BuildArgs); err != nil {
			return nil, invalidf("invalid buildargs: %v", err)
		}
	}
	if v := q.Get("labels"); v != "" {
		if err := json.Unmarshal([]byte(v), &req.Labels); err != nil {
			return nil, invalidf("invalid labels: %v", err)
		}
	}
	return req, nil
}

// fastPathContext takes the context directory (and maybe the Dockerfile)
// of a skiff CLI on this host.
func fastPathContext(r *http.Request, req *BuildRequest) error {
	addr, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if addr == nil || addr.Network() != "unix" {
		return errdefs.Forbidden("%s is only accepted on the daemon's unix socket", HeaderContextDir)
	}
	dir := r.Header.Get(HeaderContextDir)
	if !filepath.IsAbs(dir) {
		return invalidf("%s must be an absolute path: %q", HeaderContextDir, dir)
	}
	req.ContextDir = filepath.Clean(dir)
	var st unix.Stat_t
	if err := unix.Stat(req.ContextDir, &st); err != nil {
		return errdefs.Conflict("%s %s: %v", HeaderContextDir, dir, err)
	}
	if id := r.Header.Get(HeaderContextID); id != "" && id != fmt.Sprintf("%d:%d", st.Dev, st.Ino) {
		return errdefs.Conflict("%s %s is not the directory the client sees (another mount namespace?)", HeaderContextDir, dir)
	}
	if r.Header.Get(HeaderDockerfile) == "body" {
		b, err := readDockerfile(r.Body)
		if err != nil {
			return err
		}
		req.DockerfileContent = b
	}
	return nil
}

func readDockerfile(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxDockerfileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read Dockerfile: %w", err)
	}
	if len(b) > maxDockerfileSize {
		return nil, invalidf("the Dockerfile is larger than %d bytes", maxDockerfileSize)
	}
	return b, nil
}

// downloadContext fetches remote, an http(s) URL of a tar (the context) or
// of a Dockerfile alone (then the context is empty), as dockerd does.
// Git repositories are not supported.
func (s *Server) downloadContext(ctx context.Context, remote string, req *BuildRequest) (io.ReadCloser, error) {
	u, err := url.Parse(remote)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.HasSuffix(u.Path, ".git") || strings.Contains(u.Fragment, ":") {
		return nil, errdefs.NotImplemented("unsupported remote context %q: skiff builds from an http(s) URL of a tar archive or a Dockerfile (git repositories are not supported)", remote)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, remote, nil)
	if err != nil {
		return nil, invalidf("remote context %q: %v", remote, err)
	}
	resp, err := s.httpClient().Do(hreq)
	if err != nil {
		return nil, errdefs.Unavailable("download remote context %s: %v", remote, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, errdefs.Unavailable("download remote context %s: %s", remote, resp.Status)
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	if isArchive(br) {
		req.Context = br
		return resp.Body, nil
	}
	b, err := readDockerfile(br)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	req.DockerfileContent = b
	req.Context = bytes.NewReader(emptyTar)
	return io.NopCloser(nil), nil
}

// emptyTar is a tar without entries: an empty context.
var emptyTar = make([]byte, 1024)

// isArchive reports whether the stream starts with a compressed stream or
// a tar header (as docker's isArchive does).
func isArchive(br *bufio.Reader) bool {
	head, _ := br.Peek(512)
	if archive.DetectCompression(head) != archive.Uncompressed {
		return true
	}
	if len(head) < 512 {
		return false
	}
	_, err := tar.NewReader(bytes.NewReader(head)).Next()
	return err == nil
}

func (s *Server) httpClient() *http.Client {
	if s.remoteClient != nil {
		return s.remoteClient
	}
	return http.DefaultClient
}

// buildOutput turns the builder's writes into stream messages, or keeps
// them (quiet). The builder and a RUN step's output may write from
// different goroutines.
type buildOutput struct {
	mu    sync.Mutex
	js    *jsonStream
	quiet *bytes.Buffer
}

func (o *buildOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.quiet != nil {
		return o.quiet.Write(p)
	}
	o.js.send(jsonstream.Message{Stream: string(p)})
	return len(p), nil
}

// WriteProgress sends a progress message (a FROM's pull) as it is; a quiet
// build keeps its status as a line, without the byte counts.
func (o *buildOutput) WriteProgress(m jsonstream.Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.quiet != nil {
		if m.Progress != nil && (m.Progress.Current > 0 || m.Progress.Total > 0) {
			return
		}
		if m.ID != "" {
			o.quiet.WriteString(m.ID + ": ")
		}
		o.quiet.WriteString(m.Status + "\n")
		return
	}
	o.js.send(m)
}

var _ engine.ProgressWriter = (*buildOutput)(nil)
