package engine

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/skiff-dev/skiff/internal/dns"
	"github.com/skiff-dev/skiff/internal/errdefs"
)

// dnsServers are the embedded DNS servers of running containers on
// user-defined networks, by container id.
type dnsServers struct {
	mu sync.Mutex
	m  map[string]*dns.Server
}

var embeddedDNS = dnsServers{m: map[string]*dns.Server{}}

// usesEmbeddedDNS: containers on user-defined networks resolve each other
// through the embedded server, as with Docker; the default bridge does not.
func usesEmbeddedDNS(cn *containerNet) bool {
	if cn == nil {
		return false
	}
	for name := range cn.Endpoints {
		if name != "bridge" {
			return true
		}
	}
	return false
}

// startDNS serves 127.0.0.11 in c's namespace and points its resolv.conf
// there; the upstream servers are --dns, else the host's.
func (e *Engine) startDNS(c *Container, nsPath string, cn *containerNet) error {
	if !usesEmbeddedDNS(cn) {
		return nil
	}
	c.mu.Lock()
	var upstream []string
	for _, a := range c.HostConfig.DNS {
		upstream = append(upstream, a.String())
	}
	c.mu.Unlock()
	if len(upstream) == 0 {
		upstream = hostNameservers()
	}
	srv, err := dns.Serve(nsPath, func(name string) []net.IP { return e.resolveFor(c.ID, name) }, upstream)
	if err != nil {
		return err
	}
	embeddedDNS.mu.Lock()
	if old := embeddedDNS.m[c.ID]; old != nil {
		old.Close()
	}
	embeddedDNS.m[c.ID] = srv
	embeddedDNS.mu.Unlock()
	pointResolvConf(e.containerDir(c.ID))
	return nil
}

func (e *Engine) stopDNS(id string) {
	embeddedDNS.mu.Lock()
	srv := embeddedDNS.m[id]
	delete(embeddedDNS.m, id)
	embeddedDNS.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// resolveFor answers name for container id: running containers sharing a
// user-defined network with it, by name, short id or alias.
func (e *Engine) resolveFor(id, name string) []net.IP {
	self, err := e.reg.get(id)
	if err != nil {
		return nil
	}
	self.mu.Lock()
	mine := map[string]bool{}
	if self.Net != nil {
		for n := range self.Net.Endpoints {
			if n != "bridge" {
				mine[n] = true
			}
		}
	}
	self.mu.Unlock()
	var out []net.IP
	for _, c := range e.reg.all() {
		c.mu.Lock()
		if c.State.Running && c.Net != nil {
			for n, ep := range c.Net.Endpoints {
				if !mine[n] {
					continue
				}
				match := strings.EqualFold(c.Name, name) || (len(name) == 12 && strings.HasPrefix(c.ID, name))
				for _, a := range ep.Aliases {
					match = match || strings.EqualFold(a, name)
				}
				if match {
					if ip := net.ParseIP(ep.IP); ip != nil {
						out = append(out, ip)
					}
				}
			}
		}
		c.mu.Unlock()
	}
	return out
}

func hostNameservers() []string {
	b, _ := os.ReadFile("/etc/resolv.conf")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "nameserver" {
			out = append(out, f[1])
		}
	}
	return out
}

// pointResolvConf replaces the name servers of the container's resolv.conf
// with the embedded server, keeping search and options.
func pointResolvConf(dir string) {
	p := filepath.Join(dir, "resolv.conf")
	b, err := os.ReadFile(p)
	if err != nil {
		return
	}
	var keep []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if !strings.HasPrefix(l, "nameserver") && l != "" {
			keep = append(keep, l)
		}
	}
	s := "nameserver " + dns.Address + "\n"
	for _, l := range keep {
		s += l + "\n"
	}
	if !strings.Contains(s, "ndots:") {
		s += "options ndots:0\n"
	}
	os.WriteFile(p, []byte(s), 0o644)
}

// linkHosts gives the /etc/hosts lines of --link NAME[:ALIAS] ("name:alias"
// as the CLI sends it, or Docker's stored "/name:/container/alias").
func (e *Engine) linkHosts(links []string) (string, error) {
	var b strings.Builder
	for _, l := range links {
		name, alias, _ := strings.Cut(l, ":")
		name = strings.TrimPrefix(name, "/")
		if i := strings.LastIndexByte(alias, '/'); i >= 0 {
			alias = alias[i+1:]
		}
		if alias == "" {
			alias = name
		}
		c, err := e.reg.get(name)
		if err != nil {
			return "", errdefs.Invalid("could not get container for %s", name)
		}
		c.mu.Lock()
		var ip string
		if c.State.Running && c.Net != nil && c.Net.Endpoints["bridge"] != nil {
			ip = c.Net.Endpoints["bridge"].IP
		}
		cname, short := c.Name, c.ID[:12]
		c.mu.Unlock()
		if ip == "" {
			return "", errdefs.Invalid("cannot link to a non running container: /%s", name)
		}
		fmt.Fprintf(&b, "%s\t%s %s %s\n", ip, alias, short, cname)
	}
	return b.String(), nil
}

func appendHosts(dir, lines string) {
	if lines == "" {
		return
	}
	p := filepath.Join(dir, "hosts")
	b, err := os.ReadFile(p)
	if err != nil {
		return
	}
	for _, l := range strings.SplitAfter(lines, "\n") {
		if l != "" && !strings.Contains(string(b), l) {
			b = append(b, l...)
		}
	}
	os.WriteFile(p, b, 0o644)
}
