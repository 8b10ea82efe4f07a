package engine

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/image"
)

// ImageImport creates an image from a root filesystem tarball.
func (e *Engine) ImageImport(ctx context.Context, src io.Reader, opts ImportOptions) (string, error) {
	ref := opts.Repo
	if ref != "" && opts.Tag != "" {
		ref += ":" + opts.Tag
	}
	if opts.Platform != "" && !strings.HasPrefix(opts.Platform, "linux") {
		return "", errdefs.Invalid("operating system is not supported: %s", opts.Platform)
	}
	img, err := e.images.Import(ctx, src, image.ImportOptions{Ref: ref, Changes: opts.Changes, Message: opts.Message})
	if err != nil {
		return "", err
	}
	e.events.publish(events.ImageEventType, events.ActionImport, img.ID, map[string]string{"name": ref})
	return img.ID, nil
}

// ImageList returns the images as `docker images` shows them.
func (e *Engine) ImageList(ctx context.Context, opts ImageListOptions) ([]imagetypes.Summary, error) {
	f := opts.Filters
	if err := f.Validate("dangling", "label", "reference", "before", "since", "until"); err != nil {
		return nil, err
	}
	dangling, danglingSet, err := f.Bool("dangling")
	if err != nil {
		return nil, err
	}
	imgs, err := e.images.List(ctx)
	if err != nil {
		return nil, err
	}
	used := e.imagesInUse()
	var before, since time.Time
	if v := f.Get("before"); len(v) > 0 {
		img, err := e.images.Get(ctx, v[0])
		if err != nil {
			return nil, err
		}
		before = img.Created
	}
	if v := f.Get("since"); len(v) > 0 {
		img, err := e.images.Get(ctx, v[0])
		if err != nil {
			return nil, err
		}
		since = img.Created
	}
	parents := parentIDs(imgs)
	out := []imagetypes.Summary{}
	for _, img := range imgs {
		if !opts.All && isIntermediate(img, parents) {
			continue // as dockerd: build steps' images only with -a
		}
		tags := familiar(img.RepoTags)
		if opts.HidePause && !opts.All && !f.Has("reference") && isPauseImage(tags) {
			continue
		}
		if danglingSet && dangling != (len(tags) == 0) {
			continue
		}
		if !f.MatchLabels("label", img.Config.Config.Labels) {
			continue
		}
		if f.Has("reference") {
			// As dockerd: only the matching tags are listed.
			var kept []string
			for _, t := range tags {
				repo := t // the tag's colon, not a registry port's
				if i := strings.LastIndex(t, ":"); i > strings.LastIndex(t, "/") {
					repo = t[:i]
				}
				if f.MatchGlob("reference", t) || f.MatchGlob("reference", repo) {
					kept = append(kept, t)
				}
			}
			if len(kept) == 0 {
				continue
			}
			tags = kept
		}
		if (!before.IsZero() && !img.Created.Before(before)) || (!since.IsZero() && !img.Created.After(since)) {
			continue
		}
		labels := img.Config.Config.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		out = append(out, imagetypes.Summary{
			ID: img.ID, RepoTags: nonNil(tags), RepoDigests: nonNil(familiar(img.RepoDigests)),
			Created: img.Created.Unix(), Size: img.Size, Labels: labels,
			Containers: int64(used[img.ID]), SharedSize: -1,
		})
	}
	return out, nil
}

// ImageInspect returns Docker's image inspect document.
func (e *Engine) ImageInspect(ctx context.Context, ref string) (*imagetypes.InspectResponse, error) {
	img, err := e.images.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	cfg := img.Config.Config
	layers := make([]string, len(img.DiffIDs))
	for i, d := range img.DiffIDs {
		layers[i] = d.String()
	}
	created := ""
	if !img.Created.IsZero() {
		created = img.Created.UTC().Format(time.RFC3339Nano)
	}
	comment := ""
	if h := img.Config.History; len(h) > 0 {
		comment = h[len(h)-1].Comment
	}
	return &imagetypes.InspectResponse{
		ID: img.ID, RepoTags: nonNil(familiar(img.RepoTags)), RepoDigests: nonNil(familiar(img.RepoDigests)),
		Created: created, Author: img.Config.Author, Comment: comment, Config: &cfg,
		Architecture: img.Config.Architecture, Variant: img.Config.Variant, Os: img.Config.OS,
		Size: img.Size, RootFS: imagetypes.RootFS{Type: "layers", Layers: layers},
	}, nil
}

