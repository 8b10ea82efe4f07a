package engine

// The engine's side of Dockerfile builds: BuildBackend implements
// builder.Backend (internal/builder/backend.go) without importing the
// builder, which sits above the engine.

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/archive"
	"github.com/skiff-dev/skiff/internal/containerfs"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/faults"
	"github.com/skiff-dev/skiff/internal/image"
	"github.com/skiff-dev/skiff/internal/meta"
	"github.com/skiff-dev/skiff/internal/mount"
)

// BuildBackend is what a Dockerfile build needs from the engine.
type BuildBackend struct {
	e *Engine
}

// BuildBackend returns the engine's implementation of builder.Backend.
func (e *Engine) BuildBackend() *BuildBackend {
	e.buildOnce.Do(func() { e.build = &BuildBackend{e: e} })
	return e.build
}

// MetaDB is the engine's metadata database, where the builder keeps its
// cache records and the build context's hash cache.
func (e *Engine) MetaDB() *meta.DB { return e.db }

// ImageGet returns the local image refOrID.
func (b *BuildBackend) ImageGet(ctx context.Context, refOrID string) (*image.Image, error) {
	return b.e.images.Get(ctx, refOrID)
}

// ProgressWriter is implemented by a build output that is a JSON message
// stream (the apiserver's). A FROM's pull then sends its progress messages
// into it as they are, as dockerd's legacy builder does, so a terminal
// client draws one line per layer.
type ProgressWriter interface {
	WriteProgress(jsonstream.Message)
}

// ImagePull pulls ref through the engine's pull. Its progress goes to out's
// WriteProgress when out has one; otherwise each status becomes a plain line
// ("ID: Status") in out, the byte-count updates of downloads left out, as a
// non-terminal docker client shows them.
func (b *BuildBackend) ImagePull(ctx context.Context, ref, platform, registryAuth string, out io.Writer) error {
	if pw, ok := out.(ProgressWriter); ok {
		return b.e.ImagePull(ctx, ref, PullOptions{Platform: platform, RegistryAuth: registryAuth, Progress: pw.WriteProgress})
	}
	return b.e.ImagePull(ctx, ref, PullOptions{Platform: platform, RegistryAuth: registryAuth, Progress: func(m jsonstream.Message) {
		if m.Progress != nil && (m.Progress.Current > 0 || m.Progress.Total > 0) {
			return
		}
		line := m.Status
		if m.ID != "" {
			line = m.ID + ": " + line
		}
		io.WriteString(out, line+"\n")
	}})
}

// AddLayer unpacks the layer tar r on top of image imageID's layers ("":
// a base layer) and stores it, held in the lease ctx carries (Lease).
func (b *BuildBackend) AddLayer(ctx context.Context, imageID string, r io.Reader) (image.Layer, error) {
	var parent digest.Digest
	if imageID != "" {
		img, err := b.e.images.Get(ctx, imageID)
		if err != nil {
			return image.Layer{}, err
		}
		if len(img.DiffIDs) > 0 {
			parent = identity.ChainID(img.DiffIDs)
		}
	}
	return b.e.images.AddLayer(ctx, parent, r)
}

// Lease starts the lease of one build (image/lease.go): every layer, blob
// and image the build stores with the returned context (AddLayer, Run's
// layer, CreateImage, a FROM's pull) is held until release, so a GC or an
// image prune during the build takes nothing it still needs, and none of
// them waits for the build.
func (b *BuildBackend) Lease(ctx context.Context) (context.Context, func(), error) {
	return b.e.images.Leased(ctx)
}

// CreateImage records an untagged image built on parent. Like dockerd's
// builder it publishes no event: intermediate images are not announced,
// only the tags of the result (TagImage).
func (b *BuildBackend) CreateImage(ctx context.Context, cfg dockerspec.DockerOCIImage, layers []image.Layer, parent string) (*image.Image, error) {
	return b.e.images.Create(ctx, cfg, layers, image.CreateOptions{Parent: parent})
}

// TagImage points ref at imageID, as ImageTag does, with its event.
func (b *BuildBackend) TagImage(ctx context.Context, imageID, ref string) error {
	if err := b.e.images.Tag(ctx, imageID, ref); err != nil {
		return err
	}
	b.e.events.publish(events.ImageEventType, events.ActionTag, imageID, map[string]string{"name": familiarRef(ref)})
	return nil
}

// rootfsKeyPrefix names the short-lived views ImageRootFS makes. It starts
// with the image store's prefix for temporary snapshots ("import-"), so a
// view left by a crash is collected by the store's GC at the next start.
const rootfsKeyPrefix = "import-rootfs-"

