package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/image"
)

// fakeBackend keeps images in memory and layers as real tars. Its Run does
// not run anything: run decides a command's output, exit code and the
// files it writes.
type fakeBackend struct {
	t testing.TB

	mu       sync.Mutex
	images   map[string]*image.Image // by id
	refs     map[string]string       // normalized ref -> id
	layers   map[digest.Digest][]byte
	registry map[string]fakeImage // normalized ref -> what a pull gets

	run func(cfg *container.Config) (out string, code int, files map[string]string)

	runs      []*container.Config
	hostCfgs  []*container.HostConfig
	pulls     []string
	pullAuths []string // the registryAuth of each pull
	tags      map[string]string
	addLayers int
	rootfs    int
	leases    int // held now
	creates   int
}

// fakeImage is an image the fake registry serves.
type fakeImage struct {
	cfg   dockerspec.DockerOCIImageConfig
	files map[string]string // path -> content; a trailing "/" makes a directory
}

func newFakeBackend(t testing.TB) *fakeBackend {
	return &fakeBackend{
		t:        t,
		images:   map[string]*image.Image{},
		refs:     map[string]string{},
		layers:   map[digest.Digest][]byte{},
		registry: map[string]fakeImage{},
		tags:     map[string]string{},
	}
}

func normRef(t testing.TB, ref string) string {
	n, err := image.ParseReference(ref)
	if err != nil {
		return ref
	}
	return n.String()
}

// busybox is a base image like the real one, small.
func busybox() fakeImage {
	cfg := dockerspec.DockerOCIImageConfig{}
	cfg.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cfg.Cmd = []string{"sh"}
	return fakeImage{cfg: cfg, files: map[string]string{
		"bin/":       "",
		"bin/sh":     "#!busybox",
		"etc/":       "",
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
		"etc/group":  "root:x:0:\napp:x:1001:\nstaff:x:50:\n",
		"tmp/":       "",
	}}
}

// addImage stores img locally under ref (as if pulled) and returns it.
func (f *fakeBackend) addImage(ref string, fi fakeImage) *image.Image {
	f.t.Helper()
	l, err := f.AddLayer(context.Background(), "", bytes.NewReader(tarOf(f.t, fi.files)))
	if err != nil {
		f.t.Fatal(err)
	}
	cfg := dockerspec.DockerOCIImage{}
	cfg.OS, cfg.Architecture = "linux", hostPlatform().arch
	cfg.Config = fi.cfg
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l.DiffID}}
	cfg.History = []ocispec.History{{CreatedBy: "/bin/sh -c #(nop) ADD file:base in / "}}
	img, err := f.CreateImage(context.Background(), cfg, []image.Layer{l}, "")
	if err != nil {
		f.t.Fatal(err)
	}
	f.refs[normRef(f.t, ref)] = img.ID
	return img
}

