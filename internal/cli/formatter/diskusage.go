package formatter

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
)

// DefaultDiskUsageFormat is docker system df's table.
const DefaultDiskUsageFormat = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"

// The tables of `system df -v`, docker's.
const (
	diskUsageImageTableFormat      = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}"
	diskUsageContainerTableFormat  = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}"
	diskUsageVolumeTableFormat     = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
	diskUsageBuildCacheTableFormat = "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}"
)

// NewDiskUsageFormat picks the format for `system df`.
func NewDiskUsageFormat(source string) Format {
	if source == "" || source == TableFormatKey {
		return DefaultDiskUsageFormat
	}
	return Format(source)
}

// DiskUsage is what `system df` shows: the items of each kind.
type DiskUsage struct {
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

// DiskUsageRow is one line of `system df`.
type DiskUsageRow struct {
	Type                             string
	Total, Active, Size, Reclaimable int64
	// NoPercent leaves the share out of RECLAIMABLE (docker shows none for
	// the build cache).
	NoPercent bool
}

// DiskUsageRows sums du up as docker 28's `system df` does.
func DiskUsageRows(du DiskUsage) []DiskUsageRow {
	img := DiskUsageRow{Type: "Images", Total: int64(len(du.Images)), Size: du.LayersSize}
	var used int64
	for _, i := range du.Images {
		if i.Containers > 0 {
			img.Active++
		}
		if i.Containers != 0 && i.Size != -1 && i.SharedSize != -1 {
			used += i.Size - i.SharedSize
		}
	}
	img.Reclaimable = du.LayersSize - used

	ctr := DiskUsageRow{Type: "Containers", Total: int64(len(du.Containers))}
	for _, c := range du.Containers {
		ctr.Size += c.SizeRw
		switch c.State {
		case container.StateRunning, container.StatePaused, container.StateRestarting:
			ctr.Active++
		default:
			ctr.Reclaimable += c.SizeRw
		}
	}

	vol := DiskUsageRow{Type: "Local Volumes", Total: int64(len(du.Volumes))}
	for _, v := range du.Volumes {
		if v.UsageData == nil {
			continue
		}
		if v.UsageData.RefCount > 0 {
			vol.Active++
		}
		if v.UsageData.Size != -1 {
			vol.Size += v.UsageData.Size
			if v.UsageData.RefCount == 0 {
				vol.Reclaimable += v.UsageData.Size
			}
		}
	}

	bc := DiskUsageRow{Type: "Build Cache", Total: int64(len(du.BuildCache)), NoPercent: true}
	var inUse int64
	for _, r := range du.BuildCache {
		if !r.Shared {
			bc.Size += r.Size
		}
		if r.InUse {
			bc.Active++
			if !r.Shared {
				inUse += r.Size
			}
		}
	}
	bc.Reclaimable = bc.Size - inUse
	return []DiskUsageRow{img, ctr, vol, bc}
}

// DiskUsageWrite renders the summary rows of `system df`.
func DiskUsageWrite(ctx Context, rows []DiskUsageRow) error {
	return ctx.Write(newDiskUsageContext(DiskUsageRow{}), func(format func(SubContext) error) error {
		for _, r := range rows {
			if err := format(newDiskUsageContext(r)); err != nil {
				return err
			}
		}
		return nil
	})
}

type diskUsageContext struct {
	HeaderContext
	r DiskUsageRow
}

func newDiskUsageContext(r DiskUsageRow) *diskUsageContext {
	c := &diskUsageContext{r: r}
	c.Header = SubHeaderContext{
		"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE",
	}
	return c
}

func (c *diskUsageContext) MarshalJSON() ([]byte, error) { return MarshalJSON(c) }

func (c *diskUsageContext) Type() string       { return c.r.Type }
func (c *diskUsageContext) TotalCount() string { return strconv.FormatInt(c.r.Total, 10) }
func (c *diskUsageContext) Active() string     { return strconv.FormatInt(c.r.Active, 10) }
func (c *diskUsageContext) Size() string       { return units.HumanSize(float64(c.r.Size)) }

// Reclaimable shows the percentage of the size, as docker does, when
// there is something to reclaim.
func (c *diskUsageContext) Reclaimable() string {
	s := units.HumanSize(float64(c.r.Reclaimable))
	if c.r.Size > 0 && !c.r.NoPercent {
		s += fmt.Sprintf(" (%v%%)", c.r.Reclaimable*100/c.r.Size)
	}
	return s
}

// DiskUsageVerboseWrite renders `system df -v`: docker's four tables.
func DiskUsageVerboseWrite(out io.Writer, du DiskUsage, now time.Time) error {
	section := func(title, format string, header SubContext, rows []SubContext) error {
		if _, err := io.WriteString(out, title); err != nil {
			return err
		}
		ctx := Context{Output: out, Format: Format(format)}
		return ctx.Write(header, func(f func(SubContext) error) error {
			for _, r := range rows {
				if err := f(r); err != nil {
					return err
				}
			}
			return nil
		})
	}

	var rows []SubContext
	for _, i := range du.Images {
		repo, tag := "<none>", "<none>"
		if len(i.RepoTags) > 0 && !IsDangling(i) {
			// The first tag only, as docker.
			ref, err := reference.ParseNormalizedNamed(i.RepoTags[0])
			if err != nil {
				continue
			}
			if nt, ok := ref.(reference.NamedTagged); ok {
				repo, tag = reference.FamiliarName(ref), nt.Tag()
			}
		}
		rows = append(rows, &imageContext{trunc: true, i: i, now: now, repo: repo, tag: tag})
	}
	if err := section("Images space usage:\n\n", diskUsageImageTableFormat, newImageContext(), rows); err != nil {
		return err
	}

	rows = nil
	for _, c := range du.Containers {
		c.SizeRootFs = 0 // no virtual size here
		rows = append(rows, &ContainerContext{trunc: true, c: c, now: now})
	}
	if err := section("\nContainers space usage:\n\n", diskUsageContainerTableFormat, NewContainerContext(), rows); err != nil {
		return err
	}

	rows = nil
	for _, v := range du.Volumes {
		rows = append(rows, &VolumeContext{v: v})
	}
	if err := section("\nLocal Volumes space usage:\n\n", diskUsageVolumeTableFormat, newVolumeHeader(), rows); err != nil {
		return err
	}

	var builder int64
	for _, r := range du.BuildCache {
		if !r.Shared {
			builder += r.Size
		}
	}
	recs := append([]build.CacheRecord(nil), du.BuildCache...)
	sortBuildCache(recs)
	rows = nil
	for i := range recs {
		rows = append(rows, &buildCacheContext{trunc: true, v: recs[i], now: now})
	}
	return section(fmt.Sprintf("\nBuild cache usage: %s\n\n", units.HumanSize(float64(builder))),
		diskUsageBuildCacheTableFormat, newBuildCacheContext(), rows)
}

// DiskUsageVerboseTemplate renders `system df -v --format TEMPLATE`: the
// template sees .Images, .Containers, .Volumes and .BuildCache, lists of
// rows with the fields of the -v tables, as docker's does.
func DiskUsageVerboseTemplate(out io.Writer, du DiskUsage, now time.Time, format string) error {
	var data struct {
		Images     []*imageContext
		Containers []*ContainerContext
		Volumes    []*VolumeContext
		BuildCache []*buildCacheContext
	}
	trunc := Format(format).IsTable()
	for _, i := range du.Images {
		repo, tag := "<none>", "<none>"
		if len(i.RepoTags) > 0 && !IsDangling(i) {
			if ref, err := reference.ParseNormalizedNamed(i.RepoTags[0]); err == nil {
				if nt, ok := ref.(reference.NamedTagged); ok {
					repo, tag = reference.FamiliarName(ref), nt.Tag()
				}
			}
		}
		data.Images = append(data.Images, &imageContext{trunc: trunc, i: i, now: now, repo: repo, tag: tag})
	}
	for _, c := range du.Containers {
		c.SizeRootFs = 0
		data.Containers = append(data.Containers, &ContainerContext{trunc: trunc, c: c, now: now})
	}
	for _, v := range du.Volumes {
		data.Volumes = append(data.Volumes, &VolumeContext{v: v})
	}
	recs := append([]build.CacheRecord(nil), du.BuildCache...)
	sortBuildCache(recs)
	for i := range recs {
		data.BuildCache = append(data.BuildCache, &buildCacheContext{trunc: trunc, v: recs[i], now: now})
	}
	tmpl, err := ParseTemplate(Format(format).templateString())
	if err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	return tmpl.Execute(out, data)
}

// sortBuildCache is docker's order: never used first, then by last use,
// ties by id.
func sortBuildCache(recs []build.CacheRecord) {
	sort.SliceStable(recs, func(i, j int) bool {
		a, b := recs[i].LastUsedAt, recs[j].LastUsedAt
		switch {
		case a == nil && b == nil, a != nil && b != nil && a.Equal(*b):
			return strings.Compare(recs[i].ID, recs[j].ID) < 0
		case a == nil:
			return true
		case b == nil:
			return false
		}
		return a.Before(*b)
	})
}

// buildCacheContext is one build cache record; its methods are the template
// fields (docker's names).
type buildCacheContext struct {
	HeaderContext
	trunc bool
	v     build.CacheRecord
	now   time.Time
}

func newBuildCacheContext() *buildCacheContext {
	c := &buildCacheContext{}
	c.Header = SubHeaderContext{
		"ID": "CACHE ID", "Parent": "PARENT", "CacheType": "CACHE TYPE", "Size": "SIZE",
		"CreatedSince": "CREATED", "LastUsedSince": "LAST USED", "UsageCount": "USAGE",
		"InUse": "IN USE", "Shared": "SHARED", "Description": "DESCRIPTION",
	}
	return c
}

func (c *buildCacheContext) MarshalJSON() ([]byte, error) { return MarshalJSON(c) }

func (c *buildCacheContext) ID() string {
	id := c.v.ID
	if c.trunc {
		id = TruncateID(id)
	}
	if c.v.InUse {
		return id + "*"
	}
	return id
}

func (c *buildCacheContext) Parent() string {
	p := strings.Join(c.v.Parents, ", ")
	if c.trunc {
		return TruncateID(p)
	}
	return p
}

func (c *buildCacheContext) CacheType() string   { return c.v.Type }
func (c *buildCacheContext) Description() string { return c.v.Description }
func (c *buildCacheContext) Size() string        { return units.HumanSizeWithPrecision(float64(c.v.Size), 3) }
func (c *buildCacheContext) CreatedAt() string   { return c.v.CreatedAt.String() }
func (c *buildCacheContext) CreatedSince() string {
	return units.HumanDuration(c.now.UTC().Sub(c.v.CreatedAt)) + " ago"
}

func (c *buildCacheContext) LastUsedAt() string {
	if c.v.LastUsedAt == nil {
		return ""
	}
	return c.v.LastUsedAt.String()
}

func (c *buildCacheContext) LastUsedSince() string {
	if c.v.LastUsedAt == nil {
		return ""
	}
	return units.HumanDuration(c.now.UTC().Sub(*c.v.LastUsedAt)) + " ago"
}

func (c *buildCacheContext) UsageCount() string { return strconv.Itoa(c.v.UsageCount) }
func (c *buildCacheContext) InUse() string      { return strconv.FormatBool(c.v.InUse) }
func (c *buildCacheContext) Shared() string     { return strconv.FormatBool(c.v.Shared) }
