package tests

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// hostNS is the namespace link of the test process, the host's.
func hostNS(t *testing.T, typ string) string {
	t.Helper()
	l, err := os.Readlink("/proc/self/ns/" + typ)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type cliFunc func(...string) (string, string, int)

// clis is each client a test goes through: skiff's CLI and the docker CLI.
func (d *daemon) clis() map[string]cliFunc {
	return map[string]cliFunc{"skiff": d.skiff, "docker": d.docker}
}

// --pid/--ipc/--uts host share the host's namespace, the default is a new
// one; --ipc none has no /dev/shm, private and shareable a tmpfs of their
// own. Through both CLIs, on cgroup v1 and on the pure v2 view.
func TestNamespaceModesHost(t *testing.T) {
	t.Parallel()
	for _, v2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v1", true: "v2"}[v2], func(t *testing.T) {
			t.Parallel()
			d := startDaemonWith(t, v2)
			d.importBusybox()
			pid, ipc, uts := hostNS(t, "pid"), hostNS(t, "ipc"), hostNS(t, "uts")
			hostname, _ := os.Hostname()
			probe := "for n in pid ipc uts; do readlink /proc/self/ns/$n; done; hostname; grep -c ' /dev/shm ' /proc/mounts"
			cases := []struct {
				name string
				args []string
				same [3]bool // pid, ipc, uts shared with the host
				shm  string  // /dev/shm mounts
			}{
				{"default", nil, [3]bool{}, "1"},
				{"pid host", []string{"--pid", "host"}, [3]bool{true, false, false}, "1"},
				{"ipc host", []string{"--ipc", "host"}, [3]bool{false, true, false}, "1"},
				{"uts host", []string{"--uts", "host"}, [3]bool{false, false, true}, "1"},
				{"ipc private", []string{"--ipc", "private"}, [3]bool{}, "1"},
				{"ipc shareable", []string{"--ipc", "shareable"}, [3]bool{}, "1"},
				{"ipc none", []string{"--ipc", "none"}, [3]bool{}, "0"},
				{"userns host", []string{"--userns", "host"}, [3]bool{}, "1"},
				{"all host", []string{"--pid", "host", "--ipc", "host", "--uts", "host"}, [3]bool{true, true, true}, "1"},
			}
			for cname, cli := range d.clis() {
				for _, tc := range cases {
					args := append(append([]string{"run", "--rm"}, tc.args...), "busybox", "sh", "-c", probe)
					out, errOut, code := cli(args...)
					// grep -c exits 1 when it counts 0.
					if code != 0 && !(tc.shm == "0" && code == 1) {
						t.Errorf("%s %s: exit %d: %s", cname, tc.name, code, errOut)
						continue
					}
					f := strings.Fields(out)
					if len(f) != 5 {
						t.Errorf("%s %s: output %q", cname, tc.name, out)
						continue
					}
					for i, host := range []string{pid, ipc, uts} {
						if (f[i] == host) != tc.same[i] {
							t.Errorf("%s %s: namespace %s, host's %s, want shared=%v", cname, tc.name, f[i], host, tc.same[i])
						}
					}
					if (f[3] == hostname) != tc.same[2] {
						t.Errorf("%s %s: hostname %q (host %q)", cname, tc.name, f[3], hostname)
					}
					if f[4] != tc.shm {
						t.Errorf("%s %s: %s /dev/shm mounts, want %s", cname, tc.name, f[4], tc.shm)
					}
				}
			}
			// --pid host shows the host's processes: this test's own.
			if out := d.must("run", "--rm", "--pid", "host", "busybox", "sh", "-c", "test -d /proc/"+strconv.Itoa(os.Getpid())+" && echo seen"); out != "seen\n" {
				t.Errorf("--pid host: %q", out)
			}
			// The IPC mode is recorded: the daemon's default is private.
			d.must("create", "--name", "dflt", "busybox", "true")
			if out := d.must("inspect", "-f", "{{.HostConfig.IpcMode}}", "dflt"); out != "private\n" {
				t.Errorf("default IPC mode %q", out)
			}
		})
	}
}

