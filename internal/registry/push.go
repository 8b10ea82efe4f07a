package registry

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// PushLayer is one layer of an image to push.
type PushLayer struct {
	Desc   ocispec.Descriptor
	DiffID digest.Digest
	Open   func() (io.ReadCloser, error)
	// MountFrom names another repository of the same registry
	// ("host/path") that holds the blob, to mount it from instead of
	// uploading it.
	MountFrom string
}

// PushImage is an image to push: the manifest as it is to be stored (its
// digest is the pushed digest), the config and the layers, bottom first.
type PushImage struct {
	Manifest  []byte
	MediaType string
	Config    []byte
	Layers    []PushLayer
}

// PushEvent tells how one layer's push goes.
type PushEvent struct {
	Digest  digest.Digest
	Status  string // "Pushing", "Pushed", "Layer already exists", "Mounted from NAME"
	Current int64
	Total   int64
}

// Push uploads img to ref (NAME[:TAG]): blobs the registry has are skipped,
// blobs another repository of the same registry holds are mounted, the rest
// are uploaded in parallel; the manifest goes last. It returns the
// manifest's digest.
func (c *Client) Push(ctx context.Context, ref string, img PushImage, auth Auth, progress func(PushEvent)) (digest.Digest, error) {
	n, err := Parse(ref)
	if err != nil {
		return "", err
	}
	if _, ok := n.Named.(reference.Digested); ok {
		return "", errdefs.Invalid("cannot push a digest reference: %s", ref)
	}
	// The first host of the configuration that may be pushed to (the
	// namespace's own registry without one), as containerd pushes.
	eps, err := c.endpoints(n, CapPush)
	if err != nil {
		return "", err
	}
	repo := eps[0].repo
	if progress == nil {
		progress = func(PushEvent) {}
	}
	core := &pushCore{img: img, progress: progress, opened: map[digest.Digest]bool{}}
	base, err := partial.CompressedToImage(core)
	if err != nil {
		return "", err
	}
	vimg := &pushImage{Image: base, core: core, ns: n.Host, reg: repo.Registry}
	tag := "latest"
	if t, ok := n.Named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	if err := remote.Write(repo.Tag(tag), vimg, c.remoteOpts(ctx, auth, eps[0].rt)...); err != nil {
		return "", wrapErr(err, "push "+reference.FamiliarString(n))
	}
	for _, l := range img.Layers {
		if core.wasOpened(l.Desc.Digest) {
			progress(PushEvent{Digest: l.Desc.Digest, Status: "Pushed"})
		} else if l.MountFrom != "" {
			_, path, _ := cutHost(l.MountFrom)
			progress(PushEvent{Digest: l.Desc.Digest, Status: "Mounted from " + path})
		} else {
			progress(PushEvent{Digest: l.Desc.Digest, Status: "Layer already exists"})
		}
	}
	return digest.FromBytes(img.Manifest), nil
}

func cutHost(repo string) (string, string, bool) {
	n, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return "", repo, false
	}
	return reference.Domain(n), reference.Path(n), true
}

type pushImage struct {
	v1.Image
	core *pushCore
	ns   string        // the namespace pushed to
	reg  name.Registry // where its pushes go
}

// Layers wraps layers that can be mounted so remote.Write tries a
// cross-repository mount before uploading.
func (p *pushImage) Layers() ([]v1.Layer, error) {
	var out []v1.Layer
	for i := range p.core.img.Layers {
		pl := &p.core.img.Layers[i]
		l, err := partial.CompressedToLayer(&pushLayer{core: p.core, l: pl})
		if err != nil {
			return nil, err
		}
		if pl.MountFrom != "" {
			// Mounts come from the same namespace, at the host the push
			// goes to.
			if host, path, ok := cutHost(pl.MountFrom); ok && host == p.ns {
				repo := p.reg.Repo(path)
				l = &remote.MountableLayer{Layer: l, Reference: repo.Digest(pl.Desc.Digest.String())}
			}
		}
		out = append(out, l)
	}
	return out, nil
}

type pushCore struct {
	img      PushImage
	progress func(PushEvent)
	mu       sync.Mutex
	opened   map[digest.Digest]bool
}

func (c *pushCore) wasOpened(d digest.Digest) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened[d]
}

func (c *pushCore) RawConfigFile() ([]byte, error) { return c.img.Config, nil }
func (c *pushCore) RawManifest() ([]byte, error)   { return c.img.Manifest, nil }
func (c *pushCore) MediaType() (types.MediaType, error) {
	return types.MediaType(c.img.MediaType), nil
}

func (c *pushCore) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for i := range c.img.Layers {
		if c.img.Layers[i].Desc.Digest.String() == h.String() {
			return &pushLayer{core: c, l: &c.img.Layers[i]}, nil
		}
	}
	return nil, fmt.Errorf("push: no layer %s in the image", h)
}

type pushLayer struct {
	core *pushCore
	l    *PushLayer
}

func (l *pushLayer) Digest() (v1.Hash, error) { return v1.NewHash(l.l.Desc.Digest.String()) }
func (l *pushLayer) DiffID() (v1.Hash, error) {
	if l.l.DiffID == "" {
		return v1.Hash{}, fmt.Errorf("push: no diff id for %s", l.l.Desc.Digest)
	}
	return v1.NewHash(l.l.DiffID.String())
}
func (l *pushLayer) Size() (int64, error) { return l.l.Desc.Size, nil }
func (l *pushLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(l.l.Desc.MediaType), nil
}

func (l *pushLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.l.Open()
	if err != nil {
		return nil, err
	}
	l.core.mu.Lock()
	l.core.opened[l.l.Desc.Digest] = true
	l.core.mu.Unlock()
	return &countingReader{rc: rc, total: l.l.Desc.Size, d: l.l.Desc.Digest, progress: l.core.progress}, nil
}

// countingReader reports upload progress about every MiB.
type countingReader struct {
	rc       io.ReadCloser
	n, last  int64
	total    int64
	d        digest.Digest
	progress func(PushEvent)
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.n += int64(n)
	if r.n-r.last >= 1<<20 || (err == io.EOF && r.n != r.last) {
		r.last = r.n
		r.progress(PushEvent{Digest: r.d, Status: "Pushing", Current: r.n, Total: r.total})
	}
	return n, err
}

func (r *countingReader) Close() error { return r.rc.Close() }
