package engine

import (
	"context"
	"sort"

	"github.com/moby/moby/api/types/build"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-dev/skiff/internal/image"
)

// BuildCacheUsage describes the builder's cache entries (cache key -> id of
// the image the step made) as GET /system/df's BuildCache records:
//   - ID is the cache key, Parents the key of the entry that made the
//     step's parent image, when there is one;
//   - Type is "regular" (BuildKit's type for a layer), Description the
//     step as the image's history shows it;
//   - Size is the size of the layer the step added (0 for a step that
//     changed only the config);
//   - Shared tells that the step's top layer is also a layer of a tagged
//     image. Shared sizes are not counted in `docker system df`'s Build
//     Cache total: those bytes stay as long as the tagged image does.
//     What is not shared is held only by the untagged step images, which
//     `image prune` removes.
//
// The records' CreatedAt is the step image's creation; skiff does not track
// use (LastUsedAt nil, UsageCount 0), so that a build of cached steps writes
// nothing. Entries whose image is gone (cache misses) are left out.
func (e *Engine) BuildCacheUsage(ctx context.Context, entries map[string]string) ([]*build.CacheRecord, error) {
	imgs, err := e.images.List(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string]*image.Image{}
	tagged := map[digest.Digest]bool{} // chain ids of tagged images
	for _, img := range imgs {
		byID[img.ID] = img
		if len(img.RepoTags) > 0 {
			for _, c := range image.ChainIDs(img) {
				tagged[c] = true
			}
		}
	}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	keyOf := map[string]string{} // image id -> the first key that made it
	for _, k := range keys {
		if _, ok := keyOf[entries[k]]; !ok {
			keyOf[entries[k]] = k
		}
	}
	out := []*build.CacheRecord{}
	for _, k := range keys {
		img := byID[entries[k]]
		if img == nil {
			continue
		}
		rec := &build.CacheRecord{ID: k, Type: "regular", CreatedAt: img.Created}
		if pk, ok := keyOf[img.Parent]; ok && img.Parent != "" {
			rec.Parents = []string{pk}
		}
		// A step adds one layer or none; its history entry says which.
		if h := img.Config.History; len(h) > 0 {
			last := h[len(h)-1]
			rec.Description = last.CreatedBy
			if n := len(img.LayerSizes); !last.EmptyLayer && n > 0 && n == len(img.DiffIDs) {
				rec.Size = img.LayerSizes[n-1]
				chains := image.ChainIDs(img)
				rec.Shared = tagged[chains[n-1]]
			}
		}
		out = append(out, rec)
	}
	return out, nil
}