// --pid host: top, stats and kill still work on the container.
func TestPidHostLiving(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	for cname, cli := range d.clis() {
		name := "ph-" + cname
		if _, errOut, code := cli("run", "-d", "--name", name, "--pid", "host", "busybox", "sleep", "300"); code != 0 {
			t.Fatalf("%s run: %s", cname, errOut)
		}
		if out, errOut, code := cli("exec", name, "sh", "-c", "test -d /proc/"+strconv.Itoa(os.Getpid())+" && echo seen"); code != 0 || out != "seen\n" {
			t.Errorf("%s exec: exit %d %q %s", cname, code, out, errOut)
		}
		out, errOut, code := cli("top", name)
		if code != 0 || !strings.Contains(out, "sleep 300") || strings.Count(out, "\n") != 2 {
			t.Errorf("%s top: exit %d %q %s", cname, code, out, errOut)
		}
		out, errOut, code = cli("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", name)
		if code != 0 || out != name+" 1\n" {
			t.Errorf("%s stats: exit %d %q %s", cname, code, out, errOut)
		}
		if _, errOut, code := cli("kill", name); code != 0 {
			t.Errorf("%s kill: %s", cname, errOut)
		}
		if out, _, _ := cli("wait", name); out != "137\n" {
			t.Errorf("%s wait after kill: %q", cname, out)
		}
	}
}

// --pid/--ipc container:X join X's namespaces; a shareable X's /dev/shm is
// the joiner's. Docker's errors for a missing, stopped or non-shareable X
// and for container: without a name.
func TestNamespaceModesContainer(t *testing.T) {
	t.Parallel()
	for _, v2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v1", true: "v2"}[v2], func(t *testing.T) {
			t.Parallel()
			d := startDaemonWith(t, v2)
			d.importBusybox()
			d.must("run", "-d", "--name", "donor", "--ipc", "shareable", "busybox", "sh", "-c", "echo hi > /dev/shm/note; exec sleep 300")
			d.must("run", "-d", "--name", "priv", "busybox", "sleep", "300")
			d.must("create", "--name", "stopped", "--ipc", "shareable", "busybox", "true")
			donorNS := strings.Fields(d.must("exec", "donor", "sh", "-c", "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc"))
			donorID := strings.TrimSpace(d.must("inspect", "-f", "{{.Id}}", "donor"))
			for cname, cli := range d.clis() {
				out, errOut, code := cli("run", "--rm", "--pid", "container:donor", "--ipc", "container:donor", "busybox", "sh", "-c",
					"readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; cat /dev/shm/note; cat /proc/1/comm")
				if code != 0 || out != donorNS[0]+"\n"+donorNS[1]+"\nhi\nsleep\n" {
					t.Errorf("%s join donor: exit %d %q %s (donor %v)", cname, code, out, errOut, donorNS)
				}
				// The reference is recorded by ID.
				if _, errOut, code := cli("create", "--name", "j-"+cname, "--pid", "container:donor", "--ipc", "container:donor", "busybox", "true"); code != 0 {
					t.Errorf("%s create joiner: %s", cname, errOut)
				}
				out, _, _ = cli("inspect", "-f", "{{.HostConfig.PidMode}} {{.HostConfig.IpcMode}}", "j-"+cname)
				if want := "container:" + donorID + " container:" + donorID + "\n"; out != want {
					t.Errorf("%s recorded modes %q, want %q", cname, out, want)
				}
				for _, tc := range []struct {
					name string
					args []string
					want string
				}{
					{"missing pid donor", []string{"--pid", "container:nosuch"}, "No such container: nosuch"},
					{"missing ipc donor", []string{"--ipc", "container:nosuch"}, "No such container: nosuch"},
					{"stopped pid donor", []string{"--pid", "container:stopped"}, "failed to join PID namespace: container "},
					{"stopped ipc donor", []string{"--ipc", "container:stopped"}, "failed to join IPC namespace: container "},
					{"private ipc donor", []string{"--ipc", "container:priv"}, "non-shareable IPC (hint: use IpcMode:shareable for the donor container)"},
					{"empty ipc container", []string{"--ipc", "container:"}, `failed to join IPC namespace: invalid name or ID supplied: ""`},
					{"empty pid container", []string{"--pid", "container:"}, "invalid PID mode"},
					{"bad ipc mode", []string{"--ipc", "bogus"}, "invalid IPC mode: bogus"},
					{"bad userns", []string{"--userns", "private"}, "--userns: invalid USER mode"},
					{"uts host with hostname", []string{"--uts", "host", "--hostname", "x"}, "conflicting options: hostname and the UTS mode"},
					{"stopped net donor", []string{"--network", "container:stopped"}, "cannot join network namespace of a non running container: container stopped is created"},
					{"net container with hostname", []string{"--network", "container:donor", "--hostname", "x"}, "conflicting options: hostname and the network mode"},
				} {
					args := append(append([]string{"run", "--rm"}, tc.args...), "busybox", "true")
					_, errOut, code := cli(args...)
					if code != 125 || !strings.Contains(errOut, tc.want) {
						t.Errorf("%s %s: exit %d %q, want 125 and %q", cname, tc.name, code, errOut, tc.want)
					}
				}
			}
			// Through the API, a user namespace mode is refused too (no
			// remapping: it would be silently dropped).
			_, err := d.cli.ContainerCreate(context.Background(), client.ContainerCreateOptions{
				Config:     &container.Config{Image: "busybox", Cmd: []string{"true"}},
				HostConfig: &container.HostConfig{UsernsMode: "private"},
			})
			if err == nil || !strings.Contains(err.Error(), "invalid USER mode") {
				t.Errorf("API userns private: %v", err)
			}
			// The donor's shm goes when it stops: nothing is left mounted.
			d.must("rm", "-f", "donor")
			if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), filepath.Join("containers", donorID)) && !v2 {
				t.Errorf("shm of the removed donor still mounted")
			}
		})
	}
}

