package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Docker's manifest media types (OCI's are in ocispec).
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaTypeSchema1            = "application/vnd.docker.distribution.manifest.v1"
)

// MaxManifestSize bounds manifests, indexes and configs read into memory.
const MaxManifestSize = 8 << 20

// Image is a resolved image: its manifest and config, verified against
// their digests, and where to fetch its layers.
type Image struct {
	Name Named
	// Digest is what the reference resolved to: the index's digest for a
	// multi-arch image, else the manifest's. Docker records it as the
	// repo digest.
	Digest         digest.Digest
	ManifestDigest digest.Digest
	Manifest       []byte
	MediaType      string
	Config         []byte
	ConfigDigest   digest.Digest
	Layers         []ocispec.Descriptor
	Platform       ocispec.Platform

	repo name.Repository
	opts []remote.Option
}

// ParsePlatform parses "os[/arch[/variant]]"; "" is this machine.
func ParsePlatform(s string) (ocispec.Platform, error) {
	p := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm" {
		p.Variant = "v7"
	}
	if s == "" {
		return p, nil
	}
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || parts[0] == "" {
		return p, errdefs.Invalid("invalid platform %q: want os[/arch[/variant]]", s)
	}
	p = ocispec.Platform{OS: parts[0], Architecture: runtime.GOARCH}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	if p.Architecture == "arm64" && p.Variant == "v8" {
		p.Variant = ""
	}
	return p, nil
}

func platformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Resolve fetches the manifest ref names (NAME[:TAG|@DIGEST]), choosing
// platform's entry from an index, and the image's config. Everything is
// checked against its digest; schema 1 manifests are refused.
func (c *Client) Resolve(ctx context.Context, ref string, platform ocispec.Platform, auth Auth) (*Image, error) {
	n, err := Parse(ref)
	if err != nil {
		return nil, err
	}
	return firstRepo(ctx, c, n, resolveCaps(n), func(ep endpoint) (*Image, error) {
		return c.resolveIn(ctx, ep, n, platform, auth)
	})
}

// resolveCaps is what a host needs to fetch what n names: by digest, pull;
// by tag also resolve (trusting the host with the tag's digest).
func resolveCaps(n Named) Capability {
	if _, ok := n.Named.(reference.Digested); ok {
		return CapPull
	}
	return CapPull | CapResolve
}

// firstRepo calls fn with each endpoint n can be reached at for caps
// (configured hosts and mirrors first) until one succeeds; the error is
// the last one.
func firstRepo[T any](ctx context.Context, c *Client, n Named, caps Capability, fn func(endpoint) (T, error)) (T, error) {
	var zero T
	eps, err := c.endpoints(n, caps)
	if err != nil {
		return zero, err
	}
	lastErr := err
	for _, ep := range eps {
		v, err := fn(ep)
		if err == nil {
			return v, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return zero, lastErr
}

// getTop fetches what n names in repo (an index or a manifest), checked
// against n's digest when it has one: its bytes, digest and media type
// (sniffed when the registry gives none).
func (c *Client) getTop(repo name.Repository, n Named, opts []remote.Option) ([]byte, digest.Digest, string, error) {
	var r name.Reference
	var want digest.Digest
	if d, ok := n.Named.(reference.Digested); ok {
		want = d.Digest()
		r = repo.Digest(want.String())
	} else if t, ok := n.Named.(reference.Tagged); ok {
		r = repo.Tag(t.Tag())
	} else {
		r = repo.Tag("latest")
	}
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return nil, "", "", c.notFound(err, n)
	}
	raw, got, err := checkManifest(desc.Manifest, want)
	if err != nil {
		return nil, "", "", err
	}
	mt := string(desc.MediaType)
	if mt == "" || strings.HasPrefix(mt, "text/plain") {
		mt = sniffMediaType(raw)
	}
	return raw, got, mt, nil
}

func (c *Client) resolveIn(ctx context.Context, ep endpoint, n Named, platform ocispec.Platform, auth Auth) (*Image, error) {
	repo := ep.repo
	opts := c.remoteOpts(ctx, auth, ep.rt)
	raw, top, mt, err := c.getTop(repo, n, opts)
	if err != nil {
		return nil, err
	}
	img := &Image{Name: n, Digest: top, repo: repo, opts: opts}
	if mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList {
		m, err := pickFromIndex(raw, platform)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", reference.FamiliarString(n), err)
		}
		d2, err := remote.Get(repo.Digest(m.Digest.String()), opts...)
		if err != nil {
			return nil, c.notFound(err, n)
		}
		if raw, _, err = checkManifest(d2.Manifest, m.Digest); err != nil {
			return nil, err
		}
		mt = m.MediaType
		if mt == "" {
			mt = sniffMediaType(raw)
		}
	}
	img.Manifest, img.MediaType = raw, mt
	img.ManifestDigest = digest.FromBytes(raw)
	m, err := decodeManifest(raw, mt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", reference.FamiliarString(n), err)
	}
	img.Layers = m.Layers
	img.ConfigDigest = m.Config.Digest
	rc, err := img.Blob(ctx, m.Config)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if img.Config, err = io.ReadAll(rc); err != nil {
		return nil, err
	}
	cfg, err := decodeConfig(img.Config, len(m.Layers))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", reference.FamiliarString(n), err)
	}
	img.Platform = cfg.Platform
	return img, nil
}

