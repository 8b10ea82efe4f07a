package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/image"
	regclient "github.com/skiff-dev/skiff/internal/registry"
)

// PushOptions describes POST /images/{name}/push.
type PushOptions struct {
	Tag          string // "" pushes every tag of the repository
	RegistryAuth string // the X-Registry-Auth header as sent
	Progress     func(jsonstream.Message)
}

// pushResult is the aux message Docker sends after each pushed tag.
type pushResult struct {
	Tag    string
	Digest string
	Size   int
}

// ImagePush uploads the images tagged name[:tag] to their registry.
func (e *Engine) ImagePush(ctx context.Context, name string, opts PushOptions) error {
	n, err := regclient.Parse(name)
	if err != nil {
		return err
	}
	repo := reference.TrimNamed(n.Named)
	auth, err := regclient.DecodeAuth(opts.RegistryAuth)
	if err != nil {
		return err
	}
	progress := progressFunc(opts.Progress)

	// Which tags: the one asked for, or every tag of the repository.
	var tags []string
	if opts.Tag != "" {
		tags = []string{opts.Tag}
	} else if t, ok := n.Named.(reference.Tagged); ok && strings.Contains(name, ":"+t.Tag()) {
		tags = []string{t.Tag()}
	} else {
		imgs, err := e.images.List(ctx)
		if err != nil {
			return err
		}
		for _, im := range imgs {
			for _, rt := range im.RepoTags {
				if tn, err := reference.ParseNormalizedNamed(rt); err == nil && tn.Name() == repo.Name() {
					if t, ok := tn.(reference.Tagged); ok {
						tags = append(tags, t.Tag())
					}
				}
			}
		}
		if len(tags) == 0 {
			return errdefs.NotFound("An image does not exist locally with the tag: %s", reference.FamiliarName(repo))
		}
	}
	progress(jsonstream.Message{Status: "The push refers to repository [" + repo.String() + "]"})
	for _, tag := range tags {
		full := repo.String() + ":" + tag
		img, err := e.images.Get(ctx, full)
		if err != nil {
			if errdefs.IsNotFound(err) {
				return errdefs.NotFound("An image does not exist locally with the tag: %s", reference.FamiliarString(reference.TagNameOnly(mustTag(repo, tag))))
			}
			return err
		}
		pi, err := e.pushImage(ctx, img, n.Host, repo.String())
		if err != nil {
			return err
		}
		for _, l := range pi.Layers {
			progress(layerStatus(shortDigest(l.Desc.Digest), "Preparing"))
		}
		d, err := e.registryClient().Push(ctx, full, pi, auth, func(ev regclient.PushEvent) {
			m := layerStatus(shortDigest(ev.Digest), ev.Status)
			m.Progress.Current, m.Progress.Total = ev.Current, ev.Total
			progress(m)
		})
		if err != nil {
			return err
		}
		progress(jsonstream.Message{Status: fmt.Sprintf("%s: digest: %s size: %d", tag, d, len(pi.Manifest))})
		aux, _ := json.Marshal(pushResult{Tag: tag, Digest: d.String(), Size: len(pi.Manifest)})
		raw := json.RawMessage(aux)
		progress(jsonstream.Message{Aux: &raw})
		e.events.publish(events.ImageEventType, events.ActionPush, img.ID, map[string]string{"name": reference.FamiliarString(mustTag(repo, tag))})
	}
	return nil
}

func mustTag(repo reference.Named, tag string) reference.Named {
	t, err := reference.WithTag(repo, tag)
	if err != nil {
		return repo
	}
	return t
}

// pushImage gathers img's manifest, config and layers from the stores. A
// layer that an image pulled from another repository of host also has is
// marked for a cross-repository mount.
func (e *Engine) pushImage(ctx context.Context, img *image.Image, host, self string) (regclient.PushImage, error) {
	var pi regclient.PushImage
	mraw, err := e.content.ReadAll(ctx, img.ManifestDigest)
	if err != nil {
		return pi, fmt.Errorf("read manifest of %s: %w", image.ShortID(img.ID), err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mraw, &m); err != nil {
		return pi, fmt.Errorf("decode manifest of %s: %w", image.ShortID(img.ID), err)
	}
	cfg, err := e.content.ReadAll(ctx, digest.Digest(img.ID))
	if err != nil {
		return pi, fmt.Errorf("read config of %s: %w", image.ShortID(img.ID), err)
	}
	pi.Manifest, pi.Config = mraw, cfg
	pi.MediaType = m.MediaType
	if pi.MediaType == "" {
		pi.MediaType = ocispec.MediaTypeImageManifest
	}
	if len(m.Layers) != len(img.DiffIDs) {
		return pi, errdefs.System("image %s: the manifest lists %d layers, the config %d", image.ShortID(img.ID), len(m.Layers), len(img.DiffIDs))
	}
	// Repositories of host that images with each layer were pulled from.
	sources := map[digest.Digest]string{}
	if imgs, err := e.images.List(ctx); err == nil {
		for _, other := range imgs {
			for _, rd := range other.RepoDigests {
				rn, err := reference.ParseNormalizedNamed(rd)
				if err != nil || reference.Domain(rn) != host || reference.TrimNamed(rn).String() == self {
					continue
				}
				for _, l := range other.Layers {
					if _, ok := sources[l.Digest]; !ok {
						sources[l.Digest] = reference.TrimNamed(rn).String()
					}
				}
			}
		}
	}
	for i, d := range m.Layers {
		d := d
		pi.Layers = append(pi.Layers, regclient.PushLayer{
			Desc: d, DiffID: img.DiffIDs[i], MountFrom: sources[d.Digest],
			Open: func() (io.ReadCloser, error) { return e.content.Open(ctx, d.Digest) },
		})
	}
	return pi, nil
}

// RegistryLogin checks credentials against a registry, as `docker login`
// asks the daemon to. It returns the identity token the registry gave, if
// any.
func (e *Engine) RegistryLogin(ctx context.Context, auth regclient.Auth) (string, error) {
	return e.registryClient().Login(ctx, auth.ServerAddress, auth)
}