// daemon.json default-ipc-mode decides the mode of containers that ask for
// none; a bad value stops the daemon from starting, as with dockerd.
func TestDefaultIpcMode(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	d.stop()
	d.extraConfig = `"default-ipc-mode": "shareable"`
	d.start()
	d.must("run", "-d", "--name", "donor", "busybox", "sh", "-c", "echo hi > /dev/shm/note; exec sleep 300")
	if out := d.must("inspect", "-f", "{{.HostConfig.IpcMode}}", "donor"); out != "shareable\n" {
		t.Errorf("IPC mode %q", out)
	}
	if out, errOut, code := d.docker("run", "--rm", "--ipc", "container:donor", "busybox", "cat", "/dev/shm/note"); code != 0 || out != "hi\n" {
		t.Errorf("join default-shareable donor: exit %d %q %s", code, out, errOut)
	}
	d.must("rm", "-f", "donor")
	d.stop()
	d.extraConfig = `"default-ipc-mode": "host"`
	cfg := filepath.Join(d.root, "daemon.json")
	d.writeConfig(cfg)
	_, errOut, code := d.run(nil, filepath.Join(binDir, "skiff"), "daemon", "--config-file", cfg, "-H", "unix://"+filepath.Join(d.root, "bad.sock"),
		"--data-root", filepath.Join(d.root, "data"), "--exec-root", filepath.Join(d.root, "exec"))
	if code == 0 || !strings.Contains(errOut, `IPC mode "host" is not supported as default value; use "shareable" or "private"`) {
		t.Errorf("bad default-ipc-mode: exit %d %s", code, errOut)
	}
	d.extraConfig = ""
	d.start()
}

