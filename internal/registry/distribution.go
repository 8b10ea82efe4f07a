package registry

import (
	"context"
	"encoding/json"
	"io"
	"strings"

	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Distribution is what GET /distribution/{name}/json answers: the
// descriptor of what the reference names in its registry (an index or a
// manifest) and the platforms it has.
type Distribution struct {
	Descriptor ocispec.Descriptor
	Platforms  []ocispec.Platform
}

// Inspect asks n's registry (mirrors first for docker.io names) what n
// names, as dockerd's distribution route does: a tag is resolved to the
// digest the registry gives; the platforms are an index's entries, or a
// manifest's config's os and architecture. Nothing is stored.
func (c *Client) Inspect(ctx context.Context, n reference.Named, auth Auth) (*Distribution, error) {
	nn := Named{Named: n, Host: reference.Domain(n), Path: reference.Path(n)}
	if _, ok := n.(reference.Canonical); !ok {
		nn.Named = reference.TagNameOnly(n)
	}
	return firstRepo(ctx, c, nn, resolveCaps(nn), func(ep endpoint) (*Distribution, error) {
		return c.inspectIn(ctx, ep, nn, auth)
	})
}

func (c *Client) inspectIn(ctx context.Context, ep endpoint, n Named, auth Auth) (*Distribution, error) {
	repo := ep.repo
	opts := c.remoteOpts(ctx, auth, ep.rt)
	raw, got, mt, err := c.getTop(repo, n, opts)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(mt, mediaTypeSchema1) {
		return nil, errdefs.Invalid("%s: schema 1 manifests are not supported", reference.FamiliarString(n))
	}
	out := &Distribution{Descriptor: ocispec.Descriptor{MediaType: mt, Digest: got, Size: int64(len(raw))}}
	switch mt {
	case ocispec.MediaTypeImageIndex, MediaTypeDockerManifestList:
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return nil, errdefs.Invalid("%s: decode index: %v", reference.FamiliarString(n), err)
		}
		// Every entry, as dockerd lists them (attestations show as
		// unknown/unknown).
		out.Platforms = []ocispec.Platform{}
		for _, m := range idx.Manifests {
			var p ocispec.Platform
			if m.Platform != nil {
				p = ocispec.Platform{Architecture: m.Platform.Architecture, OS: m.Platform.OS,
					OSVersion: m.Platform.OSVersion, OSFeatures: m.Platform.OSFeatures, Variant: m.Platform.Variant}
			}
			out.Platforms = append(out.Platforms, p)
		}
	case ocispec.MediaTypeImageManifest, MediaTypeDockerManifest:
		var m ocispec.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, errdefs.Invalid("%s: decode manifest: %v", reference.FamiliarString(n), err)
		}
		// The config's platform fields; a config that cannot be read
		// leaves the list empty, as with dockerd.
		if m.Config.Digest.Validate() == nil && m.Config.Size <= MaxManifestSize {
			img := &Image{repo: repo, opts: opts}
			if rc, err := img.Blob(ctx, m.Config); err == nil {
				b, err := io.ReadAll(rc)
				rc.Close()
				var p ocispec.Platform
				if err == nil && json.Unmarshal(b, &p) == nil && (p.OS != "" || p.Architecture != "") {
					out.Platforms = []ocispec.Platform{p}
				}
			}
		}
	}
	return out, nil
}
