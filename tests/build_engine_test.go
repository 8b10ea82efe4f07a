package tests

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A kill -9 of the engine in the middle of a RUN step leaves nothing once
// the engine is back: the step's container is removed at start (no client
// will ever commit it), no image is tagged, and the next build works.
func TestBuildEngineKilledMidRun(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo started; sleep 60\n"})
	build := exec.Command(filepath.Join(binDir, "skiff"), "-H", d.host, "build", "-t", "crashy:1", ctx)
	if err := build.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { build.Process.Kill(); build.Wait() }()
	d.eventually("the RUN step's container to run", func() (bool, string) {
		out := d.must("ps", "-q", "--filter", "label=org.skiff.build-step")
		return strings.TrimSpace(out) != "", out
	})

	d.kill9()
	build.Process.Kill()
	build.Wait()
	d.start()

	if out := d.must("ps", "-aq"); out != "" {
		t.Fatalf("containers left after the engine came back: %q", out)
	}
	if _, _, code := d.skiff("image", "inspect", "crashy:1"); code == 0 {
		t.Fatal("the interrupted build tagged its image")
	}
	out := d.must("build", "-t", "after:1", writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo fine > /f\n"}))
	if !strings.Contains(out, "Successfully tagged after:1") {
		t.Fatalf("build after restart:\n%s", out)
	}
	if got := d.must("run", "--rm", "after:1", "cat", "/f"); got != "fine\n" {
		t.Fatalf("built image: %q", got)
	}
}

// VOLUME with a relative path (Docker's builder accepts it) is mounted
// under "/" when the image runs, as dockerd does.
func TestBuildRelativeVolume(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	d.must("build", "-t", "relvol:1", writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nVOLUME data\n"}))
	out := d.must("run", "--name", "rv", "relvol:1", "sh", "-c", "grep -c ' /data ' /proc/mounts")
	if out != "1\n" {
		t.Fatalf("/data is not a mount in the container: %q", out)
	}
	if got := d.must("inspect", "-f", "{{range .Mounts}}{{.Destination}}{{end}}", "rv"); got != "/data\n" {
		t.Fatalf("mounts: %q", got)
	}
	d.must("rm", "-v", "rv")
	// The same through the docker CLI.
	if out, errOut, code := d.docker("run", "--rm", "relvol:1", "sh", "-c", "grep -c ' /data ' /proc/mounts"); code != 0 || out != "1\n" {
		t.Fatalf("docker run: exit %d: %q %s", code, out, errOut)
	}
}

// system prune and builder prune, through our CLI and docker's (docker's
// system prune calls POST /build/prune too).
func TestSystemAndBuilderPrune(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	d.must("run", "--name", "stopped", "--net", "none", "busybox", "true")
	d.must("network", "create", "--subnet", "10.251.7.0/24", "unusednet")
	v1 := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nLABEL v=1\n"})
	v2 := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nLABEL v=2\n"})
	d.must("build", "-t", "pr:1", v1)
	oldID := strings.TrimSpace(d.must("image", "inspect", "-f", "{{.Id}}", "pr:1"))
	d.must("build", "-t", "pr:1", v2) // the v=1 image is now dangling

	out := d.must("system", "prune", "-f")
	for _, want := range []string{"Deleted Containers:\n", "Deleted Networks:\nunusednet\n", "Deleted Images:\n", "deleted: " + oldID, "Total reclaimed space:"} {
		if !strings.Contains(out, want) {
			t.Fatalf("system prune output lacks %q:\n%s", want, out)
		}
	}
	if out := d.must("ps", "-aq"); out != "" {
		t.Fatalf("containers left: %q", out)
	}
	if _, _, code := d.skiff("image", "inspect", oldID); code == 0 {
		t.Fatal("the dangling image survived system prune")
	}
	// The cache entry of the pruned image went with it; pr:1's stays.
	if out := d.must("build", "-t", "pr:1", v2); !strings.Contains(out, "Using cache") {
		t.Fatalf("rebuild after system prune:\n%s", out)
	}
	if out, errOut, code := d.docker("system", "prune", "-f"); code != 0 {
		t.Fatalf("docker system prune: exit %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code := d.docker("builder", "prune", "-f"); code != 0 {
		t.Fatalf("docker builder prune: exit %d\n%s\n%s", code, out, errOut)
	}
	if out := d.must("builder", "prune", "-a", "-f"); !strings.Contains(out, "Deleted build cache objects:") {
		t.Fatalf("builder prune -a:\n%s", out)
	}
	if out := d.must("build", "-t", "pr:1", v2); strings.Contains(out, "Using cache") {
		t.Fatalf("a cache hit after builder prune -a:\n%s", out)
	}
}
