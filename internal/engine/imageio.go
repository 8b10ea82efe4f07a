package engine

// Image exchange and container snapshots: save/load, commit, export, image
// prune and disk usage.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/volume"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/archive"
	"github.com/skiff-dev/skiff/internal/containerfs"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/faults"
	"github.com/skiff-dev/skiff/internal/filters"
	"github.com/skiff-dev/skiff/internal/image"
	"github.com/skiff-dev/skiff/internal/mount"
)

// ImageSave writes the named images to w as one archive (Docker's format,
// which is also an OCI layout).
func (e *Engine) ImageSave(ctx context.Context, names []string, w io.Writer) error {
	if err := e.images.Save(ctx, w, names); err != nil {
		return err
	}
	for _, n := range names {
		if img, err := e.images.Get(ctx, n); err == nil {
			e.events.publish(events.ImageEventType, events.ActionSave, img.ID, map[string]string{"name": n})
		}
	}
	return nil
}

// ImageLoad records the images of the archive r and reports each as the
// line docker prints ("Loaded image: NAME" or "Loaded image ID: ID"), after
// a "Loading layer" progress for each layer unless quiet.
func (e *Engine) ImageLoad(ctx context.Context, r io.Reader, opts LoadOptions) error {
	send := progressFunc(opts.Progress)
	report := func(line string) { send(jsonstream.Message{Stream: line}) }
	var progress image.LoadProgress
	if !opts.Quiet {
		// dockerd's "Loading layer" bar for each layer unpacked.
		progress = func(id string, current, total int64) {
			m := layerStatus(id, "Loading layer")
			m.Progress.Current, m.Progress.Total = current, total
			send(m)
		}
	}
	loaded, err := e.images.LoadWithProgress(ctx, r, progress)
	for _, li := range loaded {
		for _, r := range li.Replaced {
			report(fmt.Sprintf("The image %s already exists, renaming the old one with ID %s to empty string\n", r[0], r[1]))
		}
		if len(li.Tags) == 0 {
			report("Loaded image ID: " + li.ID + "\n")
		}
		for _, t := range li.Tags {
			report("Loaded image: " + t + "\n")
		}
		e.events.publish(events.ImageEventType, events.ActionLoad, li.ID, map[string]string{"name": li.ID})
	}
	return err
}

// LoadOptions describe POST /images/load.
type LoadOptions struct {
	// Quiet leaves out the layers' progress; the "Loaded image" lines stay.
	Quiet bool
	// Progress receives the messages of the load's JSON stream. Never nil.
	Progress func(jsonstream.Message)
}

// CommitOptions describe `docker commit`.
type CommitOptions struct {
	Container string
	Ref       string   // repo[:tag], "" for none
	Comment   string   // -m
	Author    string   // -a
	Changes   []string // -c: Dockerfile instructions
	// Pause freezes a running container while its changes are read (the
	// API's default), so the layer is one moment of its files.
	Pause  bool
	Config *container.Config // the request body, merged over the container's config
}