// --group-add takes names and gids, resolved in the container's /etc/group
// (exec'd processes get them too); an unknown name fails the start.
// --domainname sets the NIS domain name; systempaths=unconfined leaves
// /proc unmasked and writable.
func TestIdentityOptions(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	for cname, cli := range d.clis() {
		out, errOut, code := cli("run", "--rm", "--group-add", "123", "--group-add", "staff", "busybox", "id", "-G")
		if code != 0 || out != "0 50 123\n" { // the kernel sorts them
			t.Errorf("%s group-add: exit %d %q %s", cname, code, out, errOut)
		}
		name := "ga-" + cname
		cli("run", "-d", "--name", name, "--user", "nobody", "--group-add", "staff", "busybox", "sleep", "300")
		if out, errOut, code := cli("exec", name, "id", "-G"); code != 0 || !strings.Contains(out, "50") {
			t.Errorf("%s exec group-add: exit %d %q %s", cname, code, out, errOut)
		}
		_, errOut, code = cli("run", "--rm", "--group-add", "staffx", "busybox", "true")
		if code != 125 || !strings.Contains(errOut, "Unable to find group staffx") {
			t.Errorf("%s unknown group: exit %d %s", cname, code, errOut)
		}
		out, errOut, code = cli("run", "--rm", "--domainname", "ex.org", "busybox", "cat", "/proc/sys/kernel/domainname")
		if code != 0 || out != "ex.org\n" {
			t.Errorf("%s domainname: exit %d %q %s", cname, code, out, errOut)
		}
		_, errOut, code = cli("run", "--rm", "--uts", "host", "--domainname", "ex.org", "busybox", "true")
		if code != 125 || !strings.Contains(errOut, `sysctl "kernel.domainname" is not in a separate kernel namespace`) {
			t.Errorf("%s domainname with uts host: exit %d %s", cname, code, errOut)
		}
		probe := "grep -c -e ' /proc/timer_list ' -e ' /proc/sys ' /proc/mounts"
		if out, _, _ := cli("run", "--rm", "busybox", "sh", "-c", probe); out != "2\n" {
			t.Errorf("%s default masked paths: %q", cname, out)
		}
		out, _, _ = cli("run", "--rm", "--security-opt", "systempaths=unconfined", "busybox", "sh", "-c", probe+"; head -n1 /proc/timer_list | grep -q . && echo readable")
		if out != "0\nreadable\n" {
			t.Errorf("%s systempaths=unconfined: %q", cname, out)
		}
	}
	if out := d.must("inspect", "-f", "{{len .HostConfig.MaskedPaths}} {{len .HostConfig.ReadonlyPaths}}", "ga-docker"); out == "0 0\n" {
		t.Errorf("default masked paths not recorded: %q", out)
	}
}