// ImageTag adds repo:tag to an image.
func (e *Engine) ImageTag(ctx context.Context, source, repo, tag string) error {
	img, err := e.images.Get(ctx, source)
	if err != nil {
		return err
	}
	ref := repo
	if tag != "" {
		ref += ":" + tag
	}
	if err := e.images.Tag(ctx, img.ID, ref); err != nil {
		return err
	}
	e.events.publish(events.ImageEventType, events.ActionTag, img.ID, map[string]string{"name": familiarRef(ref)})
	return nil
}

// ImageRemove untags and deletes, refusing images that containers use.
func (e *Engine) ImageRemove(ctx context.Context, ref string, force, noPrune bool) ([]imagetypes.DeleteResponse, error) {
	used := e.imagesInUse()
	imgID := ""
	if img, err := e.images.Get(ctx, ref); err == nil {
		imgID = img.ID
	}
	items, err := e.images.Delete(ctx, ref, image.DeleteOptions{
		Force: force, NoPrune: noPrune,
		InUse:   func(id string) bool { return used[id] > 0 },
		UsedBy:  func(id string) string { return e.containerUsing(id, false) },
		Running: func(id string) string { return e.containerUsing(id, true) },
	})
	out := make([]imagetypes.DeleteResponse, 0, len(items))
	for _, it := range items {
		out = append(out, imagetypes.DeleteResponse{Untagged: it.Untagged, Deleted: it.Deleted})
		if it.Untagged != "" {
			// As Docker: the untag event names the image by its ID.
			id := imgID
			if id == "" {
				id = it.Untagged
			}
			e.events.publish(events.ImageEventType, events.ActionUnTag, id, map[string]string{"name": id})
		}
		if it.Deleted != "" {
			e.events.publish(events.ImageEventType, events.ActionDelete, it.Deleted, map[string]string{"name": it.Deleted})
		}
	}
	return out, err
}

// ImageHistory lists the image's history entries, newest first.
func (e *Engine) ImageHistory(ctx context.Context, ref string) ([]imagetypes.HistoryResponseItem, error) {
	img, err := e.images.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	h := img.Config.History
	out := make([]imagetypes.HistoryResponseItem, 0, len(h))
	layer := len(img.LayerSizes) - 1
	for i := len(h) - 1; i >= 0; i-- {
		item := imagetypes.HistoryResponseItem{ID: "<missing>", CreatedBy: h[i].CreatedBy, Comment: h[i].Comment}
		if h[i].Created != nil {
			item.Created = h[i].Created.Unix()
		}
		if !h[i].EmptyLayer && layer >= 0 {
			item.Size = img.LayerSizes[layer]
			layer--
		}
		out = append(out, item)
	}
	e.historyIDs(ctx, img, out)
	return out, nil
}

// parentIDs is the set of images that another image was built on.
func parentIDs(imgs []*image.Image) map[string]bool {
	parents := map[string]bool{}
	for _, img := range imgs {
		if img.Parent != "" {
			parents[img.Parent] = true
		}
	}
	return parents
}

// isIntermediate reports whether img is an untagged image another one was
// built on (a build step's image): `images` hides it unless -a, and it is
// not dangling, so `image prune` keeps it while its child is there.
func isIntermediate(img *image.Image, parents map[string]bool) bool {
	return len(img.RepoTags) == 0 && len(img.RepoDigests) == 0 && parents[img.ID]
}

// imagesInUse counts containers per image id.
func (e *Engine) imagesInUse() map[string]int {
	used := map[string]int{}
	for _, c := range e.reg.all() {
		c.mu.Lock()
		used[c.ImageID]++
		c.mu.Unlock()
	}
	return used
}

// containerUsing names a container (a running one when running is set)
// whose image is imageID, or "".
func (e *Engine) containerUsing(imageID string, running bool) string {
	for _, c := range e.reg.all() {
		c.mu.Lock()
		id, up := c.ImageID, c.State.Running
		c.mu.Unlock()
		if id == imageID && (up || !running) {
			return c.ID[:12]
		}
	}
	return ""
}

// familiar shortens normalized references for display: docker.io/library/busybox:latest → busybox:latest.
func familiar(refs []string) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		if n, err := reference.ParseNormalizedNamed(r); err == nil {
			out = append(out, reference.FamiliarString(n))
		} else {
			out = append(out, r)
		}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// familiarRef is ref as Docker names it in events ("busybox:1", not
// "docker.io/library/busybox:1").
func familiarRef(ref string) string {
	if n, err := reference.ParseNormalizedNamed(ref); err == nil {
		return reference.FamiliarString(n)
	}
	return ref
}