// ContainerCommit makes an image of the container's image plus what the
// container changed (its upper dir as one layer, deletions as whiteouts).
func (e *Engine) ContainerCommit(ctx context.Context, opts CommitOptions) (string, error) {
	c, err := e.reg.get(opts.Container)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	imageID, snapKey, removing := c.ImageID, c.SnapshotKey, c.markedForRemoval()
	running, paused := c.State.Running, c.State.Paused
	ccfg := *c.Config
	cmd := append([]string{c.Path}, c.Args...)
	c.mu.Unlock()
	if removing {
		return "", errdefs.Conflict("container %s is being removed", opts.Container)
	}
	base, err := e.images.Get(ctx, imageID)
	if err != nil {
		return "", fmt.Errorf("image of container %s: %w", opts.Container, err)
	}
	if opts.Config != nil {
		mergeConfig(&ccfg, opts.Config)
	}
	cfg, err := imageConfigOf(&ccfg)
	if err != nil {
		return "", err
	}
	if err := image.ApplyChanges(&cfg, opts.Changes); err != nil {
		return "", err
	}
	upper, err := e.snaps.UpperDir(ctx, snapKey)
	if err != nil {
		return "", fmt.Errorf("container %s: %w", opts.Container, err)
	}
	if opts.Pause && running && !paused {
		if unpause := e.commitPause(ctx, c); unpause != nil {
			defer unpause()
		}
	}

	// The new layer and the base's layers are held until the image names
	// them; an rmi meanwhile waits for nothing.
	ctx, release, err := e.images.Leased(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.Diff(ctx, upper, pw)) }()
	var parent digest.Digest
	if len(base.DiffIDs) > 0 {
		parent = identity.ChainID(base.DiffIDs)
	}
	layer, err := e.images.AddLayer(ctx, parent, pr)
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", opts.Container, err)
	}
	faults.Point("commit-after-layer")

	created := time.Now().UTC()
	newImg := dockerspec.DockerOCIImage{
		Image: ocispec.Image{
			Created: &created, Author: opts.Author, Platform: base.Config.Platform,
			RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: append([]digest.Digest(nil), base.DiffIDs...)},
			History: append([]ocispec.History(nil), base.Config.History...),
		},
		Config: cfg,
	}
	h := ocispec.History{Created: &created, Author: opts.Author, CreatedBy: strings.Join(cmd, " "), Comment: opts.Comment}
	layers := append([]image.Layer(nil), base.Layers...)
	if layer.DiffID == emptyTarDiffID {
		h.EmptyLayer = true // as docker: no change, no layer
	} else {
		newImg.RootFS.DiffIDs = append(newImg.RootFS.DiffIDs, layer.DiffID)
		layers = append(layers, layer)
	}
	newImg.History = append(newImg.History, h)

	ref := ""
	if opts.Ref != "" {
		n, err := image.ParseReference(opts.Ref)
		if err != nil {
			return "", err
		}
		ref = n.String()
	}
	img, err := e.images.Create(ctx, newImg, layers, image.CreateOptions{Ref: ref, Parent: base.ID})
	if err != nil {
		return "", err
	}
	e.containerEvent(c, events.ActionCommit, map[string]string{"comment": opts.Comment, "imageID": img.ID, "imageRef": opts.Ref})
	return img.ID, nil
}

// emptyTarDiffID is the digest of an empty tar (1024 zero bytes).
const emptyTarDiffID = digest.Digest("sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef")

// mergeConfig fills in what the commit request's config sets.
func mergeConfig(dst, src *container.Config) {
	if src.Cmd != nil {
		dst.Cmd = src.Cmd
	}
	if src.Entrypoint != nil {
		dst.Entrypoint = src.Entrypoint
	}
	if src.Env != nil {
		dst.Env = src.Env
	}
	if src.User != "" {
		dst.User = src.User
	}
	if src.WorkingDir != "" {
		dst.WorkingDir = src.WorkingDir
	}
	if src.Labels != nil {
		dst.Labels = src.Labels
	}
	if src.ExposedPorts != nil {
		dst.ExposedPorts = src.ExposedPorts
	}
	if src.Volumes != nil {
		dst.Volumes = src.Volumes
	}
	if src.StopSignal != "" {
		dst.StopSignal = src.StopSignal
	}
}

// imageConfigOf keeps the parts of a container's config that an image
// carries; the JSON field names are the same on both sides.
func imageConfigOf(c *container.Config) (dockerspec.DockerOCIImageConfig, error) {
	var out dockerspec.DockerOCIImageConfig
	b, err := json.Marshal(c)
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err != nil {
		return out, fmt.Errorf("convert container config: %w", err)
	}
	return out, nil
}

// ContainerExport writes the container's root filesystem, flattened, as a
// tar. Its layers, the container's own on top, are mounted as a read-only
// overlay, detached (no mount namespace sees it), which goes away when the
// descriptor is closed. Being read-only, it can share the upper directory
// with a running container.
func (e *Engine) ContainerExport(ctx context.Context, id string, w io.Writer) error {
	c, err := e.reg.get(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	key := c.SnapshotKey
	c.mu.Unlock()
	dirs, err := e.snaps.Dirs(ctx, key)
	if err != nil {
		return fmt.Errorf("export %s: %w", id, err)
	}
	root := mount.Overlay(append([]string{dirs.Upper}, dirs.Lowers...), "", "", "ro")
	fd, err := mount.Detached([]mount.Mount{root})
	if err != nil {
		return fmt.Errorf("export %s: mount root filesystem: %w", id, err)
	}
	err = archive.Tar(ctx, containerfs.FdPath(fd), w)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("export %s: %w", id, err)
	}
	e.containerEvent(c, events.ActionExport, nil)
	return nil
}