// Sysctls: a create through the raw API with a sysctl that is not
// namespaced fails and the host's value stays; namespaced ones take effect
// inside; one whose namespace is the host's is refused.
func TestSysctlsAPI(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	ctx := context.Background()
	before, _ := os.ReadFile("/proc/sys/vm/swappiness")
	want := "7"
	if strings.TrimSpace(string(before)) == "7" {
		want = "8"
	}
	create := func(hc *container.HostConfig, cmd ...string) (string, error) {
		r, err := d.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config:     &container.Config{Image: "busybox", Cmd: cmd},
			HostConfig: hc,
		})
		return r.ID, err
	}
	for _, tc := range []struct {
		name    string
		hc      container.HostConfig
		wantErr string
	}{
		{"host sysctl", container.HostConfig{Sysctls: map[string]string{"vm.swappiness": want}}, `sysctl "vm.swappiness" is not in a separate kernel namespace`},
		{"slash form", container.HostConfig{Sysctls: map[string]string{"vm/swappiness": want}}, `sysctl "vm.swappiness" is not in a separate kernel namespace`},
		{"escape", container.HostConfig{Sysctls: map[string]string{"net.ipv4.../../vm.swappiness": want}}, "invalid sysctl"},
		{"kernel.hostname", container.HostConfig{Sysctls: map[string]string{"kernel.hostname": "x"}}, "conflicts with the OCI"},
		{"net with host network", container.HostConfig{NetworkMode: "host", Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}}, `sysctl "net.ipv4.ip_forward" not allowed in host network namespace`},
		{"mqueue with host ipc", container.HostConfig{IpcMode: "host", Sysctls: map[string]string{"fs.mqueue.msg_max": "20"}}, "is not allowed in the hosts ipc namespace"},
		{"shm with host ipc", container.HostConfig{IpcMode: "host", Sysctls: map[string]string{"kernel.shmmax": "1"}}, "is not allowed in the hosts ipc namespace"},
		{"domainname with host uts", container.HostConfig{UTSMode: "host", Sysctls: map[string]string{"kernel.domainname": "x"}}, "is not in a separate kernel namespace"},
	} {
		if _, err := create(&tc.hc, "true"); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.wantErr)
		}
	}
	if after, _ := os.ReadFile("/proc/sys/vm/swappiness"); string(after) != string(before) {
		t.Fatalf("host vm.swappiness changed: %q -> %q", before, after)
	}
	// Namespaced ones take effect inside; the host keeps its own.
	hostShmmax, _ := os.ReadFile("/proc/sys/kernel/shmmax")
	id, err := create(&container.HostConfig{Sysctls: map[string]string{
		"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789", "fs.mqueue.msg_max": "20", "kernel.domainname": "sys.example",
	}}, "sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max /proc/sys/kernel/domainname")
	if err != nil {
		t.Fatal(err)
	}
	d.must("start", id)
	d.must("wait", id)
	if out := d.must("logs", id); out != "1\n123456789\n20\nsys.example\n" {
		t.Errorf("namespaced sysctls inside: %q", out)
	}
	if after, _ := os.ReadFile("/proc/sys/kernel/shmmax"); string(after) != string(hostShmmax) {
		t.Errorf("host kernel.shmmax changed: %q -> %q", hostShmmax, after)
	}
	// A net sysctl in another container's network namespace is allowed (runc
	// allows it: it is not the host's), and lands there.
	d.must("run", "-d", "--name", "netdonor", "busybox", "sleep", "300")
	if out := d.must("run", "--rm", "--network", "container:netdonor", "--sysctl", "net.ipv4.ip_default_ttl=33", "busybox", "true"); out != "" {
		t.Errorf("net container sysctl: %q", out)
	}
	if out := d.must("exec", "netdonor", "cat", "/proc/sys/net/ipv4/ip_default_ttl"); out != "33\n" {
		t.Errorf("donor's ttl: %q", out)
	}
	// Docker's defaults in a network namespace of the container's own: a
	// user may bind low ports and open ICMP echo sockets; not with the
	// host's network (the host keeps its values), and a user's value wins.
	probe := "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/ping_group_range"
	if out := d.must("run", "--rm", "-u", "nobody", "busybox", "sh", "-c", probe+"; nc -l -p 80 & sleep 0.2; netstat -ltn | grep -c ':80 '"); strings.Fields(out)[0] != "0" || !strings.Contains(out, "0\t2147483647\n1\n") {
		t.Errorf("default sysctls: %q", out)
	}
	hostPorts, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if out := d.must("run", "--rm", "--net", "host", "busybox", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"); out != string(hostPorts) {
		t.Errorf("host network: %q, host's %q", out, hostPorts)
	}
	if out := d.must("run", "--rm", "--sysctl", "net.ipv4.ip_unprivileged_port_start=1000", "busybox", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"); out != "1000\n" {
		t.Errorf("user's value: %q", out)
	}
	// Through the CLIs: each refuses a host sysctl itself (exit 125).
	for cname, cli := range d.clis() {
		_, errOut, code := cli("run", "--rm", "--sysctl", "vm.swappiness="+want, "busybox", "true")
		if code != 125 || !strings.Contains(errOut, "sysctl 'vm.swappiness="+want+"' is not allowed") {
			t.Errorf("%s host sysctl: exit %d %s", cname, code, errOut)
		}
		_, errOut, code = cli("run", "--rm", "--net", "host", "--sysctl", "net.ipv4.ip_forward=1", "busybox", "true")
		if code != 125 || !strings.Contains(errOut, "not allowed in host network namespace") {
			t.Errorf("%s net sysctl with host network: exit %d %s", cname, code, errOut)
		}
		out, errOut, code := cli("run", "--rm", "--sysctl", "kernel.shmmax=987654321", "busybox", "cat", "/proc/sys/kernel/shmmax")
		if code != 0 || out != "987654321\n" {
			t.Errorf("%s kernel.shmmax: exit %d %q %s", cname, code, out, errOut)
		}
	}
	if after, _ := os.ReadFile("/proc/sys/vm/swappiness"); string(after) != string(before) {
		t.Fatalf("host vm.swappiness changed: %q -> %q", before, after)
	}
}

