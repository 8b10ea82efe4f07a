package tests

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// userSubnet is a /24 next to daemon d's own bridge subnet (10.A.B.0/24 →
// 10.A.B+off.0/24), so parallel daemons never collide.
func userSubnet(d *daemon, off int) (subnet, prefix string) {
	_, bip, _ := netNames(d.root)
	parts := strings.Split(strings.TrimSuffix(bip, ".1/24"), ".")
	var b int
	fmt.Sscan(parts[2], &b)
	prefix = fmt.Sprintf("10.%s.%d.", parts[1], (b+off)%256)
	return prefix + "0/24", prefix
}

// --mac-address, --ip, --ip6 and --add-host host-gateway through both CLIs.
func TestNetworkEndpointOptions(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	_, bip, _ := netNames(d.root)
	gw := strings.TrimSuffix(bip, "/24")
	sub, prefix := userSubnet(d, 111)
	d.must("network", "create", "--subnet", sub, "fx")
	defer d.skiff("network", "rm", "fx")
	show := "cat /sys/class/net/eth0/address; ip -o -4 addr show eth0; grep gw /etc/hosts; true"
	for i, cli := range []struct {
		name string
		run  func(...string) (string, string, int)
	}{{"skiff", d.skiff}, {"docker", d.docker}} {
		ip := fmt.Sprintf("%s%d", prefix, 60+i)
		mac := fmt.Sprintf("92:d0:c6:0a:29:3%d", i)
		for _, tc := range []struct {
			args []string
			want []string // in the output, or in the error when code is 125
			code int
		}{
			{[]string{"--network", "fx", "--ip", ip, "--mac-address", mac, "--add-host", "gw:host-gateway"},
				[]string{mac, "inet " + ip + "/24", gw + "\tgw"}, 0},
			{[]string{"--mac-address", mac}, []string{mac}, 0},
			{[]string{"--add-host", "gw:host-gateway"}, []string{gw + "\tgw"}, 0},
			{[]string{"--mac-address", "92:d0:zz"}, []string{"92:d0:zz is not a valid mac address"}, 125},
			{[]string{"--ip", prefix + "70"}, []string{"user specified IP address is supported on user defined networks only"}, 125},
			{[]string{"--network", "fx", "--ip", "192.0.2.9"}, []string{"no configured subnet contains IP address 192.0.2.9"}, 125},
			{[]string{"--network", "fx", "--ip6", "fd00::9"}, []string{"no configured subnet contains IP address fd00::9"}, 125},
		} {
			args := append(append([]string{"run", "--rm"}, tc.args...), "busybox", "sh", "-c", show)
			out, errOut, code := cli.run(args...)
			if code != tc.code {
				t.Errorf("%s %v: exit %d, want %d: %s%s", cli.name, tc.args, code, tc.code, out, errOut)
				continue
			}
			for _, w := range tc.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("%s %v: no %q in:\n%s%s", cli.name, tc.args, w, out, errOut)
				}
			}
		}
	}
	// inspect shows the requested and the actual MAC and address.
	ip := prefix + "80"
	d.must("run", "-d", "--name", "mm", "--network", "fx", "--ip", ip, "--mac-address", "92:d0:c6:0a:29:99", "busybox", "sleep", "600")
	defer d.skiff("rm", "-f", "mm")
	out, errOut, code := d.docker("inspect", "-f", "{{.NetworkSettings.Networks.fx.MacAddress}} {{.NetworkSettings.Networks.fx.IPAddress}} {{.NetworkSettings.Networks.fx.IPAMConfig.IPv4Address}} {{index .NetworkSettings.Networks.fx.DNSNames 0}}", "mm")
	if code != 0 || strings.TrimSpace(out) != "92:d0:c6:0a:29:99 "+ip+" "+ip+" mm" {
		t.Fatalf("inspect: %q %s", out, errOut)
	}
	if out := d.must("network", "inspect", "-f", "{{range .Containers}}{{.MacAddress}}{{end}}", "fx"); strings.TrimSpace(out) != "92:d0:c6:0a:29:99" {
		t.Fatalf("network inspect: %q", out)
	}
}

