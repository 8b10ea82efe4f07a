package daemon

import (
	"context"
	"errors"
	"fmt"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/registry"
	regclient "github.com/skiff-dev/skiff/internal/registry"
	"io"
	"os"
	"path/filepath"

	"github.com/skiff-dev/skiff/internal/apiserver"
	"github.com/skiff-dev/skiff/internal/buildcontext"
	"github.com/skiff-dev/skiff/internal/builder"
	"github.com/skiff-dev/skiff/internal/engine"
)

// buildService serves POST /build: it opens the request's context (a tar
// unpacked under tmpRoot, or a directory of this host) and runs the
// Dockerfile builder on the engine.
type buildService struct {
	eng     *engine.Engine
	b       *builder.Builder
	cache   *buildcontext.HashCache
	tmpRoot string
}

// newBuildService wires the builder to eng. Contexts sent as tars are
// unpacked under <data-root>/tmp/build; whatever a crash left there is
// removed first.
func newBuildService(eng *engine.Engine, dataRoot string) (*buildService, error) {
	tmpRoot := filepath.Join(dataRoot, "tmp", "build")
	if err := os.RemoveAll(tmpRoot); err != nil {
		return nil, fmt.Errorf("clean build contexts: %w", err)
	}
	if err := os.MkdirAll(tmpRoot, 0o700); err != nil {
		return nil, fmt.Errorf("create build context dir: %w", err)
	}
	cache, err := buildcontext.NewHashCache(eng.MetaDB())
	if err != nil {
		return nil, err
	}
	b, err := builder.New(eng.BuildBackend(), eng.MetaDB())
	if err != nil {
		return nil, err
	}
	return &buildService{eng: eng, b: b, cache: cache, tmpRoot: tmpRoot}, nil
}

func (s *buildService) Build(ctx context.Context, req *apiserver.BuildRequest, out io.Writer) (string, error) {
	var bc *buildcontext.Context
	var err error
	if req.ContextDir != "" {
		bc, err = buildcontext.FromDir(req.ContextDir, s.cache)
	} else {
		bc, err = buildcontext.FromTar(ctx, req.Context, s.tmpRoot, s.cache)
	}
	if err != nil {
		return "", err
	}
	defer bc.Close()
	id, err := s.b.Build(ctx, bc, builder.Options{
		Dockerfile: req.Dockerfile, DockerfileContent: req.DockerfileContent,
		Tags: req.Tags, BuildArgs: req.BuildArgs, Target: req.Target,
		NoCache: req.NoCache, Pull: req.Pull, Labels: req.Labels,
		// Quiet is the apiserver's: it keeps the output and shows it only
		// when the build fails, as dockerd does.
		NetworkMode: req.NetworkMode, Platform: req.Platform, ForceRm: req.ForceRm, Rm: req.Rm,
		RegistryAuth: registryAuthFor(req.AuthConfigs),
	}, out)
	var exit *builder.ExitError
	if errors.As(err, &exit) {
		err = runExitError{err: err, code: exit.Code}
	}
	return id, err
}

// PruneCache removes build cache entries (POST /build/prune); with all it
// also forgets the context file hashes. They own no data of their own, so
// no space is reclaimed.
func (s *buildService) PruneCache(ctx context.Context, all bool) (build.CachePruneReport, error) {
	keys, err := s.b.Prune(ctx, all)
	if err == nil && all {
		err = s.cache.Clear()
	}
	return build.CachePruneReport{CachesDeleted: keys}, err
}

// CacheUsage describes the build cache for GET /system/df.
func (s *buildService) CacheUsage(ctx context.Context) ([]*build.CacheRecord, error) {
	ents, err := s.b.CacheEntries()
	if err != nil {
		return nil, err
	}
	return s.eng.BuildCacheUsage(ctx, ents)
}

// runExitError gives the apiserver a failing RUN's exit code, which it
// sends as errorDetail.code (the docker CLI exits with it).
type runExitError struct {
	err  error
	code int
}

func (e runExitError) Error() string { return e.err.Error() }
func (e runExitError) Unwrap() error { return e.err }
func (e runExitError) ExitCode() int { return e.code }

// registryAuthFor picks, for an image reference, the client's credentials
// for its registry (keys as docker's config.json has them: a host, maybe
// with a scheme; Docker Hub as https://index.docker.io/v1/) and encodes
// them as an X-Registry-Auth value for the pull.
func registryAuthFor(auths map[string]registry.AuthConfig) func(ref string) string {
	if len(auths) == 0 {
		return nil
	}
	return func(ref string) string {
		n, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			return ""
		}
		host := reference.Domain(n)
		keys := []string{host, "https://" + host, "http://" + host}
		if host == "docker.io" {
			keys = []string{"https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"}
		}
		for _, k := range keys {
			if a, ok := auths[k]; ok {
				return regclient.EncodeAuth(regclient.Auth{
					Username: a.Username, Password: a.Password, Auth: a.Auth, ServerAddress: a.ServerAddress,
					IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
				})
			}
		}
		return ""
	}
}
