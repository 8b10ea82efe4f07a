package image

// Save and load of image archives, in the layout `docker save` writes since
// Docker 25: an OCI image layout (oci-layout, index.json, blobs/sha256/...)
// that also carries Docker's manifest.json and repositories, so Docker's
// loaders of every age and OCI tools read the same file. Layers are written
// uncompressed (their blob digest is their diff id), as Docker writes them.
//
// Load reads that layout, the older Docker layout (<id>/layer.tar,
// <id>.json, symlinked duplicate layers) and plain OCI layouts (index.json
// only, compressed layers, nested indexes), from a plain or compressed tar.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/skiff-dev/skiff/internal/archive"
	"github.com/skiff-dev/skiff/internal/content"
	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Annotations Docker and containerd put on index.json entries.
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = ocispec.AnnotationRefName
)

// DockerManifestEntry is one image in Docker's manifest.json.
type DockerManifestEntry struct {
	Config       string
	RepoTags     []string
	Layers       []string
	LayerSources map[digest.Digest]ocispec.Descriptor `json:",omitempty"`
}

// saveItem is one image to write with the tags (normalized) to give it.
type saveItem struct {
	img  *Image
	tags []reference.NamedTagged
}

// Save writes the images names (references or ids) to w as one archive.
// A name with a tag or an id saves that image (with that tag); a bare
// repository name saves every tagged image of that repository, as docker does.
func (s *Store) Save(ctx context.Context, w io.Writer, names []string) error {
	items, err := s.saveItems(ctx, names)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	// Times in the archive are fixed so the same images give the same bytes.
	mtime := time.Unix(0, 0)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
	}
	written := map[digest.Digest]bool{}
	putBytes := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
		_, err := tw.Write(b)
		return err
	}
	putBlob := func(b []byte) (ocispec.Descriptor, error) {
		d := digest.SHA256.FromBytes(b)
		if !written[d] {
			written[d] = true
			if err := putBytes(blobPath(d), b); err != nil {
				return ocispec.Descriptor{}, err
			}
		}
		return ocispec.Descriptor{Digest: d, Size: int64(len(b))}, nil
	}

	var manifests []DockerManifestEntry
	var index []ocispec.Descriptor
	repos := map[string]map[string]string{}
	for _, it := range items {
		cfg, err := s.cs.ReadAll(ctx, digest.Digest(it.img.ID))
		if err != nil {
			return err
		}
		cfgDesc, err := putBlob(cfg)
		if err != nil {
			return err
		}
		cfgDesc.MediaType = ocispec.MediaTypeImageConfig
		m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc, Layers: []ocispec.Descriptor{}}
		entry := DockerManifestEntry{Config: blobPath(cfgDesc.Digest)}
		for _, l := range it.img.Layers {
			size, err := s.writeLayer(ctx, tw, l, written, mtime)
			if err != nil {
				return err
			}
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: l.DiffID, Size: size})
			entry.Layers = append(entry.Layers, blobPath(l.DiffID))
		}
		mb, err := json.Marshal(m)
		if err != nil {
			return err
		}
		mDesc, err := putBlob(mb)
		if err != nil {
			return err
		}
		mDesc.MediaType = ocispec.MediaTypeImageManifest
		for _, t := range it.tags {
			entry.RepoTags = append(entry.RepoTags, reference.FamiliarString(t))
			d := mDesc
			d.Annotations = map[string]string{annotationImageName: t.String(), annotationRefName: t.Tag()}
			index = append(index, d)
			repo := reference.FamiliarName(t)
			if repos[repo] == nil {
				repos[repo] = map[string]string{}
			}
			if n := len(it.img.DiffIDs); n > 0 {
				repos[repo][t.Tag()] = it.img.DiffIDs[n-1].Encoded()
			}
		}
		if len(it.tags) == 0 {
			index = append(index, mDesc)
		}
		manifests = append(manifests, entry)
	}

	idx, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: index})
	if err != nil {
		return err
	}
	if err := putBytes(ocispec.ImageIndexFile, idx); err != nil {
		return err
	}
	mj, err := json.Marshal(manifests)
	if err != nil {
		return err
	}
	if err := putBytes("manifest.json", mj); err != nil {
		return err
	}
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err := putBytes(ocispec.ImageLayoutFile, layout); err != nil {
		return err
	}
	if len(repos) > 0 {
		rj, err := json.Marshal(repos)
		if err != nil {
			return err
		}
		if err := putBytes("repositories", rj); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	return nil
}

