package tests

import (
	"context"
	"strings"
	"testing"

	"github.com/moby/moby/client"
)

// TestLinkLocalIPs: --link-local-ip puts the addresses on the container's
// interface of that network (run and network connect, docker's and
// skiff's CLIs), inspect shows them, and dockerd's refusal is kept.
func TestLinkLocalIPs(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	d.must("network", "create", "--subnet", "10.251.7.0/24", "llnet")
	for i, front := range []string{"docker", "skiff"} {
		run := d.skiff
		if front == "docker" {
			run = d.docker
		}
		name := front + "-ll"
		if out, errOut, code := run("run", "-d", "--name", name, "--link-local-ip", "169.254.30.1", "busybox", "sleep", "300"); code != 0 {
			t.Fatalf("%s run: exit %d %s %s", front, code, out, errOut)
		}
		addr := []string{"169.254.31.1", "169.254.32.1"}[i]
		if out, errOut, code := run("network", "connect", "--link-local-ip", addr, "llnet", name); code != 0 {
			t.Fatalf("%s network connect: exit %d %s %s", front, code, out, errOut)
		}
		out, _, _ := run("exec", name, "ip", "-o", "addr", "show")
		for _, want := range []string{"eth0    inet 169.254.30.1/16 ", "eth1    inet " + addr + "/16 ", "eth1    inet 10.251.7."} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: ip addr lacks %q:\n%s", front, want, out)
			}
		}
		if out, errOut, code := run("network", "connect", "--link-local-ip", "::", "bridge", name); code == 0 || !strings.Contains(errOut, "invalid link-local IP address: ::") {
			t.Errorf("%s connect with ::: exit %d %q %q", front, code, out, errOut)
		}
		res, err := d.cli.ContainerInspect(context.Background(), name, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nets := res.Container.NetworkSettings.Networks
		if ic := nets["bridge"].IPAMConfig; ic == nil || len(ic.LinkLocalIPs) != 1 || ic.LinkLocalIPs[0].String() != "169.254.30.1" {
			t.Errorf("%s: bridge IPAMConfig %+v", front, ic)
		}
		if ic := nets["llnet"].IPAMConfig; ic == nil || len(ic.LinkLocalIPs) != 1 || ic.LinkLocalIPs[0].String() != addr {
			t.Errorf("%s: llnet IPAMConfig %+v", front, ic)
		}
		d.must("rm", "-f", name)

		// IPv6 is off on the interface of an IPv4-only network, as dockerd
		// has it; an IPv6 link-local address then fails the start with
		// dockerd's words, which the CLIs read as 126.
		if out, errOut, code := run("run", "--rm", "busybox", "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"); code != 0 || out != "1\n" {
			t.Errorf("%s: disable_ipv6 %q, exit %d %s", front, out, code, errOut)
		}
		out, errOut, code := run("run", "--rm", "--link-local-ip", "fe80::10", "busybox", "true")
		if code != 126 || !strings.Contains(errOut, `error setting interface "eth0" link local IPs to [fe80::10/64]: permission denied`) {
			t.Errorf("%s: fe80::10: exit %d %q %q", front, code, out, errOut)
		}
	}
	if out := d.must("ps", "-aq"); out != "" {
		t.Errorf("left containers: %q", out)
	}
}

// TestNetworkIPv6Refused: skiff's networks are IPv4 only, so --ipv6 (or
// --ipv4=false) is refused rather than dropped, through both CLIs.
func TestNetworkIPv6Refused(t *testing.T) {
	d := startDaemon(t)
	for _, front := range []string{"docker", "skiff"} {
		run := d.skiff
		if front == "docker" {
			run = d.docker
		}
		for _, args := range [][]string{{"--ipv6", "--subnet", "fd5a:1::/64"}, {"--ipv6"}, {"--ipv4=false", "--ipv6"}} {
			cmd := append(append([]string{"network", "create"}, args...), front+"-v6")
			if _, errOut, code := run(cmd...); code != 1 || !strings.Contains(errOut, "IPv6 networks are not supported: skiff's networks are IPv4 only") {
				t.Errorf("%s %v: exit %d %q", front, args, code, errOut)
			}
		}
		if _, errOut, code := run("network", "create", "--ipv6=false", front+"-v4"); code != 0 {
			t.Errorf("%s --ipv6=false: exit %d %q", front, code, errOut)
		}
		d.must("network", "rm", front+"-v4")
	}
}
