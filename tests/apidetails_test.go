package tests

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	"github.com/opencontainers/go-digest"
)

// ps filters as dockerd applies them, through the docker CLI, skiff's CLI
// and the Go client; COMMAND and PORTS as dockerd shows them.
func TestPsFiltersCommandAndPorts(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	d.must("network", "create", "appnet")
	netID := strings.TrimSpace(d.must("network", "inspect", "-f", "{{.Id}}", "appnet"))
	d.must("volume", "create", "data")
	bindSrc := t.TempDir()

	// Created in this order: web (running), job (exited 3), fresh (created).
	d.must("run", "-d", "--name", "web", "--network", "appnet", "-v", "data:/data", "-p", "127.0.0.1::80",
		"--expose", "53/udp", "busybox", "sh", "-c", "sleep 1000; echo done")
	if _, _, code := d.skiff("run", "--name", "job", "--label", "tier=batch", "-v", bindSrc+":/mnt", "busybox", "sh", "-c", "exit 3"); code != 3 {
		t.Fatalf("run job: exit %d", code)
	}
	d.must("create", "--name", "fresh", "busybox", "true")
	webID := strings.TrimSpace(d.must("inspect", "-f", "{{.Id}}", "web"))
	hostPort := strings.TrimSpace(d.must("inspect", "-f", `{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}`, "web"))

	for _, tc := range []struct {
		filter []string
		want   string // names, newest first
	}{
		{[]string{"network=appnet"}, "web"},
		{[]string{"network=" + netID[:10]}, "web"},
		{[]string{"network=bridge"}, "fresh job"},
		{[]string{"network=nosuch"}, ""},
		{[]string{"volume=data"}, "web"},
		{[]string{"volume=/data"}, "web"},
		{[]string{"volume=/mnt"}, "job"},
		{[]string{"volume=" + bindSrc}, "job"},
		{[]string{"publish=" + hostPort}, "web"},
		{[]string{"publish=" + hostPort + "/tcp"}, "web"},
		{[]string{"publish=" + hostPort + "/udp"}, ""},
		{[]string{"publish=1-1023"}, ""},
		{[]string{"expose=80"}, "web"},
		{[]string{"expose=53/udp"}, "web"},
		{[]string{"expose=70-90/tcp"}, "web"},
		{[]string{"exited=3"}, "job"},
		{[]string{"exited=0"}, ""},
		{[]string{"status=created"}, "fresh"},
		{[]string{"status=running", "status=exited"}, "job web"},
		{[]string{"ancestor=busybox"}, "fresh job web"},
		{[]string{"ancestor=busybox:latest", "name=^/(job|web)$"}, "job web"},
		{[]string{"name=^web$"}, "web"},
		{[]string{"name=e"}, "fresh web"},
		{[]string{"label=tier=batch"}, "job"},
		{[]string{"label=tier"}, "job"},
		{[]string{"before=fresh"}, "job web"},
		{[]string{"since=web"}, "fresh job"},
		{[]string{"health=none", "is-task=false", "isolation=default"}, "fresh job web"},
		{[]string{"is-task=true"}, ""},
		{[]string{"id=" + webID[:7]}, "web"},
		{[]string{"id=" + webID, "name=web"}, "web"},
		{[]string{"id=" + webID, "name=job"}, ""},
	} {
		var args []string
		for _, f := range tc.filter {
			args = append(args, "--filter", f)
		}
		for _, cli := range []string{"docker", "skiff"} {
			full := append([]string{"ps", "-a", "--format", "{{.Names}}"}, args...)
			var out, errOut string
			var code int
			if cli == "docker" {
				out, errOut, code = d.docker(full...)
			} else {
				out, errOut, code = d.skiff(full...)
			}
			if got := strings.Join(strings.Fields(out), " "); code != 0 || got != tc.want {
				t.Errorf("%s ps -a %v: %q (exit %d %s), want %q", cli, tc.filter, got, code, errOut, tc.want)
			}
		}
	}
	// Without -a, exited=... lists nothing: only running containers are
	// considered, as with dockerd.
	if out := d.dockerMust("ps", "-q", "--filter", "exited=3"); out != "" {
		t.Errorf("ps --filter exited=3 without -a: %q", out)
	}
	// The Go client, as compose sends its filters.
	res, err := d.cli.ContainerList(context.Background(), client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("network", "appnet").Add("volume", "data")})
	if err != nil || len(res.Items) != 1 || res.Items[0].Names[0] != "/web" {
		t.Errorf("client list: %+v %v", res.Items, err)
	}

	// Refusals, with dockerd's words.
	for _, tc := range []struct {
		filter, msg string
	}{
		{"colour=red", "invalid filter 'colour'"},
		{"publish=127.0.0.1:80", "filter for 'publish' should not contain ':': 127.0.0.1:80"},
		{"expose=90-80", "error while looking up for expose 90-80: invalid port range: 90-80"},
		{"status=up", "invalid filter 'status=up': invalid value for state (up): must be one of created, running, paused, restarting, removing, exited, dead"},
		{"exited=x", `invalid filter 'exited=x': strconv.Atoi: parsing "x": invalid syntax`},
		{"health=ok", "invalid filter 'health=ok'"},
		{"before=nosuch", "No such container: nosuch"},
	} {
		_, errOut, code := d.docker("ps", "-a", "--filter", tc.filter)
		if code != 1 || !strings.Contains(errOut, "Error response from daemon: "+tc.msg) {
			t.Errorf("docker ps --filter %s: exit %d: %s", tc.filter, code, errOut)
		}
		_, errOut, code = d.skiff("ps", "-a", "--filter", tc.filter)
		if code != 1 || !strings.Contains(errOut, tc.msg) {
			t.Errorf("skiff ps --filter %s: exit %d: %s", tc.filter, code, errOut)
		}
	}

	// COMMAND: arguments with spaces in single quotes; the table cuts it
	// at 20 columns and quotes it. PORTS lists the exposed port too.
	if out := strings.TrimSpace(d.dockerMust("ps", "--no-trunc", "--filter", "name=web", "--format", "{{.Command}}")); out != `"sh -c 'sleep 1000; echo done'"` {
		t.Errorf("docker ps --no-trunc COMMAND: %s", out)
	}
	for _, format := range []string{
		"table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Ports}}\t{{.Names}}",
		"{{.Command}}|{{.Ports}}|{{.Mounts}}|{{.Networks}}|{{.State}}",
	} {
		for _, extra := range [][]string{nil, {"--no-trunc"}} {
			args := append([]string{"ps", "-a", "--format", format}, extra...)
			mine, want := d.must(args...), d.dockerMust(args...)
			if mine != want {
				t.Errorf("ps %v:\nskiff:\n%s\ndocker:\n%s", extra, mine, want)
			}
		}
	}
	out := d.dockerMust("ps", "--filter", "name=web")
	if !strings.Contains(out, `"sh -c 'sleep 1000; …"`) || !strings.Contains(out, "53/udp, 127.0.0.1:"+hostPort+"->80/tcp") {
		t.Errorf("docker ps:\n%s", out)
	}
	d.must("rm", "-f", "web", "job", "fresh")
}

