package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/faults"
	"github.com/skiff-dev/skiff/internal/image"
	regclient "github.com/skiff-dev/skiff/internal/registry"
)

// maxConcurrentDownloads is Docker's default max-concurrent-downloads.
const maxConcurrentDownloads = 3

// registryClient is the registry client configured from the daemon config.
func (e *Engine) registryClient() *regclient.Client {
	return regclient.New(regclient.Options{Insecure: e.cfg.InsecureRegistries, Mirrors: e.cfg.RegistryMirrors, HostsDir: e.cfg.RegistryHostsDir})
}

// progressFunc serializes a Progress callback for use from several goroutines.
func progressFunc(f func(jsonstream.Message)) func(jsonstream.Message) {
	if f == nil {
		return func(jsonstream.Message) {}
	}
	var mu sync.Mutex
	return func(m jsonstream.Message) {
		mu.Lock()
		defer mu.Unlock()
		f(m)
	}
}

// layerStatus is a status message about one layer. It carries an empty
// progressDetail, as dockerd's do: the docker CLI keeps one line per id and
// redraws it in place only for messages with progressDetail; a message
// without one ends that block, and every later status of the layer would
// print a new line.
func layerStatus(id, status string) jsonstream.Message {
	return jsonstream.Message{ID: id, Status: status, Progress: &jsonstream.Progress{}}
}

func shortDigest(d digest.Digest) string {
	s := d.Encoded()
	if len(s) > 12 {
		s = s[:12]
	}
	return s
}

// ImagePull fetches ref (NAME[:TAG|@DIGEST]) from its registry: the
// manifest for the requested platform, the config and the layers (in
// parallel, those already present skipped), each verified against its
// digest and the config's diff ids, then records the image. On any
// failure nothing is kept.
func (e *Engine) ImagePull(ctx context.Context, ref string, opts PullOptions) error {
	n, err := regclient.Parse(ref)
	if err != nil {
		return err
	}
	platform, err := regclient.ParsePlatform(opts.Platform)
	if err != nil {
		return err
	}
	if platform.OS != "linux" {
		return errdefs.Invalid("operating system is not supported: %s", platform.OS)
	}
	auth, err := regclient.DecodeAuth(opts.RegistryAuth)
	if err != nil {
		return err
	}
	progress := progressFunc(opts.Progress)
	if opts.AllTags {
		return e.pullAllTags(ctx, ref, platform, auth, progress)
	}
	existed, err := e.pullOne(ctx, n, platform, auth, progress)
	if err != nil {
		return err
	}
	pullStatus(progress, reference.FamiliarString(n.Named), existed)
	return nil
}

// pullAllTags is `pull --all-tags`: every tag of n's repository, one after
// the other, then one status line for the repository.
func (e *Engine) pullAllTags(ctx context.Context, ref string, platform ocispec.Platform, auth regclient.Auth, progress func(jsonstream.Message)) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return errdefs.Invalid("invalid reference format: %s", ref)
	}
	if _, ok := named.(reference.NamedTagged); ok {
		return errdefs.Invalid("tag can't be used with --all-tags/-a")
	}
	if _, ok := named.(reference.Digested); ok {
		return errdefs.Invalid("digest can't be used with --all-tags/-a")
	}
	n := regclient.Named{Named: named, Host: reference.Domain(named), Path: reference.Path(named)}
	tags, err := e.registryClient().Tags(ctx, named.String(), auth)
	if err != nil {
		return err
	}
	if len(tags) == 0 {
		return errdefs.NotFound("no tags found for %s", reference.FamiliarName(n.Named))
	}
	allExisted := true
	for _, tag := range tags {
		tagged, err := reference.WithTag(n.Named, tag)
		if err != nil {
			return errdefs.Invalid("registry listed an invalid tag %q: %v", tag, err)
		}
		existed, err := e.pullOne(ctx, regclient.Named{Named: tagged, Host: n.Host, Path: n.Path}, platform, auth, progress)
		if err != nil {
			return err
		}
		allExisted = allExisted && existed
	}
	pullStatus(progress, reference.FamiliarName(n.Named), allExisted)
	return nil
}