// ImageRootFS gives a read-only view of image imageID's root filesystem
// ("" = scratch: an empty directory) as a path that works from any
// goroutine of this process (/proc/self/fd/N). Nothing is mounted where
// the host could see it: several layers are a detached overlay mount
// (fsopen/fsmount), one layer a detached read-only clone of its directory
// (open_tree), scratch a detached read-only tmpfs. Each goes away when
// release closes its descriptor.
func (b *BuildBackend) ImageRootFS(ctx context.Context, imageID string) (string, func(), error) {
	var chain string
	if imageID != "" {
		img, err := b.e.images.Get(ctx, imageID)
		if err != nil {
			return "", nil, err
		}
		chain = b.e.images.RootFSParent(img)
	}
	var fd int
	var err error
	if chain == "" {
		fd, err = emptyReadOnlyFS()
	} else {
		fd, err = b.mountLayers(ctx, chain)
	}
	if err != nil {
		return "", nil, fmt.Errorf("root filesystem of %s: %w", shortImageID(imageID), err)
	}
	return containerfs.FdPath(fd), func() { unix.Close(fd) }, nil
}

// mountLayers mounts the committed snapshot chain (and its parents)
// read-only, detached. The view that gives the lower directories is
// removed at once: the mount holds on to the directories it uses.
func (b *BuildBackend) mountLayers(ctx context.Context, chain string) (int, error) {
	var rnd [6]byte
	rand.Read(rnd[:])
	key := rootfsKeyPrefix + hex.EncodeToString(rnd[:])
	// Held, so a GC meanwhile neither takes the view nor the layers under
	// it (ctx carries the build's lease; without one, a lease for this
	// call).
	ctx, release, err := b.e.images.Leased(ctx)
	if err != nil {
		return -1, err
	}
	defer release()
	if err := b.e.images.Hold(ctx, image.Snapshot(key), image.Snapshot(chain)); err != nil {
		return -1, err
	}
	mounts, err := b.e.snaps.View(ctx, key, chain)
	if err != nil {
		return -1, err
	}
	defer b.e.snaps.Remove(context.WithoutCancel(ctx), key)
	return mount.Detached(mounts)
}

// emptyReadOnlyFS is a detached, read-only, empty tmpfs: the root
// filesystem of scratch.
func emptyReadOnlyFS() (int, error) {
	return mount.Detached([]mount.Mount{{Type: "tmpfs", Source: "tmpfs", Options: []string{"ro", "mode=0755"}}})
}

func shortImageID(id string) string {
	if id == "" {
		return "scratch"
	}
	return image.ShortID(id)
}

// Run runs one RUN step in a throwaway container of image imageID, through
// the same create, attach, start, wait and remove paths as `docker run`.
// The output is copied to out as it comes. On exit 0 the container's
// changes become a layer on imageID's layers; a non-zero exit is returned
// as its code with a nil error. The container (and its anonymous volumes)
// is removed in every case, also when ctx ends (the client went away).
// buildStepLabel marks the containers of RUN steps.
const buildStepLabel = "org.skiff.build-step"

// removeBuildLeftovers removes the RUN containers of builds the engine was
// running when it died: their clients are gone and nothing will commit
// them. Called at start, before the API serves.
func (e *Engine) removeBuildLeftovers(ctx context.Context) {
	for _, c := range e.reg.all() {
		c.mu.Lock()
		step := c.Config != nil && c.Config.Labels[buildStepLabel] == "true"
		c.mu.Unlock()
		if !step {
			continue
		}
		if err := e.ContainerRemove(ctx, c.ID, true, true); err != nil && !errdefs.IsNotFound(err) {
			e.log.Warn("remove leftover build container", "container", c.ID, "err", err)
		}
	}
}