// --link on a user-defined network: an alias only the linking container
// resolves; on the default bridge: /etc/hosts entries.
func TestLinks(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	sub, _ := userSubnet(d, 112)
	d.must("network", "create", "--subnet", sub, "ln")
	d.must("run", "-d", "--name", "db", "--hostname", "dbhost", "--network", "ln", "busybox", "sleep", "600")
	d.must("run", "-d", "--name", "db2", "--expose", "5432", "-e", "PGUSER=me", "busybox", "sleep", "600")
	defer d.skiff("network", "rm", "ln")
	defer d.skiff("rm", "-f", "db", "db2")
	dbIP := strings.TrimSpace(d.must("inspect", "-f", "{{.NetworkSettings.Networks.ln.IPAddress}}", "db"))
	db2IP := strings.TrimSpace(d.must("inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "db2"))
	for _, cli := range []struct {
		name string
		run  func(...string) (string, string, int)
	}{{"skiff", d.skiff}, {"docker", d.docker}} {
		out, errOut, code := cli.run("run", "--rm", "--network", "ln", "--link", "db:sql", "busybox", "sh", "-c", "nslookup sql 127.0.0.11 && ping -c1 -W2 sql")
		if code != 0 || !strings.Contains(out, dbIP) {
			t.Errorf("%s: --link db:sql on a user network: exit %d:\n%s%s", cli.name, code, out, errOut)
		}
		// The hostname resolves too (dockerd's DNSNames).
		if out, errOut, code := cli.run("run", "--rm", "--network", "ln", "busybox", "nslookup", "dbhost", "127.0.0.11"); code != 0 || !strings.Contains(out, dbIP) {
			t.Errorf("%s: hostname: exit %d:\n%s%s", cli.name, code, out, errOut)
		}
		// Another container on the network does not resolve the alias.
		if out, _, code := cli.run("run", "--rm", "--network", "ln", "busybox", "nslookup", "sql", "127.0.0.11"); code == 0 {
			t.Errorf("%s: a container without the link resolved sql:\n%s", cli.name, out)
		}
		// Legacy link on the default bridge.
		out, errOut, code = cli.run("run", "--rm", "--name", "p-"+cli.name, "--link", "db2:old", "busybox", "sh", "-c", "cat /etc/hosts; env; ping -c1 -W2 old")
		for _, w := range []string{db2IP + "\told ", "OLD_PORT=tcp://" + db2IP + ":5432\n", "OLD_PORT_5432_TCP_ADDR=" + db2IP + "\n",
			"OLD_NAME=/p-" + cli.name + "/old\n", "OLD_ENV_PGUSER=me\n"} {
			if code != 0 || !strings.Contains(out, w) {
				t.Errorf("%s: --link db2:old on the bridge: exit %d, no %q:\n%s%s", cli.name, code, w, out, errOut)
			}
		}
	}
}

// Both compose clients bring up a project on a user network with aliases,
// links and a MAC address. Debian's docker-compose 1.29 (docker-py)
// creates each container on one network, disconnects and connects it
// again with aliases and links, then starts it; compose v2 gives every
// endpoint at create.
func TestComposeNetworks(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	v1, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Fatal("docker-compose not installed (hack/deps.sh installs it)")
	}
	for i, cl := range []struct {
		name, bin, sep string
	}{{"v1", v1, "_"}, {"v2", composeV2(t), "-"}} {
		t.Run(cl.name, func(t *testing.T) {
			testComposeNetworks(t, d, cl.bin, fmt.Sprintf("c%d", i+1), cl.sep, 113+i)
		})
	}
}

func testComposeNetworks(t *testing.T, d *daemon, bin, proj, sep string, subnetOff int) {
	sub, _ := userSubnet(d, subnetOff)
	dir := t.TempDir()
	yml := fmt.Sprintf(`version: "2.4"
services:
  db:
    image: busybox
    command: sleep 600
    networks:
      appnet:
        aliases: [database]
  web:
    image: busybox
    command: sleep 600
    links: ["db:sql"]
    external_links: ["%[2]s:legacy"]
    mac_address: "92:d0:c6:0a:29:55"
    networks: [appnet, extnet]
  other:
    image: busybox
    command: sleep 600
    networks: [appnet]
  www:
    image: busybox
    command: ["sh", "-c", "echo hello-www > /tmp/index.html; exec httpd -f -p 80 -h /tmp"]
    networks: [appnet]
networks:
  appnet:
    ipam:
      config: [{subnet: %[1]q}]
  extnet:
    external: true
    name: %[3]s
`, sub, proj+"-ext", proj+"-extnet")
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := func(args ...string) (string, string, int) {
		return d.run(nil, bin, append([]string{"-f", filepath.Join(dir, "docker-compose.yml"), "-p", proj}, args...)...)
	}
	ctr := func(svc string) string { return proj + sep + svc + sep + "1" }
	netName := proj + "_appnet"
	// A container of no project on a network of no project, reached
	// through external_links.
	extSub, _ := userSubnet(d, subnetOff+10)
	d.must("network", "create", "--subnet", extSub, proj+"-extnet")
	defer d.skiff("network", "rm", proj+"-extnet")
	d.must("run", "-d", "--name", proj+"-ext", "--network", proj+"-extnet", "busybox", "sleep", "600")
	defer d.skiff("rm", "-f", proj+"-ext")
	extIP := strings.TrimSpace(d.must("inspect", "-f", "{{(index .NetworkSettings.Networks \""+proj+"-extnet\").IPAddress}}", proj+"-ext"))
	if out, errOut, code := compose("up", "-d"); code != 0 {
		t.Fatalf("up: exit %d:\n%s%s\n%s", code, out, errOut, d.log())
	}
	defer compose("down")
	dbIP := strings.TrimSpace(d.must("inspect", "-f", "{{(index .NetworkSettings.Networks \""+netName+"\").IPAddress}}", ctr("db")))
	for _, tc := range []struct{ from, name, want string }{
		{ctr("web"), "sql", dbIP}, {ctr("web"), "database", dbIP}, {ctr("web"), "db", dbIP},
		{ctr("other"), "database", dbIP}, {ctr("other"), "sql", ""},
		{ctr("web"), "legacy", extIP}, {ctr("other"), "legacy", ""},
	} {
		out, _, code := d.skiff("exec", tc.from, "nslookup", tc.name, "127.0.0.11")
		if tc.want == "" && code == 0 || tc.want != "" && (code != 0 || !strings.Contains(out, tc.want)) {
			t.Errorf("%s resolves %s: exit %d:\n%s", tc.from, tc.name, code, out)
		}
	}
	if out := d.must("exec", ctr("web"), "cat", "/sys/class/net/eth0/address"); strings.TrimSpace(out) != "92:d0:c6:0a:29:55" {
		t.Errorf("mac_address: %q", out)
	}
	if _, _, code := d.skiff("exec", ctr("web"), "ping", "-c1", "-W2", "sql"); code != 0 {
		t.Error("web cannot ping sql")
	}
	out, errOut, code := d.docker("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", netName)
	for _, n := range []string{ctr("db"), ctr("web"), ctr("other")} {
		if code != 0 || !strings.Contains(out, n) {
			t.Errorf("network inspect lacks %s: %q %s", n, out, errOut)
		}
	}
	out, _, _ = d.docker("inspect", "-f", "{{with index .NetworkSettings.Networks \""+netName+"\"}}{{.Aliases}} {{.Links}}{{end}}", ctr("web"))
	if !strings.Contains(out, "web") || !strings.Contains(out, "sql") {
		t.Errorf("inspect web: %q", out)
	}
	// compose run -p on the user network: the published port answers.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	out, errOut, code = compose("run", "-d", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "www")
	if code != 0 {
		t.Fatalf("run -d -p: exit %d:\n%s%s", code, out, errOut)
	}
	if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/index.html", port)); got != "hello-www\n" {
		t.Errorf("compose run -p: %q", got)
	}
	// A one-off container is not the project's to remove (v2's down
	// leaves it, and then the network, as with dockerd).
	d.must("rm", "-f", strings.TrimSpace(out))
	if out, errOut, code := compose("down"); code != 0 {
		t.Fatalf("down: exit %d:\n%s%s", code, out, errOut)
	}
	if out := d.must("network", "ls", "-q", "--filter", "name="+netName); out != "" {
		t.Fatalf("network left after down: %q", out)
	}
}

