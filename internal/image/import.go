package image

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/archive"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/meta"
)

// importKeyPrefix names the temporary snapshots layers are unpacked into
// before they are committed under their chain id.
const importKeyPrefix = "import-"

// ImportOptions describe `docker import`.
type ImportOptions struct {
	Ref      string   // name[:tag] to give the image; "" for none
	Changes  []string // Dockerfile instructions applied to the config
	Message  string   // history comment; default "Imported from -"
	Platform string   // "os[/arch[/variant]]"; default linux and this machine's arch
}

// Import makes a one-layer image from r, a tar (plain, gzip, zstd or bzip2)
// of a root filesystem. The layer blob is stored as given (bzip2 is stored
// uncompressed), so importing the same file twice gives the same layer.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (*Image, error) {
	var tag string
	if opts.Ref != "" {
		named, err := parseTag(opts.Ref)
		if err != nil {
			return nil, err
		}
		tag = named.String()
	}
	platform, err := parsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	var cfg dockerspec.DockerOCIImageConfig
	if err := ApplyChanges(&cfg, opts.Changes); err != nil {
		return nil, err
	}
	msg := opts.Message
	if msg == "" {
		msg = "Imported from -"
	}

	ctx, release, err := s.Leased(ctx)
	if err != nil {
		return nil, err
	}
	defer release()

	br := bufio.NewReaderSize(r, 1<<20)
	head, _ := br.Peek(6)
	var src io.Reader = br
	if c := archive.DetectCompression(head); c != archive.Uncompressed && c != archive.Gzip && c != archive.Zstd {
		// Not a compression OCI layers can have: store the tar itself.
		rc, _, err := archive.DecompressStream(br)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		src = rc
	}
	layer, err := s.AddLayer(ctx, "", src)
	if err != nil {
		return nil, err
	}

	created := time.Now().UTC()
	img := dockerspec.DockerOCIImage{
		Image: ocispec.Image{
			Created:  &created,
			Platform: platform,
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.DiffID}},
			History:  []ocispec.History{{Created: &created, Comment: msg}},
		},
		Config: cfg,
	}
	return s.Create(ctx, img, []Layer{layer}, CreateOptions{Ref: tag})
}

func parsePlatform(p string) (ocispec.Platform, error) {
	out := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if p == "" {
		return out, nil
	}
	parts := strings.Split(strings.ToLower(p), "/")
	if parts[0] != "linux" || len(parts) > 3 {
		return out, errdefs.Invalid("unsupported platform %q: skiff runs linux images", p)
	}
	if len(parts) > 1 && parts[1] != "" {
		out.Architecture = parts[1]
	}
	if len(parts) > 2 {
		out.Variant = parts[2]
	}
	return out, nil
}

