package formatter

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
)

const defaultContainerTableFormat = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

// NewContainerFormat picks the format for `ps` from --format, -q and -s.
func NewContainerFormat(source string, quiet, size bool) Format {
	switch source {
	case TableFormatKey, "":
		if quiet {
			return DefaultQuietFormat
		}
		f := defaultContainerTableFormat
		if size {
			f += `\t{{.Size}}`
		}
		return Format(f)
	case RawFormatKey:
		if quiet {
			return `container_id: {{.ID}}`
		}
		f := "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\n" +
			"state: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\n" +
			"labels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n"
		if size {
			f += `size: {{.Size}}\n`
		}
		return Format(f)
	default:
		if quiet {
			return DefaultQuietFormat
		}
		return Format(source)
	}
}

// ContainerWrite renders containers.
func ContainerWrite(ctx Context, containers []container.Summary) error {
	now := ctx.now()
	return ctx.Write(NewContainerContext(), func(format func(SubContext) error) error {
		for _, c := range containers {
			if err := format(&ContainerContext{trunc: ctx.Trunc, c: c, now: now}); err != nil {
				return err
			}
		}
		return nil
	})
}

// ContainerContext is one `ps` row; its methods are the template fields.
type ContainerContext struct {
	HeaderContext
	trunc bool
	c     container.Summary
	now   time.Time

	// FieldsUsed records fields a template touched, so that ps can ask for
	// sizes only when .Size is used.
	FieldsUsed map[string]any
}

// NewContainerContext returns the header row of `ps`.
func NewContainerContext() *ContainerContext {
	c := &ContainerContext{}
	c.Header = SubHeaderContext{
		"ID":           "CONTAINER ID",
		"Names":        "NAMES",
		"Image":        "IMAGE",
		"Command":      "COMMAND",
		"CreatedAt":    "CREATED AT",
		"RunningFor":   "CREATED",
		"Ports":        "PORTS",
		"State":        "STATE",
		"Status":       "STATUS",
		"Size":         "SIZE",
		"Labels":       "LABELS",
		"Mounts":       "MOUNTS",
		"LocalVolumes": "LOCAL VOLUMES",
		"Networks":     "NETWORKS",
	}
	return c
}

// MarshalJSON makes `{{json .}}` print the template fields.
func (c *ContainerContext) MarshalJSON() ([]byte, error) { return MarshalJSON(c) }

func (c *ContainerContext) ID() string {
	if c.trunc {
		return TruncateID(c.c.ID)
	}
	return c.c.ID
}

// Names are the container's names without the leading slash; truncated
// output shows only the first one that is not a legacy link.
func (c *ContainerContext) Names() string {
	var names []string
	for _, n := range c.c.Names {
		name := strings.TrimPrefix(n, "/")
		if c.trunc {
			if !strings.Contains(name, "/") {
				return name
			}
			continue
		}
		names = append(names, name)
	}
	return strings.Join(names, ",")
}

func (c *ContainerContext) Image() string {
	if c.c.Image == "" {
		return "<no image>"
	}
	if !c.trunc {
		return c.c.Image
	}
	if trunc := TruncateID(c.c.ImageID); trunc == TruncateID(c.c.Image) {
		return trunc
	}
	ref, err := reference.ParseNormalizedNamed(c.c.Image)
	if err != nil {
		return c.c.Image
	}
	if _, ok := ref.(reference.Digested); ok {
		var tag string
		if t, ok := ref.(reference.Tagged); ok {
			tag = t.Tag()
		}
		ref = reference.TrimNamed(ref)
		if tag != "" {
			if out, err := reference.WithTag(ref, tag); err == nil {
				ref = out
			}
		}
	}
	return reference.FamiliarString(ref)
}

func (c *ContainerContext) Command() string {
	cmd := c.c.Command
	if c.trunc {
		cmd = Ellipsis(cmd, 20)
	}
	return strconv.Quote(cmd)
}

func (c *ContainerContext) CreatedAt() string { return time.Unix(c.c.Created, 0).String() }

func (c *ContainerContext) RunningFor() string {
	return units.HumanDuration(c.now.UTC().Sub(time.Unix(c.c.Created, 0))) + " ago"
}