// Compose's pid, ipc and network_mode forms, with domainname, group_add
// and sysctls, under both compose clients (docker compose v5 as a CLI
// plugin, Debian's docker-compose 1.29). Every service names its network
// mode: the project network is the net area's.
func TestComposeNamespaces(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(`services:
  donor:
    image: busybox
    command: sh -c "echo hi > /dev/shm/note; exec sleep 300"
    ipc: shareable
    network_mode: bridge
    domainname: ex.org
    group_add: [staff, "123"]
    sysctls:
      net.ipv4.ip_default_ttl: "42"
      kernel.shmmax: "123456789"
  joiner:
    image: busybox
    command: sleep 300
    ipc: service:donor
    network_mode: service:donor
    depends_on: [donor]
  hostns:
    image: busybox
    command: sleep 300
    pid: host
    ipc: host
    network_mode: bridge
`), 0o644)
	useComposeClients(t, d)
	hostPid, hostIpc := hostNS(t, "pid"), hostNS(t, "ipc")
	for _, cc := range []struct {
		name string
		cmd  []string
	}{
		{"compose-v5", []string{"docker", "compose"}},
		{"compose-v1", []string{"docker-compose"}},
	} {
		compose := func(args ...string) (string, string, int) {
			all := append(append(append([]string{}, cc.cmd[1:]...), "-p", cc.name, "-f", filepath.Join(dir, "compose.yaml")), args...)
			return d.run(nil, cc.cmd[0], all...)
		}
		if out, errOut, code := compose("up", "-d"); code != 0 {
			t.Errorf("%s up: exit %d %s %s", cc.name, code, out, errOut)
			continue
		}
		exec := func(svc, script string) string {
			out, errOut, code := compose("exec", "-T", svc, "sh", "-c", script)
			if code != 0 {
				t.Errorf("%s exec %s %q: exit %d %s", cc.name, svc, script, code, errOut)
			}
			return out
		}
		donor := exec("donor", "readlink /proc/self/ns/ipc; readlink /proc/self/ns/net")
		if out := exec("joiner", "readlink /proc/self/ns/ipc; readlink /proc/self/ns/net; cat /dev/shm/note"); out != donor+"hi\n" {
			t.Errorf("%s joiner: %q, donor %q", cc.name, out, donor)
		}
		if out := exec("donor", "cat /proc/sys/kernel/domainname /proc/sys/net/ipv4/ip_default_ttl /proc/sys/kernel/shmmax; id -G"); out != "ex.org\n42\n123456789\n0 50 123\n" {
			t.Errorf("%s donor settings: %q", cc.name, out)
		}
		if out := exec("hostns", "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc"); out != hostPid+"\n"+hostIpc+"\n" {
			t.Errorf("%s hostns: %q", cc.name, out)
		}
		if out, errOut, code := compose("down", "-t", "1"); code != 0 {
			t.Errorf("%s down: exit %d %s %s", cc.name, code, out, errOut)
		}
	}
}