// AddLayer stores the layer tar r (plain, gzip or zstd) as a blob, exactly as
// given, and unpacks it into a committed snapshot on top of the layers whose
// chain id is parent ("" for a base layer). The snapshot is keyed by the new
// chain id; when it already exists (the same layer on the same parents) the
// unpacked copy is dropped. The blob and the snapshot are held in the lease
// ctx carries (WithLease), which the caller keeps until the layer is in an
// image record (Create); without one they are held only while AddLayer
// runs, and a GC may take them before the caller records them.
func (s *Store) AddLayer(ctx context.Context, parent digest.Digest, r io.Reader) (Layer, error) {
	ctx, release, err := s.Leased(ctx)
	if err != nil {
		return Layer{}, err
	}
	defer release()
	br := bufio.NewReaderSize(r, 1<<20)
	head, _ := br.Peek(6)
	comp := archive.DetectCompression(head)
	mediaType := ocispec.MediaTypeImageLayer
	switch comp {
	case archive.Uncompressed:
	case archive.Gzip:
		mediaType = ocispec.MediaTypeImageLayerGzip
	case archive.Zstd:
		mediaType = ocispec.MediaTypeImageLayerZstd
	default:
		return Layer{}, errdefs.Invalid("unsupported layer compression: %s", comp)
	}

	key := importKeyPrefix + randomHex()
	// The parent is held too: it is a layer of an image the caller
	// read, which an rmi may delete meanwhile.
	hold := []Resource{Snapshot(key)}
	if parent != "" {
		hold = append(hold, Snapshot(parent.String()))
	}
	if err := s.Hold(ctx, hold...); err != nil {
		return Layer{}, err
	}
	if _, err := s.sn.Prepare(ctx, key, string(parent)); err != nil {
		return Layer{}, fmt.Errorf("prepare layer: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			s.sn.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	upper, err := s.sn.UpperDir(ctx, key)
	if err != nil {
		return Layer{}, err
	}
	w, err := s.cs.Writer(ctx, "", -1)
	if err != nil {
		return Layer{}, err
	}
	defer w.Close()

	var opts []archive.ApplyOpt
	diff := digest.SHA256.Digester()
	if comp != archive.Uncompressed {
		opts = append(opts, archive.WithUncompressedTee(diff.Hash()))
	}
	size, err := archive.Apply(ctx, upper, io.TeeReader(br, w), opts...)
	if err != nil {
		return Layer{}, fmt.Errorf("unpack layer: %w", err)
	}
	// Apply reads to the end; whatever it did not need still belongs to
	// the blob.
	if _, err := io.Copy(w, br); err != nil {
		return Layer{}, fmt.Errorf("read layer: %w", err)
	}
	// One syncfs for the whole layer instead of an fsync per file: the
	// snapshot must be whole once an image record names it.
	if err := syncFS(upper); err != nil {
		return Layer{}, fmt.Errorf("sync layer: %w", err)
	}
	diffID := w.Digest()
	if comp != archive.Uncompressed {
		diffID = diff.Digest()
	}
	chain := diffID
	if parent != "" {
		chain = identity.ChainID([]digest.Digest{parent, diffID})
	}
	// Held before the blob and the layer appear under their names.
	if err := s.Hold(ctx, Blob(w.Digest()), Snapshot(chain.String())); err != nil {
		return Layer{}, err
	}
	info, err := w.Commit()
	if err != nil {
		return Layer{}, fmt.Errorf("store layer: %w", err)
	}
	l := Layer{Digest: info.Digest, DiffID: diffID, MediaType: mediaType, Size: info.Size, UnpackedSize: size}

	if _, err := s.sn.Stat(ctx, chain.String()); err == nil {
		return l, nil // already unpacked: the deferred Remove drops this copy
	}
	if err := s.sn.Commit(ctx, chain.String(), key); err != nil {
		if errdefs.IsConflict(err) {
			return l, nil // a concurrent import of the same layer won
		}
		return Layer{}, fmt.Errorf("commit layer: %w", err)
	}
	committed = true
	return l, nil
}

func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}

func randomHex() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// CreateOptions are the optional parts of Create.
type CreateOptions struct {
	Ref    string // normalized name:tag to point at the image
	Parent string // image id this one was built from
	// ConfigJSON, when set, is stored as the config blob as it is (config
	// must be its decoded form), so a loaded or pulled image keeps its id.
	ConfigJSON []byte
	// ManifestJSON, when set, is stored as the manifest blob instead of a
	// generated one, so a pulled image keeps its manifest digest.
	ManifestJSON []byte
	// RepoDigest is a normalized name@digest to point at the image too.
	RepoDigest string
}

// Create records an image made of config and layers (already stored by
// AddLayer, bottom first): it stores the config and an OCI manifest as
// blobs and the record in the database. config.RootFS must list the
// layers' diff ids. New layers must still be held by the lease ctx carries
// (the one AddLayer held them in). The new blobs and the image itself are
// held in that lease too: a build's intermediate images stay out of image
// prune while the build runs.
func (s *Store) Create(ctx context.Context, config dockerspec.DockerOCIImage, layers []Layer, opts CreateOptions) (*Image, error) {
	if len(config.RootFS.DiffIDs) != len(layers) {
		return nil, fmt.Errorf("create image: config lists %d layers, %d given", len(config.RootFS.DiffIDs), len(layers))
	}
	for i, l := range layers {
		if config.RootFS.DiffIDs[i] != l.DiffID {
			return nil, fmt.Errorf("create image: layer %d is %s, the config says %s", i, l.DiffID, config.RootFS.DiffIDs[i])
		}
	}
	cfgJSON, err := opts.ConfigJSON, error(nil)
	if cfgJSON == nil {
		cfgJSON, err = json.Marshal(config)
	}
	if err != nil {
		return nil, fmt.Errorf("encode image config: %w", err)
	}
	cfgDigest := digest.FromBytes(cfgJSON)
	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfgDigest, Size: int64(len(cfgJSON))},
	}
	var size int64
	for _, l := range layers {
		manifest.Layers = append(manifest.Layers, ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size})
		size += l.UnpackedSize
	}
	mJSON, err := json.Marshal(manifest)
	if opts.ManifestJSON != nil {
		mJSON = opts.ManifestJSON
	}
	if err != nil {
		return nil, fmt.Errorf("encode image manifest: %w", err)
	}

	ctx, release, err := s.Leased(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	// The new blobs are held before they are stored. The layers are held
	// too (free when this lease already holds them, as after AddLayer) and
	// then checked: layers taken from another image (a commit's or a
	// build step's base) may have gone with an rmi since they were read,
	// and an image record must never name what is not there.
	chains := identity.ChainIDs(slices.Clone(config.RootFS.DiffIDs))
	hold := []Resource{Blob(cfgDigest), Blob(digest.FromBytes(mJSON)), ImageResource(cfgDigest.String())}
	for i, l := range layers {
		hold = append(hold, Blob(l.Digest), Snapshot(chains[i].String()))
	}
	if err := s.Hold(ctx, hold...); err != nil {
		return nil, err
	}
	for i, l := range layers {
		if _, err := s.cs.Info(ctx, l.Digest); err != nil {
			return nil, fmt.Errorf("create image: layer %s: %w", l.Digest, err)
		}
		if _, err := s.sn.Stat(ctx, chains[i].String()); err != nil {
			return nil, fmt.Errorf("create image: layer %s: %w", l.DiffID, err)
		}
	}
	cfgInfo, err := s.cs.PutBytes(ctx, cfgJSON, "")
	if err != nil {
		return nil, fmt.Errorf("store image config: %w", err)
	}
	mInfo, err := s.cs.PutBytes(ctx, mJSON, "")
	if err != nil {
		return nil, fmt.Errorf("store image manifest: %w", err)
	}

	id := cfgInfo.Digest.String()
	created := time.Now().UTC()
	if config.Created != nil {
		created = *config.Created
	}
	rec := &record{Manifest: mInfo.Digest, Layers: layers, Created: created, Size: size, Parent: opts.Parent}
	var img *Image
	err = s.db.Update(func(tx *bolt.Tx) error {
		if old, err := getRecord(tx, id); err == nil {
			rec.LastTagTime = old.LastTagTime
		}
		if err := meta.PutJSON(tx, bucketImages, id, rec); err != nil {
			return err
		}
		if opts.Ref != "" {
			if err := setRef(tx, opts.Ref, id); err != nil {
				return err
			}
		}
		if opts.RepoDigest != "" {
			if err := setRef(tx, opts.RepoDigest, id); err != nil {
				return err
			}
		}
		img, err = s.load(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record image: %w", err)
	}
	return img, nil
}