// ImagesPrune removes dangling images (all unused ones with all=true in
// the filters' "dangling=false") that no container uses, with Docker's
// until and label filters.
func (e *Engine) ImagesPrune(ctx context.Context, f filters.Args) (imagetypes.PruneReport, error) {
	rep := imagetypes.PruneReport{ImagesDeleted: []imagetypes.DeleteResponse{}}
	if err := f.Validate("dangling", "until", "label", "label!"); err != nil {
		return rep, err
	}
	danglingOnly := true
	if v, set, err := f.Bool("dangling"); err != nil {
		return rep, err
	} else if set {
		danglingOnly = v
	}
	var until time.Time
	if v := f.Get("until"); len(v) > 0 {
		t, err := parseTimestamp(v[0])
		if err != nil {
			return rep, err
		}
		until = t
	}
	imgs, err := e.images.List(ctx)
	if err != nil {
		return rep, err
	}
	before := layersSize(imgs)
	used := e.imagesInUse()
	parents := parentIDs(imgs)
	// Images a lease holds are a running build's intermediate images (or
	// an image being recorded): not dangling yet.
	leased, err := e.images.LeasedImages(ctx)
	if err != nil {
		return rep, err
	}
	for _, img := range imgs {
		if leased[img.ID] {
			continue
		}
		labels := img.Config.Config.Labels
		// Dangling means untagged and without children: a build's
		// intermediate images go with the image built on them (Delete
		// prunes untagged parents), not on their own.
		if used[img.ID] > 0 || (danglingOnly && (len(img.RepoTags) > 0 || parents[img.ID])) ||
			(!until.IsZero() && !img.Created.Before(until)) ||
			!f.MatchLabels("label", labels) || matchesAnyLabel(f.Get("label!"), labels) {
			continue
		}
		items, err := e.ImageRemove(ctx, img.ID, true, false)
		if err != nil {
			if errdefs.IsNotFound(err) || errdefs.IsConflict(err) {
				continue // gone with a child, or a parent still needed
			}
			return rep, err
		}
		rep.ImagesDeleted = append(rep.ImagesDeleted, items...)
	}
	if after, err := e.images.List(ctx); err == nil {
		if d := before - layersSize(after); d > 0 {
			rep.SpaceReclaimed = uint64(d)
		}
	}
	e.events.publish(events.ImageEventType, events.ActionPrune, "", map[string]string{"reclaimed": strconv.FormatUint(rep.SpaceReclaimed, 10)})
	return rep, nil
}

// layersSize is the unpacked size of the distinct layers of imgs: the disk
// the images take, counting shared layers once.
func layersSize(imgs []*image.Image) int64 {
	seen := map[digest.Digest]bool{}
	var n int64
	for _, img := range imgs {
		for i, c := range image.ChainIDs(img) {
			if !seen[c] {
				seen[c] = true
				n += img.LayerSizes[i]
			}
		}
	}
	return n
}

// DiskUsage is GET /system/df as API versions before 1.52 answer it.
type DiskUsage struct {
	LayersSize int64
	Images     []*imagetypes.Summary
	Containers []*container.Summary
	Volumes    []*volume.Volume
	BuildCache []*build.CacheRecord
}

