package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	skinet "github.com/skiff-dev/skiff/internal/network"
)

// legacyLinkEnv adds the environment variables of Docker's legacy links
// (--link on the default bridge) to the spec: for each link ALIAS, the
// linked container's exposed ports (ALIAS_PORT, ALIAS_PORT_80_TCP and its
// _ADDR/_PORT/_PROTO, _START/_END for runs of consecutive ports), ALIAS_NAME
// and its environment as ALIAS_ENV_*. The container's own variables win.
func (e *Engine) legacyLinkEnv(c *Container, spec *specs.Spec) {
	c.mu.Lock()
	links := c.HostConfig.Links
	onBridge := c.Net != nil && c.Net.Endpoints["bridge"] != nil
	parent := c.Name
	c.mu.Unlock()
	if !onBridge || len(links) == 0 || spec.Process == nil {
		return
	}
	have := map[string]bool{}
	for _, kv := range spec.Process.Env {
		k, _, _ := strings.Cut(kv, "=")
		have[k] = true
	}
	for _, l := range links {
		name, alias := skinet.ParseLink(l)
		child, err := e.reg.get(name)
		if err != nil {
			continue // Attach has refused it already
		}
		child.mu.Lock()
		var ip string
		if child.Net != nil && child.Net.Endpoints["bridge"] != nil {
			ip = child.Net.Endpoints["bridge"].IP
		}
		var ports []network.Port
		for p := range child.Config.ExposedPorts {
			ports = append(ports, p)
		}
		env := append([]string{}, child.Config.Env...)
		child.mu.Unlock()
		for _, kv := range linkEnv(alias, "/"+parent+"/"+alias, ip, ports, env) {
			k, _, _ := strings.Cut(kv, "=")
			if !have[k] {
				spec.Process.Env = append(spec.Process.Env, kv)
				have[k] = true
			}
		}
	}
}

// linkEnv is the variables of one legacy link.
func linkEnv(alias, fullName, ip string, ports []network.Port, env []string) []string {
	pre := strings.ReplaceAll(strings.ToUpper(alias), "-", "_")
	// TCP first, then by protocol name, then by number (dockerd's order).
	sort.Slice(ports, func(i, j int) bool {
		pi, pj := string(ports[i].Proto()), string(ports[j].Proto())
		if pi != pj {
			if pi == "tcp" || pj == "tcp" {
				return pi == "tcp"
			}
			return pi < pj
		}
		return ports[i].Num() < ports[j].Num()
	})
	var out []string
	for i, p := range ports {
		proto := string(p.Proto())
		if i == 0 {
			out = append(out, fmt.Sprintf("%s_PORT=%s://%s:%d", pre, proto, ip, p.Num()))
		}
		k := fmt.Sprintf("%s_PORT_%d_%s", pre, p.Num(), strings.ToUpper(proto))
		out = append(out, fmt.Sprintf("%s=%s://%s:%d", k, proto, ip, p.Num()),
			fmt.Sprintf("%s_ADDR=%s", k, ip), fmt.Sprintf("%s_PORT=%d", k, p.Num()), fmt.Sprintf("%s_PROTO=%s", k, proto))
	}
	// Runs of consecutive ports of one protocol also get their bounds.
	for i := 0; i < len(ports); {
		j := i
		for j+1 < len(ports) && ports[j+1].Proto() == ports[i].Proto() && ports[j+1].Num() == ports[j].Num()+1 {
			j++
		}
		if j > i {
			s, e := ports[i], ports[j]
			proto := string(s.Proto())
			k := fmt.Sprintf("%s_PORT_%d_%s", pre, s.Num(), strings.ToUpper(proto))
			out = append(out, fmt.Sprintf("%s_START=%s://%s:%d", k, proto, ip, s.Num()), fmt.Sprintf("%s_PORT_START=%d", k, s.Num()),
				fmt.Sprintf("%s_END=%s://%s:%d", k, proto, ip, e.Num()), fmt.Sprintf("%s_PORT_END=%d", k, e.Num()))
		}
		i = j + 1
	}
	out = append(out, pre+"_NAME="+fullName)
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "HOME" || k == "PATH" {
			continue
		}
		out = append(out, fmt.Sprintf("%s_ENV_%s=%s", pre, k, v))
	}
	return out
}