func blobPath(d digest.Digest) string { return "blobs/" + d.Algorithm().String() + "/" + d.Encoded() }

// writeLayer writes l's uncompressed tar as the blob named by its diff id
// (once per archive) and returns its size. A compressed blob is read twice:
// once for the size the tar header needs, once for the bytes.
func (s *Store) writeLayer(ctx context.Context, tw *tar.Writer, l Layer, written map[digest.Digest]bool, mtime time.Time) (int64, error) {
	open := func() (io.ReadCloser, error) {
		b, err := s.cs.Open(ctx, l.Digest)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		rc, _, err := archive.DecompressStream(b)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		return readCloser{rc, func() error { rc.Close(); return b.Close() }}, nil
	}
	size := l.Size
	if l.Digest != l.DiffID {
		rc, err := open()
		if err != nil {
			return 0, err
		}
		size, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return 0, fmt.Errorf("read layer %s: %w", l.Digest, err)
		}
	}
	if written[l.DiffID] {
		return size, nil
	}
	written[l.DiffID] = true
	rc, err := open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blobPath(l.DiffID), Mode: 0o644, Size: size, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
		return 0, fmt.Errorf("write archive: %w", err)
	}
	if _, err := io.CopyN(tw, rc, size); err != nil {
		return 0, fmt.Errorf("write layer %s: %w", l.DiffID, err)
	}
	return size, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

func (s *Store) saveItems(ctx context.Context, names []string) ([]saveItem, error) {
	if len(names) == 0 {
		return nil, errdefs.Invalid("no images specified")
	}
	var items []saveItem
	byID := map[string]int{}
	add := func(img *Image, tag reference.NamedTagged) {
		i, ok := byID[img.ID]
		if !ok {
			i = len(items)
			byID[img.ID] = i
			items = append(items, saveItem{img: img})
		}
		if tag == nil {
			return
		}
		for _, t := range items[i].tags {
			if t.String() == tag.String() {
				return
			}
		}
		items[i].tags = append(items[i].tags, tag)
	}
	for _, name := range names {
		named, perr := reference.ParseNormalizedNamed(name)
		if perr == nil && reference.IsNameOnly(named) {
			// Every tag of the repository, whether or not it has "latest".
			all, err := s.List(ctx)
			if err != nil {
				return nil, err
			}
			found := false
			for _, other := range all {
				for _, t := range other.RepoTags {
					tn, err := reference.ParseNormalizedNamed(t)
					if err != nil {
						continue
					}
					if tagged, ok := tn.(reference.NamedTagged); ok && tn.Name() == named.Name() {
						add(other, tagged)
						found = true
					}
				}
			}
			if found {
				continue
			}
		}
		img, err := s.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		switch {
		case perr != nil || strings.HasPrefix(img.ID, "sha256:"+name) || strings.TrimPrefix(name, "sha256:") != name || reference.IsNameOnly(named):
			add(img, nil) // an id (a hex prefix parses as a name)
		default:
			tagged, ok := named.(reference.NamedTagged)
			if ok {
				add(img, tagged)
			} else {
				add(img, nil) // name@digest
			}
		}
	}
	return items, nil
}

// LoadedImage is one image Load recorded, with the tags (familiar) it got.
type LoadedImage struct {
	ID   string
	Tags []string
	// Replaced lists the tags (familiar) that named another image before,
	// with that image's id: [tag, old id] pairs.
	Replaced [][2]string
}

// limits on what Load keeps in memory; bigger files go to the content store.
const (
	loadMemFile  = 1 << 20
	loadMemTotal = 64 << 20
)

