package formatter

import (
	"sort"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/volume"
)

const defaultVolumeTableFormat = "table {{.Driver}}\t{{.Name}}"

// NewVolumeFormat picks the format for `volume ls` from --format and -q.
func NewVolumeFormat(source string, quiet bool) Format {
	switch source {
	case TableFormatKey, "":
		if quiet {
			return "{{.Name}}"
		}
		return defaultVolumeTableFormat
	case RawFormatKey:
		if quiet {
			return `name: {{.Name}}`
		}
		return "name: {{.Name}}\ndriver: {{.Driver}}\n"
	}
	if quiet {
		return "{{.Name}}"
	}
	return Format(source)
}

// VolumeWrite renders volumes.
func VolumeWrite(ctx Context, vols []volume.Volume) error {
	sort.Slice(vols, func(i, j int) bool { return vols[i].Name < vols[j].Name })
	return ctx.Write(newVolumeHeader(), func(format func(SubContext) error) error {
		for _, v := range vols {
			if err := format(&VolumeContext{v: v}); err != nil {
				return err
			}
		}
		return nil
	})
}

// VolumeContext is one `volume ls` row; its methods are the template fields.
type VolumeContext struct {
	HeaderContext
	v volume.Volume
}

func newVolumeHeader() *VolumeContext {
	c := &VolumeContext{}
	c.Header = SubHeaderContext{
		"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
		"Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Group": "GROUP", "Availability": "AVAILABILITY", "Status": "STATUS",
	}
	return c
}

// MarshalJSON makes `{{json .}}` print the template fields.
func (c *VolumeContext) MarshalJSON() ([]byte, error) { return MarshalJSON(c) }

func (c *VolumeContext) Name() string       { return c.v.Name }
func (c *VolumeContext) Driver() string     { return c.v.Driver }
func (c *VolumeContext) Scope() string      { return c.v.Scope }
func (c *VolumeContext) Mountpoint() string { return c.v.Mountpoint }
func (c *VolumeContext) Group() string      { return "N/A" }
func (c *VolumeContext) Availability() string {
	return "N/A"
}
func (c *VolumeContext) Status() string { return "N/A" }

func (c *VolumeContext) Labels() string {
	var kv []string
	for k, v := range c.v.Labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// Label returns one label's value.
func (c *VolumeContext) Label(name string) string { return c.v.Labels[name] }

func (c *VolumeContext) Links() string {
	if c.v.UsageData == nil {
		return "N/A"
	}
	return strconv.FormatInt(c.v.UsageData.RefCount, 10)
}

func (c *VolumeContext) Size() string {
	if c.v.UsageData == nil {
		return "N/A"
	}
	return units.HumanSize(float64(c.v.UsageData.Size))
}
