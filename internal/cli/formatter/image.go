package formatter

import (
	"sort"
	"strconv"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/image"
)

const (
	defaultImageTableFormat           = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"
	defaultImageTableFormatWithDigest = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"
)

// ImageContext is the rendering context of `images`.
type ImageContext struct {
	Context
	Digest bool
}

// IsDangling reports whether an image has no tag.
func IsDangling(img image.Summary) bool {
	if len(img.RepoTags) == 0 && len(img.RepoDigests) == 0 {
		return true
	}
	return len(img.RepoTags) == 1 && img.RepoTags[0] == "<none>:<none>" &&
		len(img.RepoDigests) == 1 && img.RepoDigests[0] == "<none>@<none>"
}

// NewImageFormat picks the format for `images` from --format, -q, --digests.
func NewImageFormat(source string, quiet, digest bool) Format {
	switch source {
	case TableFormatKey, "":
		switch {
		case quiet:
			return DefaultQuietFormat
		case digest:
			return defaultImageTableFormatWithDigest
		default:
			return defaultImageTableFormat
		}
	case RawFormatKey:
		switch {
		case quiet:
			return `image_id: {{.ID}}`
		case digest:
			return "repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n"
		default:
			return "repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n"
		}
	}
	if quiet {
		return DefaultQuietFormat
	}
	f := Format(source)
	if f.IsTable() && digest && !f.Contains("{{.Digest}}") {
		f += "\t{{.Digest}}"
	}
	return f
}

// ImageWrite renders images: one row per repository:tag.
func ImageWrite(ctx ImageContext, images []image.Summary) error {
	now := ctx.now()
	return ctx.Write(newImageContext(), func(format func(SubContext) error) error {
		for _, img := range images {
			var rows []*imageContext
			if IsDangling(img) {
				rows = []*imageContext{{trunc: ctx.Trunc, i: img, now: now, repo: "<none>", tag: "<none>", digest: "<none>"}}
			} else {
				rows = taggedRows(ctx, img, now)
			}
			for _, r := range rows {
				if err := format(r); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func taggedRows(ctx ImageContext, img image.Summary, now time.Time) []*imageContext {
	repoTags := map[string][]string{}
	repoDigests := map[string][]string{}
	var repos []string
	for _, s := range img.RepoTags {
		ref, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			continue
		}
		if nt, ok := ref.(reference.NamedTagged); ok {
			name := reference.FamiliarName(ref)
			if _, seen := repoTags[name]; !seen {
				repos = append(repos, name)
			}
			repoTags[name] = append(repoTags[name], nt.Tag())
		}
	}
	for _, s := range img.RepoDigests {
		ref, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			continue
		}
		if c, ok := ref.(reference.Canonical); ok {
			name := reference.FamiliarName(ref)
			repoDigests[name] = append(repoDigests[name], c.Digest().String())
		}
	}
	needDigest := ctx.Digest || ctx.Format.Contains("{{.Digest}}")
	var rows []*imageContext
	add := func(repo, tag, digest string) {
		rows = append(rows, &imageContext{trunc: ctx.Trunc, i: img, now: now, repo: repo, tag: tag, digest: digest})
	}
	// docker walks a map here (random order); keep the API's order instead.
	for _, repo := range repos {
		digests := repoDigests[repo]
		delete(repoDigests, repo)
		if !needDigest {
			digests = nil
		}
		for _, tag := range repoTags[repo] {
			if len(digests) == 0 {
				add(repo, tag, "<none>")
				continue
			}
			for _, d := range digests {
				add(repo, tag, d)
			}
		}
	}
	rest := make([]string, 0, len(repoDigests))
	for repo := range repoDigests {
		rest = append(rest, repo)
	}
	sort.Strings(rest)
	for _, repo := range rest {
		if ctx.Digest {
			for _, d := range repoDigests[repo] {
				add(repo, "<none>", d)
			}
		} else {
			add(repo, "<none>", "")
		}
	}
	return rows
}

type imageContext struct {
	HeaderContext
	trunc  bool
	i      image.Summary
	now    time.Time
	repo   string
	tag    string
	digest string
}

func newImageContext() *imageContext {
	c := &imageContext{}
	c.Header = SubHeaderContext{
		"ID":           "IMAGE ID",
		"Repository":   "REPOSITORY",
		"Tag":          "TAG",
		"Digest":       "DIGEST",
		"CreatedSince": "CREATED",
		"CreatedAt":    "CREATED AT",
		"Size":         "SIZE",
		"Containers":   "CONTAINERS",
		"SharedSize":   "SHARED SIZE",
		"UniqueSize":   "UNIQUE SIZE",
	}
	return c
}

func (c *imageContext) MarshalJSON() ([]byte, error) { return MarshalJSON(c) }

func (c *imageContext) ID() string {
	if c.trunc {
		return TruncateID(c.i.ID)
	}
	return c.i.ID
}

func (c *imageContext) Repository() string { return c.repo }
func (c *imageContext) Tag() string        { return c.tag }
func (c *imageContext) Digest() string     { return c.digest }

func (c *imageContext) CreatedSince() string {
	created := time.Unix(c.i.Created, 0)
	if created.IsZero() {
		return ""
	}
	return units.HumanDuration(c.now.UTC().Sub(created)) + " ago"
}

func (c *imageContext) CreatedAt() string { return time.Unix(c.i.Created, 0).String() }

func (c *imageContext) Size() string {
	return units.HumanSizeWithPrecision(float64(c.i.Size), 3)
}

func (c *imageContext) Containers() string {
	if c.i.Containers == -1 {
		return "N/A"
	}
	return strconv.FormatInt(c.i.Containers, 10)
}

// SharedSize and UniqueSize are `system df -v`'s columns.
func (c *imageContext) SharedSize() string {
	if c.i.SharedSize == -1 {
		return "N/A"
	}
	return units.HumanSize(float64(c.i.SharedSize))
}

func (c *imageContext) UniqueSize() string {
	if c.i.Size == -1 || c.i.SharedSize == -1 {
		return "N/A"
	}
	return units.HumanSize(float64(c.i.Size - c.i.SharedSize))
}
