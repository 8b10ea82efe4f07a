package tests

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// The compose file of issue 12's check: every key below must come up and take
// effect inside the containers, under both compose generations. Placeholders
// (@NAME@) are filled per run, so both clients can use one daemon in turn.
const fullComposeFile = `
x-common: &common
  labels:
    org.skiff.test: "full"
services:
  db:
    extends:
      file: base.yml
      service: base
    <<: *common
    image: busybox
    command: ["sh", "-c", "echo db-up; (sleep 2; touch /tmp/ready) & exec httpd -f -p 80 -h /srv"]
    hostname: dbhost
    domainname: example.org
    expose: ["5432"]
    stop_signal: SIGUSR1
    healthcheck:
      test: ["CMD", "test", "-e", "/tmp/ready"]
      interval: 1s
      timeout: 2s
      retries: 3
    volumes:
      - dbdata:/srv
    ipc: shareable
    networks:
      back:
        aliases: [database]
  web:
    build:
      context: ./web
      args:
        GREETING: hello-from-build
    image: @PROJECT@-web:latest
    container_name: @PROJECT@-web
    command: ["sh", "-c", "echo web-up; exec httpd -f -p 80 -h /srv"]
    depends_on:
      db:
        condition: service_healthy
    dns: [10.255.255.1]
    dns_search: [search.example]
    tmpfs:
      - /scratch:size=1m
    env_file: [web.env]
    environment:
      FROM_ENV: inline
    ulimits:
      nofile:
        soft: 1024
        hard: 2048
    extra_hosts:
      - "extra.example:10.1.2.3"
    labels:
      tier: front
    links:
      - db:dblink
    external_links:
      - @EXTERNAL@:extalias
    logging:
      driver: syslog
      options:
        syslog-address: "udp://127.0.0.1:@SYSLOGPORT@"
        tag: "web-@PROJECT@"
    ports:
      - "127.0.0.1:@WEBPORT@:80"
    stop_signal: SIGTERM
    volumes:
      - ./site:/srv:ro
      - webdata:/data
    volumes_from:
      - db:ro
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    secrets: [token]
    sysctls:
      net.core.somaxconn: 1024
    cgroup_parent: @CGPARENT@
    devices:
      - /dev/zero:/dev/xzero
    networks:
      back:
        aliases: [webalias]
      front: {}
    cpu_shares: 512
    cpu_quota: 50000
    cpuset: "0"
    user: "0:0"
    working_dir: /srv
    domainname: front.example
    hostname: webhost
    mac_address: 02:42:ac:11:99:01
    mem_limit: 64m
    memswap_limit: 128m
    restart: unless-stopped
    read_only: true
    shm_size: 8m
    stdin_open: true
    tty: true
  sidecar:
    image: busybox
    command: ["sleep", "600"]
    network_mode: "service:web"
    depends_on: [web]
  hostns:
    image: busybox
    command: ["sleep", "600"]
    pid: host
    ipc: host
    privileged: true
    network_mode: none
volumes:
  dbdata: {}
  webdata: {}
networks:
  back:
    external: true
    name: @SHAREDNET@
  front: {}
secrets:
  token:
    file: ./token.txt
`

const composeBaseFile = `
services:
  base:
    environment:
      FROM_BASE: extended
`

// composeClient is one compose generation: how to call it.
type composeClient struct {
	name string
	// args for `ARGS -f FILE -p PROJECT SUBCOMMAND...`
	cmd func(d *daemon) []string
}

func composeClients() []composeClient {
	return []composeClient{
		{"compose-v5", func(d *daemon) []string { return []string{"docker", "compose"} }},
		{"docker-compose-1.29", func(d *daemon) []string { return []string{"docker-compose"} }},
	}
}

// useComposeClients makes both compose generations usable against d: the
// docker CLI finds the compose v5 plugin hack/clients.sh built (the tests
// give docker a DOCKER_CONFIG of their own), and docker-compose 1.29 is
// installed. It fails the test, naming the script, when one is missing.
func useComposeClients(t *testing.T, d *daemon) {
	t.Helper()
	src := composeV2(t)
	dir := filepath.Join(d.root, "dockercfg", "cli-plugins")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(src, filepath.Join(dir, "docker-compose")); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatalf("docker-compose 1.29 missing (hack/deps.sh installs Debian's package): %v", err)
	}
}