// SystemDiskUsage reports what images, containers and volumes take on disk;
// types limits it to "image", "container", "volume", "build-cache" (all when
// empty). The build cache is the builder's: the apiserver adds it.
func (e *Engine) SystemDiskUsage(ctx context.Context, types []string) (*DiskUsage, error) {
	want := func(t string) bool {
		if len(types) == 0 {
			return true
		}
		for _, x := range types {
			if x == t {
				return true
			}
		}
		return false
	}
	du := &DiskUsage{Images: []*imagetypes.Summary{}, Containers: []*container.Summary{}, Volumes: []*volume.Volume{}, BuildCache: []*build.CacheRecord{}}
	if want("image") {
		imgs, err := e.images.List(ctx)
		if err != nil {
			return nil, err
		}
		du.LayersSize = layersSize(imgs)
		users := map[digest.Digest]int{}
		for _, img := range imgs {
			for _, c := range image.ChainIDs(img) {
				users[c]++
			}
		}
		list, err := e.ImageList(ctx, ImageListOptions{All: true, Filters: filters.Args{}})
		if err != nil {
			return nil, err
		}
		byID := map[string]*image.Image{}
		for _, img := range imgs {
			byID[img.ID] = img
		}
		for i := range list {
			s := list[i]
			if img := byID[s.ID]; img != nil {
				var shared int64
				for j, c := range image.ChainIDs(img) {
					if users[c] > 1 {
						shared += img.LayerSizes[j]
					}
				}
				s.SharedSize = shared
			}
			du.Images = append(du.Images, &s)
		}
	}
	if want("container") {
		list, err := e.ContainerList(ctx, ListOptions{All: true, Size: true, Filters: filters.Args{}})
		if err != nil {
			return nil, err
		}
		for i := range list {
			s := list[i]
			if img, err := e.images.Get(ctx, s.ImageID); err == nil {
				s.SizeRootFs = img.Size + s.SizeRw
			}
			du.Containers = append(du.Containers, &s)
		}
	}
	if want("volume") {
		vols, err := e.vols.List()
		if err != nil {
			return nil, err
		}
		for _, v := range vols {
			// As dockerd: volumes with mount options (tmpfs, a device,
			// NFS) hold nothing on this disk and are left out.
			if len(v.Options) > 0 {
				continue
			}
			vi := e.volumeInfo(v, true) // volumes.go: UsageData with Size and RefCount
			du.Volumes = append(du.Volumes, &vi)
		}
	}
	return du, nil
}

// historyIDs names history rows as dockerd does: the newest row is the
// image, each older row the next image up the parent chain (commit and
// build record it) while there is one.
func (e *Engine) historyIDs(ctx context.Context, img *image.Image, rows []imagetypes.HistoryResponseItem) {
	for i := range rows {
		rows[i].ID = img.ID
		if len(img.RepoTags) > 0 {
			rows[i].Tags = familiar(img.RepoTags)
		}
		if img.Parent == "" {
			return
		}
		parent, err := e.images.Get(ctx, img.Parent)
		if err != nil {
			return
		}
		img = parent
	}
}

// commitPauseMarker, in the bundle of a container a commit paused, says
// the pause is the commit's, not the user's.
const commitPauseMarker = "commit-paused"

// commitPause pauses c for a commit, as dockerd does (pause and unpause
// events included), and returns what ends the pause; nil if c could not be
// paused (it exited in between), which does not fail the commit. The
// marker file lets an engine that died mid-commit give the container back
// running at restore (resumeCommitPause): a user never paused it.
func (e *Engine) commitPause(ctx context.Context, c *Container) (unpause func()) {
	marker := filepath.Join(e.bundleDir(c.ID), commitPauseMarker)
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		e.log.Warn("commit without pause: cannot mark the pause", "container", c.ID, "err", err)
		return nil
	}
	if e.ContainerPause(ctx, c.ID) != nil {
		os.Remove(marker)
		return nil
	}
	return func() {
		if err := e.ContainerUnpause(context.WithoutCancel(ctx), c.ID); err != nil {
			e.log.Warn("unpause after commit", "container", c.ID, "err", err)
		}
		os.Remove(marker)
	}
}

// resumeCommitPause runs at restore for a live container: a marker left by
// a commit the engine died in means the container is paused only for that
// commit, so it is unpaused.
func (e *Engine) resumeCommitPause(ctx context.Context, c *Container) {
	marker := filepath.Join(e.bundleDir(c.ID), commitPauseMarker)
	if _, err := os.Stat(marker); err != nil {
		return
	}
	c.mu.Lock()
	paused := c.State.Paused
	c.mu.Unlock()
	if paused {
		if err := e.ContainerUnpause(ctx, c.ID); err != nil {
			e.log.Warn("unpause after an interrupted commit", "container", c.ID, "err", err)
			return
		}
		e.log.Info("unpaused: the engine stopped during a commit", "container", c.ID)
	}
	os.Remove(marker)
}