// pickFromIndex decodes an index (or Docker manifest list) and picks the
// entry for platform.
func pickFromIndex(raw []byte, platform ocispec.Platform) (ocispec.Descriptor, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return ocispec.Descriptor{}, errdefs.Invalid("decode index: %v", err)
	}
	m, ok := pick(idx.Manifests, platform)
	if !ok {
		return ocispec.Descriptor{}, errdefs.NotFound("no matching manifest for %s in the manifest list entries", platformString(platform))
	}
	return m, nil
}

// decodeManifest decodes an image manifest of media type mt and checks
// what a pull relies on: the type, well-formed digests, a config small
// enough to read into memory.
func decodeManifest(raw []byte, mt string) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	if strings.HasPrefix(mt, mediaTypeSchema1) {
		return m, errdefs.Invalid("schema 1 manifests are not supported")
	}
	if mt != ocispec.MediaTypeImageManifest && mt != MediaTypeDockerManifest {
		return m, errdefs.Invalid("unsupported manifest media type %q", mt)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, errdefs.Invalid("decode manifest: %v", err)
	}
	if err := m.Config.Digest.Validate(); err != nil {
		return m, errdefs.Invalid("manifest: config digest: %v", err)
	}
	for _, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil {
			return m, errdefs.Invalid("manifest: layer digest: %v", err)
		}
	}
	if m.Config.Size > MaxManifestSize {
		return m, errdefs.Invalid("config of %d bytes is too large", m.Config.Size)
	}
	return m, nil
}

// decodeConfig decodes an image config and checks it against the
// manifest's number of layers.
func decodeConfig(raw []byte, layers int) (ocispec.Image, error) {
	var cfg ocispec.Image
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return cfg, errdefs.Invalid("decode image config: %v", err)
	}
	if len(cfg.RootFS.DiffIDs) != layers {
		return cfg, errdefs.Invalid("the config lists %d layers, the manifest %d", len(cfg.RootFS.DiffIDs), layers)
	}
	return cfg, nil
}

func (c *Client) notFound(err error, n Named) error {
	err = wrapErr(err, "pull "+reference.FamiliarString(n))
	switch errdefs.KindOf(err) {
	case errdefs.KindNotFound:
		if _, ok := n.Named.(reference.Digested); !ok {
			if t, ok := n.Named.(reference.Tagged); ok {
				return errdefs.NotFound("manifest for %s:%s not found: manifest unknown: manifest unknown", reference.FamiliarName(n), t.Tag())
			}
		}
	case errdefs.KindForbidden:
		return errdefs.NotFound("pull access denied for %s, repository does not exist or may require 'docker login': %v", reference.FamiliarName(n), err)
	}
	return err
}

// checkManifest verifies raw against want (when set) and returns its digest.
func checkManifest(raw []byte, want digest.Digest) ([]byte, digest.Digest, error) {
	if len(raw) > MaxManifestSize {
		return nil, "", errdefs.Invalid("manifest of %d bytes is too large", len(raw))
	}
	alg := digest.SHA256
	if want != "" {
		alg = want.Algorithm()
		if !alg.Available() {
			return nil, "", errdefs.Invalid("unsupported digest algorithm %s", alg)
		}
	}
	got := alg.FromBytes(raw)
	if want != "" && got != want {
		return nil, "", errdefs.Invalid("manifest verification failed: expected %s, got %s", want, got)
	}
	return raw, got, nil
}

func sniffMediaType(raw []byte) string {
	var probe struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Manifests     []json.RawMessage `json:"manifests"`
	}
	json.Unmarshal(raw, &probe)
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.SchemaVersion == 1:
		return mediaTypeSchema1 + "+json"
	case probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	}
	return ocispec.MediaTypeImageManifest
}