// archiveFiles are the files of an image archive: small ones in memory,
// the others as blobs in the content store.
type archiveFiles struct {
	mem      map[string][]byte
	blobs    map[string]digest.Digest
	links    map[string]string // symlink or hardlink name -> target name
	memTotal int64
}

// Load reads an image archive (see the package comment on formats) from r
// and records its images. Tags named in the archive move to the loaded
// images. Blobs the archive carried but no image uses are collected.
func (s *Store) Load(ctx context.Context, r io.Reader) ([]LoadedImage, error) {
	return s.LoadWithProgress(ctx, r, nil)
}

// LoadProgress hears how the unpacking of one layer goes: id is the short
// diff id (12 hex digits), as dockerd's "Loading layer" messages name it.
type LoadProgress func(id string, current, total int64)

// LoadWithProgress is Load that reports each layer's unpacking to progress
// (nil: none), about every 512 KiB and at its end.
func (s *Store) LoadWithProgress(ctx context.Context, r io.Reader, progress LoadProgress) ([]LoadedImage, error) {
	rc, _, err := archive.DecompressStream(r)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	lctx, release, err := s.Leased(ctx)
	if err != nil {
		return nil, err
	}
	loaded, err := s.load2(lctx, rc, progress)
	release()
	// Whatever the archive brought that no image took (or everything,
	// after an error) goes now rather than at the next start.
	if gcErr := s.GC(context.WithoutCancel(ctx)); gcErr != nil && err == nil {
		err = gcErr
	}
	return loaded, err
}

func (s *Store) load2(ctx context.Context, r io.Reader, progress LoadProgress) ([]LoadedImage, error) {
	files, err := s.readArchive(ctx, r)
	if err != nil {
		return nil, err
	}
	plans, err := planLoad(files.mem, files.has)
	if err != nil {
		return nil, err
	}
	var out []LoadedImage
	for _, p := range plans {
		li, err := s.loadOne(ctx, files, p, progress)
		if err != nil {
			return out, err
		}
		out = append(out, li)
	}
	return out, nil
}

// readArchive reads the tar r, keeping small files in memory and storing
// the others as blobs. A file named blobs/ALG/HEX must hash to that name.
func (s *Store) readArchive(ctx context.Context, r io.Reader) (*archiveFiles, error) {
	f := &archiveFiles{mem: map[string][]byte{}, blobs: map[string]digest.Digest{}, links: map[string]string{}}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errdefs.Invalid("read image archive: %v", err)
		}
		name, ok := cleanArchivePath(hdr.Name)
		if !ok {
			return nil, errdefs.Invalid("image archive: invalid entry name %q", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			if t, ok := cleanArchivePath(target); ok {
				f.links[name] = t
			}
			continue
		case tar.TypeLink:
			if t, ok := cleanArchivePath(hdr.Linkname); ok {
				f.links[name] = t
			}
			continue
		case tar.TypeReg:
		default:
			continue // nothing a loader needs
		}
		var expected digest.Digest
		if strings.HasPrefix(name, "blobs/") {
			if d := digest.Digest(strings.Replace(strings.TrimPrefix(name, "blobs/"), "/", ":", 1)); d.Validate() == nil {
				expected = d
			}
		}
		if hdr.Size <= loadMemFile && f.memTotal+hdr.Size <= loadMemTotal {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, errdefs.Invalid("read image archive: %v", err)
			}
			if expected != "" && expected.Algorithm().Available() && expected.Algorithm().FromBytes(b) != expected {
				return nil, errdefs.Invalid("image archive: %s does not match its digest", name)
			}
			f.mem[name] = b
			f.memTotal += int64(len(b))
			continue
		}
		if expected != "" && expected.Algorithm() != digest.SHA256 {
			return nil, errdefs.Invalid("image archive: unsupported digest algorithm in %s", name)
		}
		info, err := s.cs.Put(ctx, tr, expected, content.BeforeCommit(func(d digest.Digest) error { return s.Hold(ctx, Blob(d)) }))
		if err != nil {
			if expected != "" && !errdefs.IsNotFound(err) && ctx.Err() == nil {
				return nil, errdefs.Invalid("image archive: %s: %v", name, err)
			}
			return nil, fmt.Errorf("store %s from image archive: %w", name, err)
		}
		f.blobs[name] = info.Digest
	}
	return f, nil
}

