package formatter

import (
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"
)

const defaultNetworkTableFormat = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"

// NewNetworkFormat picks the format for `network ls` from --format and -q.
func NewNetworkFormat(source string, quiet bool) Format {
	switch source {
	case TableFormatKey, "":
		if quiet {
			return "{{.ID}}"
		}
		return defaultNetworkTableFormat
	case RawFormatKey:
		if quiet {
			return `network_id: {{.ID}}`
		}
		return "network_id: {{.ID}}\nname: {{.Name}}\ndriver: {{.Driver}}\nscope: {{.Scope}}\n"
	}
	if quiet {
		return "{{.ID}}"
	}
	return Format(source)
}

// NetworkWrite renders networks, sorted by name as docker does.
func NetworkWrite(ctx Context, networks []network.Summary, noTrunc bool) error {
	sort.Slice(networks, func(i, j int) bool { return networks[i].Name < networks[j].Name })
	return ctx.Write(newNetworkHeader(), func(format func(SubContext) error) error {
		for _, n := range networks {
			if err := format(&NetworkContext{n: n, trunc: !noTrunc}); err != nil {
				return err
			}
		}
		return nil
	})
}

// NetworkContext is one `network ls` row; its methods are the template fields.
type NetworkContext struct {
	HeaderContext
	n     network.Summary
	trunc bool
}

func newNetworkHeader() *NetworkContext {
	c := &NetworkContext{}
	c.Header = SubHeaderContext{
		"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
		"IPv4": "IPV4", "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
	}
	return c
}

// MarshalJSON makes `{{json .}}` print the template fields.
func (c *NetworkContext) MarshalJSON() ([]byte, error) { return MarshalJSON(c) }

func (c *NetworkContext) ID() string {
	if c.trunc && len(c.n.ID) > 12 {
		return c.n.ID[:12]
	}
	return c.n.ID
}
func (c *NetworkContext) Name() string      { return c.n.Name }
func (c *NetworkContext) Driver() string    { return c.n.Driver }
func (c *NetworkContext) Scope() string     { return c.n.Scope }
func (c *NetworkContext) IPv4() string      { return strconv.FormatBool(c.n.EnableIPv4) }
func (c *NetworkContext) IPv6() string      { return strconv.FormatBool(c.n.EnableIPv6) }
func (c *NetworkContext) Internal() string  { return strconv.FormatBool(c.n.Internal) }
func (c *NetworkContext) CreatedAt() string { return c.n.Created.String() }

func (c *NetworkContext) Labels() string {
	var kv []string
	for k, v := range c.n.Labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// Label returns one label's value.
func (c *NetworkContext) Label(name string) string { return c.n.Labels[name] }