func pullStatus(progress func(jsonstream.Message), shown string, existed bool) {
	if existed {
		progress(jsonstream.Message{Status: "Status: Image is up to date for " + shown})
	} else {
		progress(jsonstream.Message{Status: "Status: Downloaded newer image for " + shown})
	}
}

// pullOne pulls the image n names (a tag or a digest) and reports whether
// it was already here.
func (e *Engine) pullOne(ctx context.Context, n regclient.Named, platform ocispec.Platform, auth regclient.Auth, progress func(jsonstream.Message)) (existed bool, err error) {
	ref := n.Named.String()
	tagOrDigest := "latest"
	if d, ok := n.Named.(reference.Digested); ok {
		tagOrDigest = d.Digest().String()
	} else if t, ok := n.Named.(reference.Tagged); ok {
		tagOrDigest = t.Tag()
	}
	// Resolve before the first message, so "not found" and "denied" become
	// the reply's status as with Docker.
	rimg, err := e.registryClient().Resolve(ctx, ref, platform, auth)
	if err != nil {
		return false, err
	}
	progress(jsonstream.Message{Status: "Pulling from " + reference.Path(reference.TrimNamed(n.Named)), ID: tagOrDigest})
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(rimg.Config, &cfg); err != nil {
		return false, errdefs.Invalid("decode image config: %v", err)
	}
	if len(cfg.RootFS.DiffIDs) != len(rimg.Layers) {
		return false, errdefs.Invalid("image config lists %d layers, the manifest %d", len(cfg.RootFS.DiffIDs), len(rimg.Layers))
	}

	tagRef := ""
	if _, ok := n.Named.(reference.Digested); !ok {
		tagRef = n.Named.String()
	}
	repoDigest := reference.TrimNamed(n.Named).String() + "@" + rimg.Digest.String()
	existed = false
	if _, err := e.images.Get(ctx, rimg.ConfigDigest.String()); err == nil {
		existed = true
	}

	img, err := e.pullLayers(ctx, rimg, &cfg, progress, tagRef, repoDigest)
	if err != nil {
		// Drop what this pull stored and no image names (its lease is
		// gone by now).
		if gerr := e.images.GC(context.WithoutCancel(ctx)); gerr != nil {
			e.log.Warn("collect after failed pull", "err", gerr)
		}
		return false, err
	}
	progress(jsonstream.Message{Status: "Digest: " + rimg.Digest.String()})
	e.events.publish(events.ImageEventType, events.ActionPull, img.ID, map[string]string{"name": reference.FamiliarString(n.Named)})
	return existed, nil
}

