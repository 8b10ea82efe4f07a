package tests

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// httpGet fetches url from the host, retrying while the server starts.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	cl := &http.Client{Timeout: 2 * time.Second}
	var last error
	for i := 0; i < 50; i++ {
		resp, err := cl.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

// containerGet fetches url from a new container on net, retrying while the
// server starts. (The static busybox's wget crashes with -T and when run
// from its sh, so the retry loop is here.)
func containerGet(d *daemon, net, url string) string {
	var out, errOut string
	for i := 0; i < 20; i++ {
		var code int
		out, errOut, code = d.skiff("run", "--rm", "--network", net, "busybox", "wget", "-q", "-O", "-", url)
		if code == 0 {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "failed: " + errOut
}

const webCmd = "echo hello-$HOSTNAME > /tmp/index.html; exec httpd -f -p 80 -h /tmp"

func TestBridgeNetworking(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	_, bip, _ := netNames(d.root)
	prefix := bip[:strings.LastIndexByte(bip, '.')+1]

	// Default network: an address from the bridge's subnet, a stable MAC,
	// a default route, /etc/hosts with the container's own address.
	out := d.must("run", "--rm", "busybox", "sh", "-c", "ip addr show eth0; ip route; cat /etc/hosts")
	if !strings.Contains(out, "inet "+prefix) || !strings.Contains(out, "link/ether 02:42:") || !strings.Contains(out, "default via "+prefix+"1") {
		t.Fatalf("container network:\n%s", out)
	}

	// Two containers talk over the default bridge; a published port answers
	// on the host's loopback.
	id := strings.TrimSpace(d.must("run", "-d", "--name", "web", "-p", "80", "-p", "127.0.0.1:0:80", "busybox", "sh", "-c", webCmd))
	ip := strings.TrimSpace(d.must("inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "web"))
	// The pre-1.52 top-level fields that scripts template on, via the docker CLI too.
	if out, _, _ := d.docker("inspect", "-f", "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Gateway}}", "web"); !strings.HasPrefix(out, ip+" ") || strings.TrimSpace(out) == ip {
		t.Errorf("legacy NetworkSettings fields: %q (IP %s)", out, ip)
	}
	if !strings.HasPrefix(ip, prefix) {
		t.Fatalf("web address %q not in %s", ip, bip)
	}
	mac := strings.TrimSpace(d.must("inspect", "-f", "{{.NetworkSettings.Networks.bridge.MacAddress}}", "web"))
	if !strings.HasPrefix(mac, "02:42:") {
		t.Fatalf("mac %q", mac)
	}
	if got := containerGet(d, "bridge", "http://"+ip+"/index.html"); !strings.Contains(got, "hello-") {
		t.Fatalf("container to container: %q", got)
	}
	if got := d.must("run", "--rm", "--link", "web:webalias", "busybox", "wget", "-q", "-O", "-", "http://webalias/index.html"); !strings.Contains(got, "hello-") {
		t.Fatalf("--link: %q", got)
	}
	ports, _, _ := d.docker("port", "web", "80")
	var hostPorts []string
	for _, l := range strings.Split(strings.TrimSpace(ports), "\n") {
		hostPorts = append(hostPorts, l[strings.LastIndexByte(l, ':')+1:])
	}
	if len(hostPorts) != 2 {
		t.Fatalf("docker port web 80: %q", ports)
	}
	for _, p := range hostPorts {
		if got := httpGet(t, "http://127.0.0.1:"+p+"/index.html"); got != "hello-"+id[:12]+"\n" {
			t.Fatalf("published port %s: %q", p, got)
		}
	}
	// Through a host address (the bridge's gateway) with the port bound on
	// every address: from a neighbour on the bridge, and from the
	// container itself (hairpin).
	var anyPort string
	for _, l := range strings.Split(strings.TrimSpace(ports), "\n") {
		if strings.HasPrefix(l, "0.0.0.0:") {
			anyPort = strings.TrimPrefix(l, "0.0.0.0:")
		}
	}
	viaHost := "http://" + prefix + "1:" + anyPort + "/index.html"
	if got := containerGet(d, "bridge", viaHost); got != "hello-"+id[:12]+"\n" {
		t.Fatalf("neighbour to %s: %q", viaHost, got)
	}
	if got := d.must("exec", "web", "wget", "-q", "-O", "-", viaHost); got != "hello-"+id[:12]+"\n" {
		t.Fatalf("hairpin to its own published port %s: %q", viaHost, got)
	}
	// Publishing the same host port twice fails; the failed start leaves
	// nothing behind.
	if _, errOut, code := d.skiff("run", "--rm", "-p", "127.0.0.1:"+hostPorts[1]+":80", "busybox", "true"); code == 0 || !strings.Contains(errOut, "already allocated") {
		t.Fatalf("duplicate port: exit %d: %s", code, errOut)
	}
	if out := d.must("port", "web"); !strings.Contains(out, "80/tcp -> 0.0.0.0:"+hostPorts[0]) && !strings.Contains(out, "80/tcp -> 0.0.0.0:"+hostPorts[1]) {
		t.Fatalf("skiff port web: %q", out)
	}
	d.must("rm", "-f", "web")
	// The same host port, right away: its rules go in the background, and
	// a start that asks for it waits for them rather than failing.
	d.must("run", "--rm", "-p", "127.0.0.1:"+hostPorts[1]+":80", "busybox", "true")
	if _, err := (&http.Client{Timeout: time.Second}).Get("http://127.0.0.1:" + hostPorts[0] + "/"); err == nil {
		t.Fatal("published port still answers after the container is gone")
	}
	if ents, _ := os.ReadDir(filepath.Join(d.root, "exec", "netns")); len(ents) != 0 {
		t.Fatalf("network namespaces left: %v", ents)
	}

	// --net none and host still work.
	if out := d.must("run", "--rm", "--net", "none", "busybox", "ip", "-o", "link"); strings.Contains(out, "eth0") {
		t.Fatalf("--net none has eth0:\n%s", out)
	}
}

// Addresses stay unique across many parallel starts and an engine crash
// leaves no namespace, rule or lease behind once it starts again.
func TestBridgeParallelAndCrash(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	const n = 12
	errc := make(chan string, n)
	for i := 0; i < n; i++ {
		go func() {
			out, errOut, code := d.skiff("run", "-d", "busybox", "sleep", "600")
			if code != 0 {
				errc <- "ERR " + errOut
				return
			}
			errc <- strings.TrimSpace(out)
		}()
	}
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		id := <-errc
		if strings.HasPrefix(id, "ERR") {
			t.Fatal(id)
		}
		ip := strings.TrimSpace(d.must("inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", id))
		if ip == "" || seen[ip] {
			t.Fatalf("address %q duplicated or empty", ip)
		}
		seen[ip] = true
	}
	d.kill9()
	d.start()
	// The containers survived the engine; after restart they keep their
	// addresses; removing them removes their namespaces.
	out := d.must("ps", "-q")
	if len(strings.Fields(out)) != n {
		t.Fatalf("after restart: %q", out)
	}
	d.must("run", "-d", "-p", "80", "--name", "after", "busybox", "sh", "-c", webCmd)
	ids := strings.Fields(d.must("ps", "-aq"))
	d.must(append([]string{"rm", "-f"}, ids...)...)
	if ents, _ := os.ReadDir(filepath.Join(d.root, "exec", "netns")); len(ents) != 0 {
		t.Fatalf("network namespaces left: %v", ents)
	}
}

func TestUserNetworks(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	br, bip, _ := netNames(d.root)
	// Subnets next to the daemon's own: 10.A.B.0/24 → 10.A.B+1 and B+2 (mod 256).
	parts := strings.Split(strings.TrimSuffix(bip, ".1/24"), ".")
	var b int
	fmt.Sscan(parts[2], &b)
	sub1 := fmt.Sprintf("10.%s.%d.0/24", parts[1], (b+101)%256)
	sub2 := fmt.Sprintf("10.%s.%d.0/24", parts[1], (b+102)%256)
	br1 := br[:len(br)-1] + "n" // own bridge name through -o, unique per daemon

	d.must("network", "create", "--subnet", sub1, "--label", "team=a", "-o", "com.docker.network.bridge.name="+br1, "front")
	if _, errOut, code := d.docker("network", "create", "--subnet", sub2, "--internal", "back"); code != 0 {
		t.Fatalf("docker network create: %s", errOut)
	}
	out := d.must("network", "ls")
	for _, n := range []string{"bridge", "host", "none", "front", "back"} {
		if !strings.Contains(out, n) {
			t.Fatalf("network ls lacks %s:\n%s", n, out)
		}
	}
	// --format and --filter, with our CLI and docker's.
	for _, cli := range []func(...string) (string, string, int){d.skiff, d.docker} {
		out, errOut, code := cli("network", "ls", "--filter", "label=team=a", "--format", "{{.Name}} {{.Driver}} {{.Internal}} {{.Label \"team\"}}")
		if code != 0 || out != "front bridge false a\n" {
			t.Fatalf("network ls --format: exit %d: %q %s", code, out, errOut)
		}
	}
	if out := d.must("network", "ls", "--filter", "name=back", "--format", "{{json .}}"); !strings.Contains(out, `"Internal":"true"`) || !strings.Contains(out, `"Name":"back"`) {
		t.Fatalf("network ls --format json: %s", out)
	}
	if _, err := net.InterfaceByName(br1); err != nil {
		t.Fatalf("bridge %s: %v", br1, err)
	}
	ip1 := strings.TrimSuffix(sub1, "0/24") + "50"
	d.must("run", "-d", "--name", "srv", "--network", "front", "--ip", ip1, "--network-alias", "webby", "busybox", "sh", "-c", webCmd)

	// By address, by name and by alias through the embedded DNS.
	for _, host := range []string{ip1, "srv", "webby"} {
		if got := containerGet(d, "front", "http://"+host+"/index.html"); !strings.HasPrefix(got, "hello-") {
			t.Fatalf("front → %s: %q", host, got)
		}
	}
	if out := d.must("run", "--rm", "--network", "front", "busybox", "cat", "/etc/resolv.conf"); !strings.Contains(out, "nameserver 127.0.0.11") {
		t.Fatalf("resolv.conf:\n%s", out)
	}
	// network inspect lists the container; inspect shows its settings.
	if out := d.must("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}", "front"); strings.TrimSpace(out) != "srv "+ip1+"/24" {
		t.Fatalf("network inspect: %q", out)
	}
	if out := d.must("inspect", "-f", "{{.NetworkSettings.Networks.front.IPAddress}} {{.NetworkSettings.Networks.front.Aliases}}", "srv"); strings.TrimSpace(out) != ip1+" [webby]" {
		t.Fatalf("inspect: %q", out)
	}
	// The same address twice is refused.
	if _, errOut, code := d.skiff("run", "--rm", "--network", "front", "--ip", ip1, "busybox", "true"); code == 0 || !strings.Contains(errOut, "already in use") {
		t.Fatalf("duplicate --ip: exit %d %s", code, errOut)
	}
	// Isolation: from another network neither the address nor the name
	// reaches srv.
	if _, _, code := d.skiff("run", "--rm", "--network", "back", "busybox", "wget", "-q", "-O", "-", "http://"+ip1+"/index.html"); code == 0 {
		t.Fatal("back reached front by address")
	}
	if _, _, code := d.skiff("run", "--rm", "--network", "back", "--dns", "127.0.0.1", "busybox", "nslookup", "srv"); code == 0 {
		t.Fatal("back resolved a container of front")
	}
	// connect/disconnect a running container.
	d.must("network", "connect", "back", "srv")
	if out := d.must("exec", "srv", "ip", "-o", "-4", "addr"); !strings.Contains(out, "eth1") {
		t.Fatalf("after connect:\n%s", out)
	}
	d.must("network", "disconnect", "back", "srv")
	if out := d.must("exec", "srv", "ip", "-o", "-4", "addr"); strings.Contains(out, "eth1") {
		t.Fatalf("after disconnect:\n%s", out)
	}
	// container:NAME shares srv's network namespace.
	if out := d.must("run", "--rm", "--network", "container:srv", "busybox", "ip", "-o", "-4", "addr"); !strings.Contains(out, ip1) {
		t.Fatalf("container:srv:\n%s", out)
	}
	if _, errOut, code := d.skiff("network", "rm", "front"); code == 0 || !strings.Contains(errOut, "active endpoints") {
		t.Fatalf("rm of a used network: exit %d %s", code, errOut)
	}
	d.must("rm", "-f", "srv")
	if out := d.must("network", "prune", "-f"); !strings.Contains(out, "front") || !strings.Contains(out, "back") {
		t.Fatalf("prune: %q", out)
	}
	if _, err := net.InterfaceByName(br1); err == nil {
		t.Fatalf("bridge %s left after network rm", br1)
	}
}
