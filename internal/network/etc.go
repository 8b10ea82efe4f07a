package network

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// dnsAddress is where the embedded DNS server answers in a container
// (internal/dns.Address; that package is the controller's peer).
const dnsAddress = "127.0.0.11"

// WriteEtcFiles writes the files bound over /etc/hostname, /etc/hosts and
// /etc/resolv.conf into dir. They are bind-mounted by the runtime, which
// resolves the destinations inside the root, so a symlink in the image
// can't redirect them.
func (c *Controller) WriteEtcFiles(dir string, cfg *container.Config, hc *container.HostConfig) error {
	hosts, err := HostsFile(cfg.Hostname, hc.ExtraHosts, hc.NetworkMode.IsHost(), c.HostGateway())
	if err != nil {
		return err
	}
	hostname := cfg.Hostname
	if cfg.Domainname != "" {
		hostname += "." + cfg.Domainname
	}
	resolv := ResolvConf(hc)
	for name, data := range map[string]string{"hostname": hostname + "\n", "hosts": hosts, "resolv.conf": resolv} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// HostsFile is a container's /etc/hosts at create: the host's own with
// --network host, else localhost and a placeholder for its own name (its
// address replaces it at start), then the --add-host entries, where
// host-gateway stands for hostGateway.
func HostsFile(hostname string, extra []string, hostMode bool, hostGateway string) (string, error) {
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	if hostMode {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = string(b)
		}
	} else {
		hosts += "127.0.1.1\t" + hostname + "\n"
	}
	for _, h := range extra {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			name, ip, ok = strings.Cut(h, "=")
		}
		if !ok {
			return "", errdefs.Invalid("invalid argument %q for \"--add-host\" flag", h)
		}
		if ip == "host-gateway" {
			if hostGateway == "" {
				return "", errdefs.Invalid("unable to derive the IP value for host-gateway")
			}
			ip = hostGateway
		}
		hosts += ip + "\t" + name + "\n"
	}
	return hosts, nil
}

// ResolvConf derives the container's resolv.conf from the host's, dropping
// loopback name servers a container can't reach (Docker falls back to
// public resolvers then).
func ResolvConf(hc *container.HostConfig) string {
	host, _ := os.ReadFile("/etc/resolv.conf")
	var ns, search, opts []string
	for _, line := range strings.Split(string(host), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if hc.NetworkMode.IsHost() || !(strings.HasPrefix(f[1], "127.") || f[1] == "::1") {
				ns = append(ns, f[1])
			}
		case "search":
			search = f[1:]
		case "options":
			opts = append(opts, f[1:]...)
		}
	}
	if len(hc.DNS) > 0 {
		ns = ns[:0]
		for _, a := range hc.DNS {
			ns = append(ns, a.String())
		}
	}
	if len(hc.DNSSearch) > 0 {
		search = hc.DNSSearch
	}
	if len(hc.DNSOptions) > 0 {
		opts = hc.DNSOptions
	}
	if len(ns) == 0 {
		ns = []string{"8.8.8.8", "8.8.4.4"}
	}
	var b strings.Builder
	for _, n := range ns {
		b.WriteString("nameserver " + n + "\n")
	}
	if len(search) > 0 {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	if len(opts) > 0 {
		b.WriteString("options " + strings.Join(opts, " ") + "\n")
	}
	return b.String()
}

// rewriteHosts replaces the 127.0.1.1 placeholder for the container's own
// name with its address.
func rewriteHosts(dir, hostname, ip string) {
	p := filepath.Join(dir, "hosts")
	b, err := os.ReadFile(p)
	if err != nil {
		return
	}
	old := "127.0.1.1\t" + hostname + "\n"
	s := string(b)
	if i := strings.Index(s, old); i >= 0 {
		s = s[:i] + ip + "\t" + hostname + "\n" + s[i+len(old):]
	} else if !strings.Contains(s, ip+"\t"+hostname+"\n") {
		s += ip + "\t" + hostname + "\n"
	}
	os.WriteFile(p, []byte(s), 0o644)
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
	s := "nameserver " + dnsAddress + "\n"
	for _, l := range keep {
		s += l + "\n"
	}
	if !strings.Contains(s, "ndots:") {
		s += "options ndots:0\n"
	}
	os.WriteFile(p, []byte(s), 0o644)
}