// tarOf makes a layer tar of files (sorted, so the same files make the
// same layer).
func tarOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(files[n]))}
		if strings.HasSuffix(n, "/") {
			hdr = &tar.Header{Name: n, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			tw.Write([]byte(files[n]))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (f *fakeBackend) ImageGet(ctx context.Context, refOrID string) (*image.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if img, ok := f.images[refOrID]; ok {
		return img, nil
	}
	if img, ok := f.images["sha256:"+refOrID]; ok {
		return img, nil
	}
	if id, ok := f.refs[normRef(f.t, refOrID)]; ok {
		return f.images[id], nil
	}
	return nil, errdefs.NotFound("No such image: %s", refOrID)
}

func (f *fakeBackend) ImagePull(ctx context.Context, ref, platform, registryAuth string, out io.Writer) error {
	f.mu.Lock()
	f.pulls = append(f.pulls, ref)
	f.pullAuths = append(f.pullAuths, registryAuth)
	fi, ok := f.registry[normRef(f.t, ref)]
	f.mu.Unlock()
	if !ok {
		return errdefs.NotFound("pull access denied for %s, repository does not exist or may require 'docker login'", ref)
	}
	fmt.Fprintf(out, "Pulling %s\n", ref)
	f.addImage(ref, fi)
	return nil
}

// ImageRootFS unpacks the image's layers into a new directory.
func (f *fakeBackend) ImageRootFS(ctx context.Context, imageID string) (string, func(), error) {
	f.mu.Lock()
	f.rootfs++
	var layers [][]byte
	if imageID != "" {
		img, ok := f.images[imageID]
		if !ok {
			f.mu.Unlock()
			return "", nil, errdefs.NotFound("No such image: %s", imageID)
		}
		for _, l := range img.Layers {
			layers = append(layers, f.layers[l.DiffID])
		}
	}
	f.mu.Unlock()
	root, err := os.MkdirTemp(f.t.TempDir(), "rootfs")
	if err != nil {
		return "", nil, err
	}
	for _, l := range layers {
		if err := untar(root, l); err != nil {
			return "", nil, err
		}
	}
	return root, func() { os.RemoveAll(root) }, nil
}

// untar applies a layer (dirs, files and symlinks; no whiteouts needed
// by these tests).
func untar(root string, data []byte) error {
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(root, filepath.Clean("/"+hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			b, _ := io.ReadAll(tr)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				return err
			}
		case tar.TypeSymlink:
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.Remove(p)
			if err := os.Symlink(hdr.Linkname, p); err != nil {
				return err
			}
		}
	}
}

func (f *fakeBackend) AddLayer(ctx context.Context, imageID string, r io.Reader) (image.Layer, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return image.Layer{}, err
	}
	d := digest.FromBytes(data)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addLayers++
	f.layers[d] = data
	return image.Layer{Digest: d, DiffID: d, MediaType: ocispec.MediaTypeImageLayer, Size: int64(len(data))}, nil
}

func (f *fakeBackend) Lease(ctx context.Context) (context.Context, func(), error) {
	f.mu.Lock()
	f.leases++
	f.mu.Unlock()
	return ctx, func() {
		f.mu.Lock()
		f.leases--
		f.mu.Unlock()
	}, nil
}

func (f *fakeBackend) CreateImage(ctx context.Context, cfg dockerspec.DockerOCIImage, layers []image.Layer, parent string) (*image.Image, error) {
	if len(cfg.RootFS.DiffIDs) != len(layers) {
		return nil, fmt.Errorf("config lists %d layers, %d given", len(cfg.RootFS.DiffIDs), len(layers))
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	img := &image.Image{ID: digest.FromBytes(b).String(), Config: cfg, Layers: layers, Parent: parent}
	for _, l := range layers {
		img.DiffIDs = append(img.DiffIDs, l.DiffID)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	f.images[img.ID] = img
	return img, nil
}

func (f *fakeBackend) TagImage(ctx context.Context, imageID, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tags[ref] = imageID
	f.refs[ref] = imageID
	return nil
}

func (f *fakeBackend) Run(ctx context.Context, imageID string, cfg *container.Config, hostCfg *container.HostConfig, out io.Writer) (image.Layer, int, error) {
	f.mu.Lock()
	f.runs = append(f.runs, cfg)
	f.hostCfgs = append(f.hostCfgs, hostCfg)
	n := len(f.runs)
	run := f.run
	f.mu.Unlock()
	if ro, ok := out.(RunOutput); ok {
		ro.ContainerCreated(fmt.Sprintf("%064x", n))
	}
	var output string
	code := 0
	var files map[string]string
	if run != nil {
		output, code, files = run(cfg)
	}
	io.WriteString(out, output)
	if code != 0 {
		return image.Layer{}, code, nil
	}
	l, err := f.AddLayer(ctx, imageID, bytes.NewReader(tarOf(f.t, files)))
	return l, 0, err
}

// layerFiles lists the entries of a stored layer: name -> "uid:gid mode
// content".
func (f *fakeBackend) layerFiles(d digest.Digest) map[string]string {
	f.mu.Lock()
	data := f.layers[d]
	f.mu.Unlock()
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err != nil {
			return out
		}
		b, _ := io.ReadAll(tr)
		out[hdr.Name] = fmt.Sprintf("%d:%d %o %s", hdr.Uid, hdr.Gid, hdr.Mode&0o7777, b)
	}
}

func (f *fakeBackend) counts() (runs, addLayers, creates int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.runs), f.addLayers, f.creates
}