// resolve follows links (at most a few) to the file's own name.
func (f *archiveFiles) resolve(name string) string {
	for i := 0; i < 8; i++ {
		t, ok := f.links[name]
		if !ok {
			break
		}
		name = t
	}
	return name
}

func (f *archiveFiles) has(name string) bool {
	name = f.resolve(name)
	_, m := f.mem[name]
	_, b := f.blobs[name]
	return m || b
}

func (f *archiveFiles) open(ctx context.Context, s *Store, name string) (io.ReadCloser, error) {
	name = f.resolve(name)
	if b, ok := f.mem[name]; ok {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	if d, ok := f.blobs[name]; ok {
		return s.cs.Open(ctx, d)
	}
	return nil, errdefs.Invalid("image archive: %s is missing", name)
}

// size is the stored size of name, or 0 when unknown.
func (f *archiveFiles) size(ctx context.Context, s *Store, name string) int64 {
	name = f.resolve(name)
	if b, ok := f.mem[name]; ok {
		return int64(len(b))
	}
	if d, ok := f.blobs[name]; ok {
		if info, err := s.cs.Info(ctx, d); err == nil {
			return info.Size
		}
	}
	return 0
}

// loadCounter reports what has been read of a layer.
type loadCounter struct {
	r       io.Reader
	n, last int64
	total   int64
	report  func(n, total int64)
}

func (c *loadCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n-c.last >= 512<<10 || (err == io.EOF && c.n != c.last) {
		c.last = c.n
		c.report(c.n, c.total)
	}
	return n, err
}

func (f *archiveFiles) read(ctx context.Context, s *Store, name string) ([]byte, error) {
	rc, err := f.open(ctx, s, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// cleanArchivePath turns an entry name into a clean relative path, and
// refuses names that leave the archive's root.
func cleanArchivePath(p string) (string, bool) {
	p = strings.TrimPrefix(p, "/")
	c := path.Clean(p)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") || c == "" {
		return "", false
	}
	return c, true
}

// loadPlan is one image to record from an archive.
type loadPlan struct {
	config string   // file holding the config
	layers []string // files holding the layers, bottom first
	tags   []reference.NamedTagged
	// digests the archive's OCI manifest promises for config and layers
	// (empty for Docker's manifest.json, whose names are not digests).
	configDigest digest.Digest
	layerDigests []digest.Digest
}

// planLoad reads manifest.json (preferred, as Docker does) or index.json
// from the archive's small files and returns what to load. has tells
// whether the archive has a file (small or large). It does not read layers,
// so it can be fuzzed on its own.
func planLoad(mem map[string][]byte, has func(string) bool) ([]loadPlan, error) {
	if mj, ok := mem["manifest.json"]; ok {
		return planDocker(mj, has)
	}
	if ij, ok := mem[ocispec.ImageIndexFile]; ok {
		return planOCI(ij, mem, has)
	}
	if has("manifest.json") || has(ocispec.ImageIndexFile) {
		return nil, errdefs.Invalid("image archive: manifest is too large")
	}
	return nil, errdefs.Invalid("image archive has neither manifest.json nor index.json: not a docker save or OCI layout archive")
}

func planDocker(mj []byte, has func(string) bool) ([]loadPlan, error) {
	var entries []DockerManifestEntry
	if err := json.Unmarshal(mj, &entries); err != nil {
		return nil, errdefs.Invalid("image archive: decode manifest.json: %v", err)
	}
	if len(entries) == 0 {
		return nil, errdefs.Invalid("image archive: manifest.json lists no images")
	}
	var plans []loadPlan
	for _, e := range entries {
		cfg, ok := cleanArchivePath(e.Config)
		if !ok || !has(cfg) {
			return nil, errdefs.Invalid("image archive: config %q is missing", e.Config)
		}
		p := loadPlan{config: cfg}
		for _, l := range e.Layers {
			lp, ok := cleanArchivePath(l)
			if !ok || !has(lp) {
				return nil, errdefs.Invalid("image archive: layer %q is missing", l)
			}
			p.layers = append(p.layers, lp)
		}
		for _, t := range e.RepoTags {
			named, err := reference.ParseNormalizedNamed(t)
			if err != nil {
				return nil, errdefs.Invalid("image archive: invalid tag %q: %v", t, err)
			}
			tagged, ok := named.(reference.NamedTagged)
			if !ok {
				return nil, errdefs.Invalid("image archive: invalid tag %q: no tag", t)
			}
			p.tags = append(p.tags, tagged)
		}
		plans = append(plans, p)
	}
	return plans, nil
}

func planOCI(ij []byte, mem map[string][]byte, has func(string) bool) ([]loadPlan, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(ij, &idx); err != nil {
		return nil, errdefs.Invalid("image archive: decode index.json: %v", err)
	}
	if len(idx.Manifests) == 0 {
		return nil, errdefs.Invalid("image archive: index.json lists no images")
	}
	var plans []loadPlan
	byManifest := map[digest.Digest]int{}
	for _, d := range idx.Manifests {
		md, err := pickManifest(d, mem, 0)
		if err != nil {
			return nil, err
		}
		tag := ociTag(d.Annotations)
		if i, ok := byManifest[md.Digest]; ok {
			if tag != nil {
				plans[i].tags = append(plans[i].tags, tag)
			}
			continue
		}
		mb, err := ociBlob(mem, md)
		if err != nil {
			return nil, err
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(mb, &m); err != nil {
			return nil, errdefs.Invalid("image archive: decode manifest %s: %v", md.Digest, err)
		}
		p := loadPlan{config: descPath(m.Config.Digest), configDigest: m.Config.Digest}
		if m.Config.Digest.Validate() != nil || !has(p.config) {
			return nil, errdefs.Invalid("image archive: config %s is missing", m.Config.Digest)
		}
		for _, l := range m.Layers {
			if l.Digest.Validate() != nil || !has(descPath(l.Digest)) {
				return nil, errdefs.Invalid("image archive: layer %s is missing", l.Digest)
			}
			p.layers = append(p.layers, descPath(l.Digest))
			p.layerDigests = append(p.layerDigests, l.Digest)
		}
		if tag != nil {
			p.tags = append(p.tags, tag)
		}
		byManifest[md.Digest] = len(plans)
		plans = append(plans, p)
	}
	return plans, nil
}

func descPath(d digest.Digest) string {
	if d.Validate() != nil {
		return ""
	}
	return blobPath(d)
}

func ociBlob(mem map[string][]byte, d ocispec.Descriptor) ([]byte, error) {
	if d.Digest.Validate() != nil {
		return nil, errdefs.Invalid("image archive: invalid digest %q", d.Digest)
	}
	b, ok := mem[blobPath(d.Digest)]
	if !ok {
		return nil, errdefs.Invalid("image archive: blob %s is missing", d.Digest)
	}
	return b, nil
}

// pickManifest follows an index entry to an image manifest: nested indexes
// give the entry for this machine's platform (or their only entry).
func pickManifest(d ocispec.Descriptor, mem map[string][]byte, depth int) (ocispec.Descriptor, error) {
	switch d.MediaType {
	case ocispec.MediaTypeImageManifest, "application/vnd.docker.distribution.manifest.v2+json":
		return d, nil
	case ocispec.MediaTypeImageIndex, "application/vnd.docker.distribution.manifest.list.v2+json":
	default:
		return d, errdefs.Invalid("image archive: unsupported media type %q", d.MediaType)
	}
	if depth > 4 {
		return d, errdefs.Invalid("image archive: indexes nested too deep")
	}
	b, err := ociBlob(mem, d)
	if err != nil {
		return d, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return d, errdefs.Invalid("image archive: decode index %s: %v", d.Digest, err)
	}
	var found []ocispec.Descriptor
	for _, m := range idx.Manifests {
		if m.Platform == nil || (m.Platform.OS == "linux" && m.Platform.Architecture == runtime.GOARCH) {
			found = append(found, m)
		}
	}
	if len(found) == 0 {
		return d, errdefs.NotFound("image archive: index %s has no image for linux/%s", d.Digest, runtime.GOARCH)
	}
	return pickManifest(found[0], mem, depth+1)
}

// ociTag is the tag an index.json entry names: the full reference in
// containerd's annotation, or a ref.name that is itself a full reference
// (a bare tag such as "latest" names no repository and is ignored).
func ociTag(a map[string]string) reference.NamedTagged {
	for _, k := range []string{annotationImageName, annotationRefName} {
		v := a[k]
		if v == "" {
			continue
		}
		named, err := reference.ParseNormalizedNamed(v)
		if err != nil {
			continue
		}
		if k == annotationRefName && !strings.ContainsAny(v, "/:") {
			continue
		}
		if t, ok := reference.TagNameOnly(named).(reference.NamedTagged); ok {
			return t
		}
	}
	return nil
}

// loadOne records one planned image: its layers are stored and unpacked
// (each checked against the config's diff ids), then the config as it is.
func (s *Store) loadOne(ctx context.Context, files *archiveFiles, p loadPlan, progress LoadProgress) (LoadedImage, error) {
	cfgJSON, err := files.read(ctx, s, p.config)
	if err != nil {
		return LoadedImage{}, err
	}
	if p.configDigest != "" && p.configDigest.Algorithm().Available() && p.configDigest.Algorithm().FromBytes(cfgJSON) != p.configDigest {
		return LoadedImage{}, errdefs.Invalid("image archive: config does not match its digest %s", p.configDigest)
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return LoadedImage{}, errdefs.Invalid("image archive: decode image config: %v", err)
	}
	if len(cfg.RootFS.DiffIDs) != len(p.layers) {
		return LoadedImage{}, errdefs.Invalid("image archive: the config lists %d layers, the manifest %d", len(cfg.RootFS.DiffIDs), len(p.layers))
	}
	var layers []Layer
	var parent digest.Digest
	for i, name := range p.layers {
		rc, err := files.open(ctx, s, name)
		if err != nil {
			return LoadedImage{}, err
		}
		var lr io.Reader = rc
		if progress != nil {
			id := cfg.RootFS.DiffIDs[i].Encoded()
			if len(id) > 12 {
				id = id[:12]
			}
			lr = &loadCounter{r: rc, total: files.size(ctx, s, name), report: func(n, total int64) { progress(id, n, total) }}
		}
		l, err := s.AddLayer(ctx, parent, lr)
		rc.Close()
		if err != nil {
			return LoadedImage{}, fmt.Errorf("load layer %s: %w", name, err)
		}
		if p.layerDigests != nil && l.Digest != p.layerDigests[i] {
			return LoadedImage{}, errdefs.Invalid("image archive: layer %s does not match its digest", p.layerDigests[i])
		}
		if l.DiffID != cfg.RootFS.DiffIDs[i] {
			return LoadedImage{}, errdefs.Invalid("image archive: layer %d is %s, the config says %s", i, l.DiffID, cfg.RootFS.DiffIDs[i])
		}
		layers = append(layers, l)
		parent = identity.ChainID(cfg.RootFS.DiffIDs[:i+1])
	}
	img, err := s.Create(ctx, cfg, layers, CreateOptions{ConfigJSON: cfgJSON})
	if err != nil {
		return LoadedImage{}, err
	}
	li := LoadedImage{ID: img.ID}
	if len(p.tags) > 0 {
		if err := s.db.Update(func(tx *bolt.Tx) error {
			for _, t := range p.tags {
				if old := tx.Bucket(bucketRefs).Get([]byte(t.String())); old != nil && string(old) != img.ID {
					li.Replaced = append(li.Replaced, [2]string{reference.FamiliarString(t), string(old)})
				}
				if err := setRef(tx, t.String(), img.ID); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return li, fmt.Errorf("tag loaded image: %w", err)
		}
		for _, t := range p.tags {
			li.Tags = append(li.Tags, reference.FamiliarString(t))
		}
		sort.Strings(li.Tags)
	}
	return li, nil
}