func (c *ContainerContext) Ports() string { return DisplayablePorts(c.c.Ports) }
func (c *ContainerContext) State() string { return string(c.c.State) }
func (c *ContainerContext) Status() string {
	return c.c.Status
}

func (c *ContainerContext) Size() string {
	if c.FieldsUsed == nil {
		c.FieldsUsed = map[string]any{}
	}
	c.FieldsUsed["Size"] = struct{}{}
	srw := units.HumanSizeWithPrecision(float64(c.c.SizeRw), 3)
	if c.c.SizeRootFs > 0 {
		return fmt.Sprintf("%s (virtual %s)", srw, units.HumanSizeWithPrecision(float64(c.c.SizeRootFs), 3))
	}
	return srw
}

func (c *ContainerContext) Labels() string {
	if c.c.Labels == nil {
		return ""
	}
	out := make([]string, 0, len(c.c.Labels))
	for k, v := range c.c.Labels {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// Label returns one label's value (`{{.Label "com.example"}}`).
func (c *ContainerContext) Label(name string) string {
	if c.c.Labels == nil {
		return ""
	}
	return c.c.Labels[name]
}

func (c *ContainerContext) Mounts() string {
	out := make([]string, 0, len(c.c.Mounts))
	for _, m := range c.c.Mounts {
		name := m.Name
		if name == "" {
			name = m.Source
		}
		if c.trunc {
			name = Ellipsis(name, 15)
		}
		out = append(out, name)
	}
	return strings.Join(out, ",")
}

func (c *ContainerContext) LocalVolumes() string {
	n := 0
	for _, m := range c.c.Mounts {
		if m.Driver == "local" {
			n++
		}
	}
	return strconv.Itoa(n)
}

func (c *ContainerContext) Networks() string {
	if c.c.NetworkSettings == nil {
		return ""
	}
	out := make([]string, 0, len(c.c.NetworkSettings.Networks))
	for k := range c.c.NetworkSettings.Networks {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// DisplayablePorts formats ports like docker: "0.0.0.0:80->80/tcp, 443/tcp",
// grouping consecutive ports into ranges.
func DisplayablePorts(ports []container.PortSummary) string {
	type group struct{ first, last uint16 }
	groups := map[string]*group{}
	var result, hostMappings, keys []string
	sort.Slice(ports, func(i, j int) bool { return comparePorts(ports[i], ports[j]) })
	for _, p := range ports {
		current := p.PrivatePort
		key := p.Type
		if p.IP.IsValid() {
			if p.PublicPort != current {
				h := net.JoinHostPort(p.IP.String(), strconv.Itoa(int(p.PublicPort)))
				hostMappings = append(hostMappings, fmt.Sprintf("%s->%d/%s", h, p.PrivatePort, p.Type))
				continue
			}
			key = p.IP.String() + "/" + p.Type
		}
		g := groups[key]
		if g == nil {
			groups[key] = &group{first: current, last: current}
			keys = append(keys, key)
			continue
		}
		if current == g.last+1 {
			g.last = current
			continue
		}
		result = append(result, formGroup(key, g.first, g.last))
		groups[key] = &group{first: current, last: current}
	}
	for _, k := range keys {
		g := groups[k]
		result = append(result, formGroup(k, g.first, g.last))
	}
	return strings.Join(append(result, hostMappings...), ", ")
}

func formGroup(key string, start, last uint16) string {
	parts := strings.Split(key, "/")
	typ := parts[0]
	var ip string
	if len(parts) > 1 {
		ip, typ = parts[0], parts[1]
	}
	g := strconv.Itoa(int(start))
	if start != last {
		g = fmt.Sprintf("%s-%d", g, last)
	}
	if ip != "" {
		g = fmt.Sprintf("%s->%s", net.JoinHostPort(ip, g), g)
	}
	return g + "/" + typ
}

func comparePorts(i, j container.PortSummary) bool {
	if i.PrivatePort != j.PrivatePort {
		return i.PrivatePort < j.PrivatePort
	}
	if i.IP != j.IP {
		return i.IP.Less(j.IP)
	}
	if i.PublicPort != j.PublicPort {
		return i.PublicPort < j.PublicPort
	}
	return i.Type < j.Type
}