// pullLayers downloads and unpacks the layers of rimg and records the
// image. Everything it stores or reuses is held in a lease (image/lease.go)
// until the image record names it, so an rmi or a GC meanwhile neither
// waits for the pull nor takes anything from it.
func (e *Engine) pullLayers(ctx context.Context, rimg *regclient.Image, cfg *dockerspec.DockerOCIImage, progress func(jsonstream.Message), tagRef, repoDigest string) (*image.Image, error) {
	ctx, release, err := e.images.Leased(ctx)
	if err != nil {
		return nil, err
	}
	defer release()

	// Layers of images already here, by blob digest.
	known := map[digest.Digest]image.Layer{}
	if imgs, err := e.images.List(ctx); err == nil {
		for _, im := range imgs {
			for _, l := range im.Layers {
				known[l.Digest] = l
			}
		}
	}
	diffIDs := cfg.RootFS.DiffIDs
	chains := identity.ChainIDs(append([]digest.Digest(nil), diffIDs...))
	// Hold every layer's blob and snapshot (their names are known from the
	// manifest and the config) in one transaction, before looking for the
	// ones to reuse (an rmi of the image they came from may be collecting
	// them right now) and before the others are stored (their own holds
	// then cost nothing).
	// The config and manifest blobs and the image go in it too, so
	// image.Create holds nothing new.
	cfgDigest := digest.FromBytes(rimg.Config)
	hold := []image.Resource{image.Blob(cfgDigest), image.Blob(digest.FromBytes(rimg.Manifest)), image.ImageResource(cfgDigest.String())}
	for i, d := range rimg.Layers {
		hold = append(hold, image.Blob(d.Digest), image.Snapshot(chains[i].String()))
	}
	if err := e.images.Hold(ctx, hold...); err != nil {
		return nil, err
	}

	type job struct {
		desc  ocispec.Descriptor
		layer image.Layer // set when the layer is already unpacked
		reuse bool        // unpacked snapshot present: nothing to do
		local bool        // blob present: unpack without downloading
		done  chan struct{}
		err   error
		// claimed is set by whoever fetches the layer: a background
		// download into the content store, or the unpacker itself, which
		// streams the layer straight into AddLayer when it gets there
		// first (no second copy, download and unpack overlap).
		claimed atomic.Bool
		mine    bool // claimed for the unpacker before downloads start
	}
	jobs := make([]*job, len(rimg.Layers))
	for i, d := range rimg.Layers {
		j := &job{desc: d, done: make(chan struct{})}
		jobs[i] = j
		if l, ok := known[d.Digest]; ok && l.DiffID == diffIDs[i] {
			if _, err := e.snaps.Stat(ctx, chains[i].String()); err == nil {
				j.reuse, j.layer = true, l
				progress(layerStatus(shortDigest(d.Digest), "Already exists"))
				close(j.done)
				continue
			}
			if _, err := e.content.Info(ctx, d.Digest); err == nil {
				j.local = true
				close(j.done)
				continue
			}
		}
		progress(layerStatus(shortDigest(d.Digest), "Pulling fs layer"))
	}

	// The first layer to fetch is streamed by the unpacker.
	for _, j := range jobs {
		if !j.reuse && !j.local {
			j.claimed.Store(true)
			j.mine = true
			break
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The download that failed first cancels the others: its error, not
	// their "context canceled", is the pull's (a full disk says so).
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxConcurrentDownloads)
	for _, j := range jobs {
		if j.reuse || j.local || j.claimed.Load() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(j.done)
			if err := acquireSlot(ctx, sem, func() { progress(layerStatus(shortDigest(j.desc.Digest), "Waiting")) }); err != nil {
				j.err = err
				return
			}
			defer func() { <-sem }()
			if !j.claimed.CompareAndSwap(false, true) {
				return // the unpacker streams it
			}
			j.err = e.download(ctx, rimg, j.desc, progress)
			if j.err != nil {
				failed.CompareAndSwap(nil, &j.err)
				cancel()
			}
		}()
	}
	defer wg.Wait()

	layers := make([]image.Layer, len(jobs))
	for i, j := range jobs {
		var parent digest.Digest
		if i > 0 {
			parent = chains[i-1]
		}
		var l image.Layer
		var err error
		if !j.reuse && !j.local && (j.mine || j.claimed.CompareAndSwap(false, true)) {
			l, err = e.stream(ctx, rimg, parent, j.desc, sem, progress)
		} else {
			<-j.done
			switch {
			case j.err != nil:
				err = j.err
			case j.reuse:
				layers[i] = j.layer
				continue
			default:
				l, err = e.unpack(ctx, parent, j.desc, progress)
			}
		}
		if err != nil {
			if f := failed.Load(); f != nil && ctx.Err() != nil {
				return nil, *f
			}
			return nil, err
		}
		if l.DiffID != diffIDs[i] {
			return nil, errdefs.Invalid("layer %s: content verification failed: its diff id is %s, the image config says %s", j.desc.Digest, l.DiffID, diffIDs[i])
		}
		layers[i] = l
		progress(layerStatus(shortDigest(j.desc.Digest), "Pull complete"))
	}
	img, err := e.images.Create(ctx, *cfg, layers, image.CreateOptions{
		Ref: tagRef, ConfigJSON: rimg.Config, ManifestJSON: rimg.Manifest, RepoDigest: repoDigest,
	})
	if err != nil {
		return nil, err
	}
	if img.ID != rimg.ConfigDigest.String() {
		return nil, errdefs.System("pulled image id %s is not the config digest %s", img.ID, rimg.ConfigDigest)
	}
	return img, nil
}