// Connect and disconnect of a created container are recorded and attached
// at its start; of a running one, at once. On a pure cgroup v2 view.
func TestConnectCreated(t *testing.T) {
	d := startDaemonWith(t, true)
	d.importBusybox()
	sub, _ := userSubnet(d, 115)
	d.must("network", "create", "--subnet", sub, "cn")
	defer d.skiff("network", "rm", "cn")
	d.must("run", "-d", "--name", "db", "--network", "cn", "busybox", "sleep", "600")
	defer d.skiff("rm", "-f", "db", "cc", "hh")
	dbIP := strings.TrimSpace(d.must("inspect", "-f", "{{.NetworkSettings.Networks.cn.IPAddress}}", "db"))
	docker := func(args ...string) string {
		t.Helper()
		out, errOut, code := d.docker(args...)
		if code != 0 {
			t.Fatalf("docker %v: exit %d: %s%s", args, code, out, errOut)
		}
		return out
	}
	docker("create", "--name", "cc", "--network", "cn", "busybox", "sleep", "600")
	docker("network", "disconnect", "cn", "cc")
	if out := docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", "cc"); strings.TrimSpace(out) != "{}" {
		t.Fatalf("networks after disconnect: %s", out)
	}
	docker("network", "connect", "--alias", "zed", "--link", "db:dbl", "--ip", strings.TrimSuffix(sub, "0/24")+"77", "cn", "cc")
	out := docker("inspect", "-f", "{{.HostConfig.NetworkMode}} {{.NetworkSettings.Networks.cn.Aliases}} {{.NetworkSettings.Networks.cn.Links}} {{.NetworkSettings.Networks.cn.IPAMConfig.IPv4Address}}", "cc")
	if want := "cn [zed] [db:dbl] " + strings.TrimSuffix(sub, "0/24") + "77"; strings.TrimSpace(out) != want {
		t.Fatalf("inspect before start: %q, want %q", out, want)
	}
	docker("start", "cc")
	if out := docker("exec", "cc", "ip", "-o", "-4", "addr", "show", "eth0"); !strings.Contains(out, strings.TrimSuffix(sub, "0/24")+"77/24") {
		t.Fatalf("address: %s", out)
	}
	if out := docker("exec", "cc", "nslookup", "dbl", "127.0.0.11"); !strings.Contains(out, dbIP) {
		t.Fatalf("link alias: %s", out)
	}
	if out := docker("run", "--rm", "--network", "cn", "busybox", "nslookup", "zed", "127.0.0.11"); !strings.Contains(out, strings.TrimSuffix(sub, "0/24")+"77") {
		t.Fatalf("network alias: %s", out)
	}
	// Live connect and disconnect of the default bridge.
	docker("network", "connect", "bridge", "cc")
	if out := docker("exec", "cc", "ip", "-o", "-4", "addr"); !strings.Contains(out, "eth1") {
		t.Fatalf("after connect:\n%s", out)
	}
	if out := docker("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", "bridge"); !strings.Contains(out, "cc") {
		t.Fatalf("network inspect bridge: %q", out)
	}
	docker("network", "disconnect", "bridge", "cc")
	if out := docker("exec", "cc", "ip", "-o", "-4", "addr"); strings.Contains(out, "eth1") {
		t.Fatalf("after disconnect:\n%s", out)
	}
	// A container in the host's namespace cannot be connected.
	docker("create", "--name", "hh", "--network", "host", "busybox", "true")
	if _, errOut, code := d.docker("network", "connect", "cn", "hh"); code == 0 || !strings.Contains(errOut, "container sharing network namespace with another container or host cannot be connected to any other network") {
		t.Fatalf("connect of a host-mode container: exit %d %s", code, errOut)
	}
}