func (b *BuildBackend) Run(ctx context.Context, imageID string, cfg *container.Config, hostCfg *container.HostConfig, out io.Writer) (image.Layer, int, error) {
	e := b.e
	if imageID == "" {
		return image.Layer{}, 0, errdefs.Invalid("cannot run a command in an empty image (FROM scratch without files): there is no shell or program to run")
	}
	c := *cfg
	c.Image = imageID
	// RUN ignores the image's entrypoint. A non-nil empty entrypoint keeps
	// create from filling it in from the image.
	if len(c.Entrypoint) == 0 || (len(c.Entrypoint) == 1 && c.Entrypoint[0] == "") {
		c.Entrypoint = []string{}
	}
	c.Tty, c.OpenStdin, c.StdinOnce, c.AttachStdin = false, false, false, false
	c.AttachStdout, c.AttachStderr = true, true
	// A build step is not probed: a HEALTHCHECK is for the image's users.
	c.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
	// Marked, so an engine that died during the step removes it when it
	// starts again (removeBuildLeftovers): no build survives the engine.
	c.Labels = maps.Clone(c.Labels)
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	c.Labels[buildStepLabel] = "true"
	hc := container.HostConfig{}
	if hostCfg != nil {
		hc = *hostCfg
	}
	if hc.NetworkMode == "" || hc.NetworkMode == "default" {
		hc.NetworkMode = "bridge"
	}
	hc.AutoRemove = false
	hc.RestartPolicy = container.RestartPolicy{}
	// The output goes to the client only; there is no one to read a log.
	hc.LogConfig = container.LogConfig{Type: "none"}

	resp, err := e.ContainerCreate(ctx, "", &container.CreateRequest{Config: &c, HostConfig: &hc})
	if err != nil {
		return image.Layer{}, 0, fmt.Errorf("create build container: %w", err)
	}
	defer func() {
		if err := e.ContainerRemove(context.WithoutCancel(ctx), resp.ID, true, true); err != nil && !errdefs.IsNotFound(err) {
			e.log.Warn("remove build container", "container", resp.ID, "err", err)
		}
	}()
	if ro, ok := out.(interface{ ContainerCreated(id string) }); ok {
		ro.ContainerCreated(resp.ID) // " ---> Running in ..." (builder.RunOutput)
	}
	ct, err := e.reg.get(resp.ID)
	if err != nil {
		return image.Layer{}, 0, err
	}
	// Attach before start, as docker run does, so no output is missed.
	att := &pendingAttach{opts: AttachOptions{Stdout: out, Stderr: out, Stream: true}, ready: make(chan attachResult, 1)}
	ct.mu.Lock()
	ct.attachers = append(ct.attachers, att)
	ct.mu.Unlock()
	exitc, err := e.ContainerWait(ctx, resp.ID, string(container.WaitConditionNextExit))
	if err != nil {
		return image.Layer{}, 0, err
	}
	if err := e.ContainerStart(ctx, resp.ID); err != nil {
		return image.Layer{}, 0, err
	}
	faults.Point("build-mid-run")
	pumped := make(chan error, 1)
	select {
	case r := <-att.ready:
		if r.err != nil {
			return image.Layer{}, 0, fmt.Errorf("attach to build container: %w", r.err)
		}
		go func() {
			defer r.conn.Close()
			pumped <- pump(ctx, r.conn, att.opts)
		}()
	default:
		// start hands every pending attacher its connection before it
		// returns; not getting one means the output is lost.
		return image.Layer{}, 0, errdefs.System("build container %s started without its output attached", image.ShortID(resp.ID))
	}
	var code int
	select {
	case w := <-exitc:
		code = int(w.StatusCode)
	case <-ctx.Done():
		return image.Layer{}, 0, ctx.Err()
	}
	// All output is written before the step's result is reported.
	select {
	case <-pumped:
	case <-ctx.Done():
		return image.Layer{}, 0, ctx.Err()
	}
	if code != 0 {
		return image.Layer{}, code, nil
	}

	upper, err := e.snaps.UpperDir(ctx, ct.SnapshotKey)
	if err != nil {
		return image.Layer{}, 0, fmt.Errorf("build container %s: %w", image.ShortID(resp.ID), err)
	}
	// The layer is held in the build's lease (ctx) until the builder's
	// CreateImage names it.
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(diffWithoutMountPoints(ctx, upper, pw)) }()
	layer, err := b.AddLayer(ctx, imageID, pr)
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return image.Layer{}, 0, fmt.Errorf("store the changes of the RUN step: %w", err)
	}
	return layer, 0, nil
}

// mountPointFiles are the files the runtime binds the engine's own copies
// over (Docker keeps their mount points in an init layer below the
// container's, so they never reach a RUN step's layer). Writes to them
// land in the engine's copies, so what the upper directory holds at these
// paths is only the empty mount point.
var mountPointFiles = map[string]bool{"etc/hosts": true, "etc/hostname": true, "etc/resolv.conf": true}

// mountPointDirs are the directories made to hold mount points (the
// runtime creates /proc, /sys and /dev when an image lacks them; /etc is
// copied up or made for the files above). They are left out of the layer
// when nothing else under them changed.
var mountPointDirs = map[string]bool{"etc/": true, "proc/": true, "sys/": true, "dev/": true}

// diffWithoutMountPoints writes the layer of the upper directory upper
// (archive.Diff) without the runtime's mount points.
func diffWithoutMountPoints(ctx context.Context, upper string, w io.Writer) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.Diff(ctx, upper, pw)) }()
	defer pr.Close()
	tr := tar.NewReader(pr)
	tw := tar.NewWriter(w)
	var held *tar.Header // a mount point directory, written once a child shows it is needed
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read changes: %w", err)
		}
		if held != nil && !strings.HasPrefix(h.Name, held.Name) {
			held = nil // nothing under it but mount points
		}
		if mountPointFiles[h.Name] && h.Typeflag == tar.TypeReg && h.Size == 0 {
			continue
		}
		if mountPointDirs[h.Name] && h.Typeflag == tar.TypeDir {
			held = h
			continue
		}
		if held != nil {
			if err := tw.WriteHeader(held); err != nil {
				return err
			}
			held = nil
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("copy changes: %w", err)
		}
	}
	return tw.Close()
}