// syslogSink collects datagrams sent to a UDP socket on loopback.
type syslogSink struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  []string
}

func newSyslogSink(t *testing.T) *syslogSink {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &syslogSink{conn: c}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.got = append(s.got, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close() })
	return s
}

func (s *syslogSink) port() int { return s.conn.LocalAddr().(*net.UDPAddr).Port }

func (s *syslogSink) has(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.got {
		if strings.Contains(m, sub) {
			return true
		}
	}
	return false
}

// compose runs one compose client in dir against d.
func (d *daemon) compose(cl composeClient, dir, project string, args ...string) (string, string, int) {
	d.t.Helper()
	base := cl.cmd(d)
	all := append(append(append([]string{}, base[1:]...), "-f", "compose.yml", "-p", project), args...)
	return d.runWith(cmdOpts{dir: dir, timeout: 3 * time.Minute,
		env: []string{"DOCKER_BUILDKIT=0", "COMPOSE_DOCKER_CLI_BUILD=0", "COMPOSE_BAKE=false", "NO_COLOR=1", "COMPOSE_INTERACTIVE_NO_CLI=1"}},
		base[0], all...)
}

// writeComposeProject lays out the project directory with the compose file,
// the build context, env file, site and secret.
func writeComposeProject(t *testing.T, dir string, repl map[string]string) {
	t.Helper()
	content := fullComposeFile
	for k, v := range repl {
		content = strings.ReplaceAll(content, "@"+k+"@", v)
	}
	files := map[string]string{
		"compose.yml":     content,
		"base.yml":        composeBaseFile,
		"web.env":         "FROM_FILE=envfile\n# a comment\n",
		"token.txt":       "s3cret\n",
		"site/index.html": "site-index\n",
		"web/Dockerfile":  "FROM busybox\nARG GREETING\nRUN echo \"$GREETING\" > /greeting\n",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestComposeClientsFullFile brings one compose file that uses every key of
// issue 12's list up under both compose generations, and checks each key's
// effect inside the containers.
func TestComposeClientsFullFile(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	useComposeClients(t, d)
	for _, cl := range composeClients() {
		t.Run(cl.name, func(t *testing.T) {
			dd := *d
			dd.t = t
			testComposeFullFile(t, &dd, cl)
		})
	}
}

func testComposeFullFile(t *testing.T, d *daemon, cl composeClient) {
	project := "full" + strings.NewReplacer(".", "", "-", "").Replace(cl.name)
	dir := t.TempDir()
	sink := newSyslogSink(t)
	webPort := freePort(t)
	cgParent := d.cgParent + "-" + project
	t.Cleanup(func() { removeCgroupDirs(cgParent) })
	external := project + "-ext"
	writeComposeProject(t, dir, map[string]string{
		"PROJECT": project, "EXTERNAL": external, "SYSLOGPORT": fmt.Sprint(sink.port()),
		"WEBPORT": fmt.Sprint(webPort), "CGPARENT": cgParent, "SHAREDNET": project + "-shared",
	})
	// external_links names a container outside the project; it shares the
	// external network "back" with the project's services.
	shared := project + "-shared"
	d.must("network", "create", shared)
	defer d.skiff("network", "rm", shared)
	d.must("run", "-d", "--name", external, "--network", shared, "busybox", "sleep", "600")
	defer d.skiff("rm", "-f", external)

	if out, errOut, code := d.compose(cl, dir, project, "build"); code != 0 {
		t.Fatalf("%s build: exit %d\n%s\n%s", cl.name, code, out, errOut)
	}
	// down removes what up made, also after a failed up.
	defer func() {
		if o, e, c := d.compose(cl, dir, project, "down", "-v", "-t", "2"); c != 0 {
			t.Errorf("%s down: exit %d\n%s\n%s", cl.name, c, o, e)
		}
		if o := d.must("ps", "-aq", "--filter", "label=com.docker.compose.project="+project); o != "" {
			t.Errorf("containers left after down: %s", o)
		}
	}()
	out, errOut, code := d.compose(cl, dir, project, "up", "-d")
	if code != 0 {
		t.Fatalf("%s up -d: exit %d\n%s\n%s\n%s", cl.name, code, out, errOut, d.log())
	}
	web := project + "-web"
	ctr := func(svc string) string {
		id := strings.TrimSpace(d.must("ps", "-q", "--filter", "label=com.docker.compose.project="+project,
			"--filter", "label=com.docker.compose.service="+svc))
		if id == "" || strings.Contains(id, "\n") {
			t.Fatalf("service %s: containers %q", svc, id)
		}
		return id
	}
	db, sidecar, hostns := ctr("db"), ctr("sidecar"), ctr("hostns")
	hostPidNS, _ := os.Readlink("/proc/self/ns/pid")
	hostIpcNS, _ := os.Readlink("/proc/self/ns/ipc")
	webNetNS := strings.TrimSpace(d.must("exec", web, "readlink", "/proc/self/ns/net"))
	webID := strings.TrimSpace(d.must("inspect", "-f", "{{.Id}}", web))

	checks := []struct {
		key      string
		ctr      string
		cmd      []string
		want     string // substring of the output
		wantFail bool   // the command must fail
	}{
		{"image+build args", web, []string{"cat", "/greeting"}, "hello-from-build", false},
		{"command", web, []string{"cat", "/proc/1/cmdline"}, "httpd", false},
		{"container_name", web, []string{"true"}, "", false},
		{"dns", web, []string{"cat", "/etc/resolv.conf"}, "search.example", false},
		{"tmpfs", web, []string{"sh", "-c", "grep ' /scratch ' /proc/mounts"}, "tmpfs", false},
		{"env_file", web, []string{"sh", "-c", "echo $FROM_FILE"}, "envfile", false},
		{"environment", web, []string{"sh", "-c", "echo $FROM_ENV"}, "inline", false},
		{"extends", db, []string{"sh", "-c", "echo $FROM_BASE"}, "extended", false},
		{"ulimits", web, []string{"sh", "-c", "ulimit -n; ulimit -Hn"}, "1024\n2048", false},
		{"extra_hosts", web, []string{"cat", "/etc/hosts"}, "10.1.2.3\textra.example", false},
		{"links", web, []string{"nslookup", "dblink", "127.0.0.11"}, "Address", false},
		{"external_links", web, []string{"nslookup", "extalias", "127.0.0.11"}, "Address", false},
		{"networks aliases", sidecar, []string{"nslookup", "database", "127.0.0.11"}, "Address", false},
		{"volumes bind ro", web, []string{"cat", "/srv/index.html"}, "site-index", false},
		{"volumes named", web, []string{"sh", "-c", "echo x > /data/f && cat /data/f"}, "x", false},
		{"volumes_from ro", web, []string{"sh", "-c", "grep ' /srv ' /proc/mounts; touch /srv/y"}, "", true},
		{"cap_add", web, []string{"sh", "-c", "grep CapEff /proc/self/status"}, "", false},
		{"secrets", web, []string{"cat", "/run/secrets/token"}, "s3cret", false},
		{"sysctls", web, []string{"cat", "/proc/sys/net/core/somaxconn"}, "1024", false},
		{"devices", web, []string{"sh", "-c", "head -c 3 /dev/xzero | od -An -tx1"}, "00 00 00", false},
		{"user", web, []string{"id", "-u"}, "0", false},
		{"working_dir", web, []string{"pwd"}, "/srv", false},
		{"domainname", web, []string{"cat", "/proc/sys/kernel/domainname"}, "front.example", false},
		{"hostname", web, []string{"hostname"}, "webhost", false},
		{"db hostname", db, []string{"hostname"}, "dbhost", false},
		{"mac_address", web, []string{"cat", "/sys/class/net/eth0/address"}, "02:42:ac:11:99:01", false},
		{"read_only", web, []string{"touch", "/rootfile"}, "", true},
		{"shm_size", web, []string{"sh", "-c", "df -k /dev/shm | tail -1"}, "8192", false},
		{"tty", web, []string{"sh", "-c", "readlink /proc/1/fd/0"}, "/dev/pts/", false},
		{"network_mode service", sidecar, []string{"readlink", "/proc/self/ns/net"}, webNetNS, false},
		{"pid host", hostns, []string{"readlink", "/proc/self/ns/pid"}, hostPidNS, false},
		{"ipc host", hostns, []string{"readlink", "/proc/self/ns/ipc"}, hostIpcNS, false},
		{"privileged", hostns, []string{"sh", "-c", "grep CapEff /proc/self/status"}, "000001ff", false},
	}
	for _, c := range checks {
		out, errOut, code := d.skiff(append([]string{"exec", c.ctr}, c.cmd...)...)
		switch {
		case c.wantFail && code == 0:
			t.Errorf("%s: %v succeeded, want a failure\n%s", c.key, c.cmd, out)
		case !c.wantFail && code != 0:
			t.Errorf("%s: %v exit %d\n%s%s", c.key, c.cmd, code, out, errOut)
		case c.want != "" && !strings.Contains(out, c.want):
			t.Errorf("%s: %v printed %q, want %q", c.key, c.cmd, out, c.want)
		}
	}

	// What inspect and the host show.
	insp := func(c, f string) string { return strings.TrimSpace(d.must("inspect", "-f", f, c)) }
	for _, c := range []struct{ key, ctr, format, want string }{
		{"labels", web, `{{index .Config.Labels "tier"}}`, "front"},
		{"x- anchors", db, `{{index .Config.Labels "org.skiff.test"}}`, "full"},
		{"expose", db, `{{json .Config.ExposedPorts}}`, `"5432/tcp"`},
		{"stop_signal", db, `{{.Config.StopSignal}}`, "SIGUSR1"},
		{"healthcheck", db, `{{.State.Health.Status}}`, "healthy"},
		{"restart", web, `{{.HostConfig.RestartPolicy.Name}}`, "unless-stopped"},
		{"stdin_open", web, `{{.Config.OpenStdin}}`, "true"},
		{"cap_drop", web, `{{json .HostConfig.CapDrop}}`, "MKNOD"},
		{"ipc shareable", db, `{{.HostConfig.IpcMode}}`, "shareable"},
	} {
		if got := insp(c.ctr, c.format); !strings.Contains(got, c.want) {
			t.Errorf("%s: inspect %s = %q, want %q", c.key, c.format, got, c.want)
		}
	}
	cg := func(ctrl, file string) string {
		b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", ctrl, cgParent, webID, file))
		if err != nil {
			t.Errorf("cgroup %s/%s: %v", ctrl, file, err)
		}
		return strings.TrimSpace(string(b))
	}
	for _, c := range []struct{ key, ctrl, file, want string }{
		{"cgroup_parent+cpu_shares", "cpu", "cpu.shares", "512"},
		{"cpu_quota", "cpu", "cpu.cfs_quota_us", "50000"},
		{"cpuset", "cpuset", "cpuset.cpus", "0"},
		{"mem_limit", "memory", "memory.limit_in_bytes", fmt.Sprint(64 << 20)},
		{"memswap_limit", "memory", "memory.memsw.limit_in_bytes", fmt.Sprint(128 << 20)},
	} {
		if c.key == "memswap_limit" {
			if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", cgParent, webID, c.file)); err != nil {
				continue // the host has no swap accounting (swapaccount=0): nothing to set
			}
		}
		if got := cg(c.ctrl, c.file); got != c.want {
			t.Errorf("%s: %s = %q, want %q", c.key, c.file, got, c.want)
		}
	}

	// ports: the published port answers on loopback.
	waitFor(t, func() bool {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", webPort), time.Second)
		if err != nil {
			return false
		}
		fmt.Fprintf(conn, "GET /index.html HTTP/1.0\r\n\r\n")
		b := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _ := conn.Read(b)
		conn.Close()
		return strings.Contains(string(b[:n]), "200")
	}, "the published port to answer")
	// logging: the web service's output went to syslog with its tag.
	waitFor(t, func() bool { return sink.has("web-"+project) && sink.has("web-up") }, "web's output on syslog")
	// depends_on service_healthy: db turns healthy 2 s after it starts, and
	// web starts only then.
	ctx := context.Background()
	dbi, err := d.cli.ContainerInspect(ctx, db, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	webi, err := d.cli.ContainerInspect(ctx, web, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dbStarted, _ := time.Parse(time.RFC3339Nano, dbi.Container.State.StartedAt)
	webStarted, _ := time.Parse(time.RFC3339Nano, webi.Container.State.StartedAt)
	if webStarted.Sub(dbStarted) < 2*time.Second {
		t.Errorf("depends_on service_healthy: web started %v after db, before db could be healthy", webStarted.Sub(dbStarted))
	}
}