// /info says swarm mode is off, as dockerd does.
func TestInfoSwarmInactive(t *testing.T) {
	d := startDaemon(t)
	if out := d.dockerMust("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} [{{.Swarm.NodeID}}]"); out != "inactive false []\n" {
		t.Errorf("docker info Swarm: %q", out)
	}
	if out := d.dockerMust("info"); !strings.Contains(out, " Swarm: inactive\n") {
		t.Errorf("docker info:\n%s", out)
	}
	if out := d.must("info"); !strings.Contains(out, "Swarm: inactive") {
		t.Errorf("skiff info:\n%s", out)
	}
	res, err := d.cli.Info(context.Background(), client.InfoOptions{})
	if err != nil || res.Info.Swarm.LocalNodeState != "inactive" {
		t.Errorf("client info: %+v %v", res.Info.Swarm, err)
	}
}

// ago is the relative times of df -v, which the two CLIs compute a moment
// apart.
var ago = regexp.MustCompile(`(About )?(an?|\d+) \w+ ago|Less than a second ago`)

// GET /system/df reports volumes and the build cache with their sizes,
// and skiff's CLI prints df and df -v as docker's does.
func TestSystemDFVolumesAndBuildCache(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM busybox\nRUN head -c 200000 /dev/zero > /z\nLABEL a=b\n"), 0o644)
	d.must("build", "-q", "-t", "dfimg", ctxDir)
	d.must("volume", "create", "used")
	d.must("volume", "create", "spare")
	d.must("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "mounted")
	d.must("run", "-d", "--name", "holder", "-v", "used:/v", "busybox", "sh", "-c", "head -c 5000 /dev/zero > /v/f; ln /v/f /v/hard; sleep 1000")
	d.must("run", "--rm", "-v", "spare:/v", "busybox", "sh", "-c", "head -c 3000 /dev/zero > /v/f")

	du, err := d.cli.DiskUsage(context.Background(), client.DiskUsageOptions{Volumes: true, BuildCache: true, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string][2]int64{}
	for _, v := range du.Volumes.Items {
		if v.UsageData == nil {
			t.Fatalf("volume %s without UsageData", v.Name)
		}
		sizes[v.Name] = [2]int64{v.UsageData.Size, v.UsageData.RefCount}
	}
	// A hard link counts once; a tmpfs volume holds nothing here and is
	// left out, as with dockerd.
	if len(sizes) != 2 || sizes["used"] != [2]int64{5000, 1} || sizes["spare"] != [2]int64{3000, 0} {
		t.Errorf("volumes: %v", sizes)
	}
	if du.Volumes.TotalSize != 8000 || du.Volumes.Reclaimable != 3000 || du.Volumes.ActiveCount != 1 {
		t.Errorf("volume sums: %+v", du.Volumes)
	}
	// Two steps: the RUN's layer (its size), the LABEL's (none).
	var runSize int64 = -1
	for _, r := range du.BuildCache.Items {
		if r.Type != "regular" || r.CreatedAt.IsZero() {
			t.Errorf("record %+v", r)
		}
		if strings.Contains(r.Description, "head -c 200000") {
			runSize = r.Size
		}
	}
	if len(du.BuildCache.Items) != 2 || runSize < 200000 || runSize > 220000 {
		t.Errorf("build cache: %+v", du.BuildCache.Items)
	}

	out := d.dockerMust("system", "df")
	if !strings.Contains(out, "Local Volumes   2         1         8kB       3kB (37%)") || !strings.Contains(out, "Build Cache     2         0") {
		t.Errorf("docker system df:\n%s", out)
	}
	if mine := d.must("system", "df"); mine != out {
		t.Errorf("skiff system df:\n%s\ndocker:\n%s", mine, out)
	}
	want := ago.ReplaceAllString(d.dockerMust("system", "df", "-v"), "AGO")
	mine := ago.ReplaceAllString(d.must("system", "df", "-v"), "AGO")
	// The columns after a relative time may shift by its width.
	norm := func(s string) string {
		var lines []string
		for _, l := range strings.Split(s, "\n") {
			lines = append(lines, strings.Join(strings.Fields(l), " "))
		}
		return strings.Join(lines, "\n")
	}
	if norm(mine) != norm(want) {
		t.Errorf("skiff system df -v:\n%s\ndocker:\n%s", mine, want)
	}
	for _, s := range []string{"Local Volumes space usage:", "used 1 5kB", "spare 0 3kB", "Build cache usage:", "regular"} {
		if !strings.Contains(norm(want), s) {
			t.Errorf("docker system df -v lacks %q:\n%s", s, want)
		}
	}
	d.must("rm", "-f", "holder")
}

// GET /distribution/{name}/json is answered from the registry, with the
// client's credentials.
func TestDistributionInspect(t *testing.T) {
	reg := startRegistry(t, "dist", "secret")
	d := startDaemon(t)
	d.importBusybox()
	ref := reg.host + "/e2e/dist:v1"
	d.must("tag", "busybox", ref)
	auth := registry.AuthConfig{Username: "dist", Password: "secret", ServerAddress: reg.host}
	b, _ := json.Marshal(auth)
	enc := base64.URLEncoding.EncodeToString(b)
	if _, _, code := d.dockerIn(strings.NewReader("secret"), "login", "-u", "dist", "--password-stdin", reg.host); code != 0 {
		t.Fatal("docker login failed")
	}
	pushOut := d.dockerMust("push", ref)
	m := regexp.MustCompile(`v1: digest: (sha256:[0-9a-f]{64}) size: (\d+)`).FindStringSubmatch(pushOut)
	if m == nil {
		t.Fatalf("push:\n%s", pushOut)
	}

	ctx := context.Background()
	res, err := d.cli.DistributionInspect(ctx, ref, client.DistributionInspectOptions{EncodedRegistryAuth: enc})
	if err != nil {
		t.Fatal(err)
	}
	if res.Descriptor.Digest != digest.Digest(m[1]) || res.Descriptor.MediaType == "" || res.Descriptor.Size == 0 ||
		len(res.Platforms) != 1 || res.Platforms[0].OS != "linux" || res.Platforms[0].Architecture == "" {
		t.Errorf("inspect: %+v", res.DistributionInspect)
	}
	// By digest: the same descriptor.
	res2, err := d.cli.DistributionInspect(ctx, reg.host+"/e2e/dist@"+m[1], client.DistributionInspectOptions{EncodedRegistryAuth: enc})
	if err != nil || res2.Descriptor.Digest != res.Descriptor.Digest || res2.Descriptor.Size != res.Descriptor.Size {
		t.Errorf("by digest: %+v %v", res2.DistributionInspect, err)
	}
	// Without credentials the registry refuses; an unknown tag is not found.
	if _, err := d.cli.DistributionInspect(ctx, ref, client.DistributionInspectOptions{}); err == nil {
		t.Errorf("inspect without credentials succeeded")
	}
	if _, err := d.cli.DistributionInspect(ctx, reg.host+"/e2e/dist:nope", client.DistributionInspectOptions{EncodedRegistryAuth: enc}); !cerrdefs.IsNotFound(err) {
		t.Errorf("unknown tag: %v", err)
	}
	if _, err := d.cli.DistributionInspect(ctx, "sha256:"+strings.Repeat("0", 64), client.DistributionInspectOptions{}); err == nil || !strings.Contains(err.Error(), "no manifest found for full image ID") {
		t.Errorf("full id: %v", err)
	}
}