// acquireSlot takes one of the concurrent download slots; a layer that has
// to wait for one says "Waiting" first, as with dockerd.
func acquireSlot(ctx context.Context, sem chan struct{}, waiting func()) error {
	select {
	case sem <- struct{}{}:
		return nil
	default:
	}
	waiting()
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// download stores the blob d in the content store, verified.
func (e *Engine) download(ctx context.Context, rimg *regclient.Image, d ocispec.Descriptor, progress func(jsonstream.Message)) error {
	id := shortDigest(d.Digest)
	rc, err := rimg.Blob(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := e.images.Hold(ctx, image.Blob(d.Digest)); err != nil { // held already: free
		return err
	}
	w, err := e.content.Writer(ctx, d.Digest, d.Size)
	if err != nil {
		return err
	}
	defer w.Close()
	pr := &progressReader{r: rc, total: d.Size, status: "Downloading", id: id, progress: progress}
	if _, err := io.CopyBuffer(w, pr, make([]byte, 1<<20)); err != nil {
		return fmt.Errorf("download layer %s: %w", d.Digest, err)
	}
	progress(layerStatus(id, "Verifying Checksum"))
	if _, err := w.Commit(); err != nil {
		return fmt.Errorf("download layer %s: %w", d.Digest, err)
	}
	progress(layerStatus(id, "Download complete"))
	return nil
}

// stream fetches the layer d and unpacks it on top of parent as it
// arrives; AddLayer stores the blob too. The verifying reader fails the
// last read on a mismatch, so AddLayer commits nothing then.
func (e *Engine) stream(ctx context.Context, rimg *regclient.Image, parent digest.Digest, d ocispec.Descriptor, sem chan struct{}, progress func(jsonstream.Message)) (image.Layer, error) {
	id := shortDigest(d.Digest)
	if err := acquireSlot(ctx, sem, func() { progress(layerStatus(id, "Waiting")) }); err != nil {
		return image.Layer{}, err
	}
	defer func() { <-sem }()
	rc, err := rimg.Blob(ctx, d)
	if err != nil {
		return image.Layer{}, err
	}
	defer rc.Close()
	pr := &progressReader{r: rc, total: d.Size, status: "Downloading", id: id, progress: progress}
	l, err := e.images.AddLayer(ctx, parent, pr)
	if err != nil {
		if errors.Is(err, regclient.ErrVerify) {
			return image.Layer{}, errdefs.Wrap(errdefs.KindInvalid, fmt.Errorf("layer %s: %w", d.Digest, err))
		}
		return image.Layer{}, fmt.Errorf("layer %s: %w", d.Digest, err)
	}
	if l.Digest != d.Digest {
		return image.Layer{}, errdefs.Invalid("layer %s: content verification failed: stored as %s", d.Digest, l.Digest)
	}
	progress(layerStatus(id, "Verifying Checksum"))
	progress(layerStatus(id, "Download complete"))
	return l, nil
}

// unpack applies the stored blob d on top of parent.
func (e *Engine) unpack(ctx context.Context, parent digest.Digest, d ocispec.Descriptor, progress func(jsonstream.Message)) (image.Layer, error) {
	b, err := e.content.Open(ctx, d.Digest)
	if err != nil {
		return image.Layer{}, err
	}
	defer b.Close()
	// Check the blob again as it is read: it may have been stored by an
	// earlier pull that was interrupted.
	v := regclient.NewVerifier(b, d.Digest, d.Size)
	pr := &progressReader{r: v, total: d.Size, status: "Extracting", id: shortDigest(d.Digest), progress: progress}
	l, err := e.images.AddLayer(ctx, parent, pr)
	if err != nil {
		if errors.Is(err, regclient.ErrVerify) {
			return image.Layer{}, errdefs.Wrap(errdefs.KindInvalid, fmt.Errorf("layer %s: %w", d.Digest, err))
		}
		return image.Layer{}, fmt.Errorf("layer %s: %w", d.Digest, err)
	}
	return l, nil
}

// progressReader reports Docker's per-layer progress about every 512 KiB.
type progressReader struct {
	r        io.Reader
	n, last  int64
	total    int64
	status   string
	id       string
	progress func(jsonstream.Message)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.n-p.last >= 512<<10 || (err == io.EOF && p.n != p.last) {
		p.last = p.n
		if p.status == "Extracting" {
			faults.Point("pull-mid-layer")
		}
		p.progress(jsonstream.Message{Status: p.status, ID: p.id, Progress: &jsonstream.Progress{Current: p.n, Total: p.total}})
	}
	return n, err
}