// pick chooses the entry of an index for platform: os and architecture
// must match; a requested variant must match too, and without one the
// first entry for the architecture wins. Attestation entries are skipped.
func pick(ms []ocispec.Descriptor, p ocispec.Platform) (ocispec.Descriptor, bool) {
	var best ocispec.Descriptor
	found := false
	for _, m := range ms {
		if m.Platform == nil || m.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			continue
		}
		mp := m.Platform
		if mp.OS != p.OS || mp.Architecture != p.Architecture {
			continue
		}
		if p.Variant != "" && mp.Variant != "" && mp.Variant != p.Variant {
			continue
		}
		if mp.Variant == p.Variant {
			return m, true
		}
		if !found {
			best, found = m, true
		}
	}
	return best, found
}

// Blob streams the blob d from the image's repository. The reader checks
// size and digest: its last Read returns an error instead of io.EOF when
// they don't match, so a consumer that reads to the end never takes a
// corrupt blob for a good one.
func (img *Image) Blob(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	if !d.Digest.Algorithm().Available() {
		return nil, errdefs.Invalid("unsupported digest %s", d.Digest)
	}
	l, err := remote.Layer(img.repo.Digest(d.Digest.String()), append(img.opts, remote.WithContext(ctx))...)
	if err != nil {
		return nil, wrapErr(err, "fetch blob "+d.Digest.String())
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, wrapErr(err, "fetch blob "+d.Digest.String())
	}
	// go-containerregistry hashes what it hands out and fails the last
	// read on a mismatch (verify.ReadCloser): this Verifier only checks
	// the size the manifest gives and keeps the errors' kind, rather than
	// hashing the same bytes a second time.
	return &Verifier{rc: rc, want: d.Digest, size: d.Size}, nil
}

// Verifier wraps a blob stream and checks its size and digest as it is
// read.
type Verifier struct {
	rc   io.ReadCloser
	want digest.Digest
	size int64 // -1 or 0: unknown
	n    int64
	h    hash.Hash // nil: the reader below verifies the digest itself
}

// NewVerifier checks rc against want (and size when > 0).
func NewVerifier(rc io.ReadCloser, want digest.Digest, size int64) *Verifier {
	return &Verifier{rc: rc, want: want, size: size, h: want.Algorithm().Hash()}
}

// ErrVerify is the error a Verifier returns (wrapped) on a mismatch.
var ErrVerify = errors.New("content verification failed")

func (v *Verifier) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	if v.h != nil {
		v.h.Write(p[:n])
	}
	v.n += int64(n)
	if v.size > 0 && v.n > v.size {
		return n, errdefs.Wrap(errdefs.KindInvalid, fmt.Errorf("%w: %s: more than the %d bytes the manifest says", ErrVerify, v.want, v.size))
	}
	if errors.Is(err, io.EOF) {
		if v.size > 0 && v.n != v.size {
			return n, errdefs.Wrap(errdefs.KindInvalid, fmt.Errorf("%w: %s: got %d bytes, the manifest says %d", ErrVerify, v.want, v.n, v.size))
		}
		if v.h == nil {
			return n, err
		}
		if got := digest.NewDigest(v.want.Algorithm(), v.h); got != v.want {
			return n, errdefs.Wrap(errdefs.KindInvalid, fmt.Errorf("%w: expected %s, got %s", ErrVerify, v.want, got))
		}
	} else if err != nil && !errors.Is(err, ErrVerify) {
		// ggcr's own verifier reports mismatches too; keep the kind.
		if strings.Contains(err.Error(), "mismatch") || strings.Contains(err.Error(), "verif") {
			return n, errdefs.Wrap(errdefs.KindInvalid, fmt.Errorf("%w: %s: %v", ErrVerify, v.want, err))
		}
	}
	return n, err
}

// Close closes the stream.
func (v *Verifier) Close() error { return v.rc.Close() }

// Tags lists the tags of the repository ref names (its tag, if any, is
// ignored), sorted as the registry returns them: `pull --all-tags`.
func (c *Client) Tags(ctx context.Context, ref string, auth Auth) ([]string, error) {
	n, err := Parse(ref)
	if err != nil {
		return nil, err
	}
	return firstRepo(ctx, c, n, CapPull|CapResolve, func(ep endpoint) ([]string, error) {
		tags, err := remote.List(ep.repo, c.remoteOpts(ctx, auth, ep.rt)...)
		if err != nil {
			return nil, c.notFound(err, n)
		}
		return tags, nil
	})
}
