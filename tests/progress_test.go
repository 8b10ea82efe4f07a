package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// layerLine is a layer's line as docker's progress display leaves it.
var layerLine = regexp.MustCompile(`(?m)^([0-9a-f]{12}): (.*)$`)

// layerLines returns the layer lines of a terminal screen, by id, and fails
// when a layer has more than one: the client redraws a layer's line in
// place only while every message about it carries progressDetail.
func layerLines(t *testing.T, what, screen string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range layerLine.FindAllStringSubmatch(screen, -1) {
		if prev, ok := out[m[1]]; ok {
			t.Errorf("%s: layer %s has two lines (%q, %q); screen:\n%s", what, m[1], prev, m[2], screen)
		}
		out[m[1]] = strings.TrimSpace(m[2])
	}
	return out
}

// checkLayers checks that the screen shows exactly n layer lines and that
// each one's final state matches final.
func checkLayers(t *testing.T, what, screen string, n int, final *regexp.Regexp) {
	t.Helper()
	lines := layerLines(t, what, screen)
	if len(lines) != n {
		t.Errorf("%s: %d layer lines, want %d; screen:\n%s", what, len(lines), n, screen)
	}
	for id, st := range lines {
		if !final.MatchString(st) {
			t.Errorf("%s: layer %s ends with %q; screen:\n%s", what, id, st, screen)
		}
	}
	for _, s := range []string{"Verifying Checksum", "Download complete", "Pulling fs layer", "Waiting", "Preparing"} {
		if strings.Contains(screen, s) {
			t.Errorf("%s: a line %q was left on the screen:\n%s", what, s, screen)
		}
	}
}

// In a real terminal (tmux), pull, push, load and a build's FROM pull show
// one line per layer at the end, as against dockerd, through the docker CLI
// and skiff's own.
func TestTerminalProgressOneLinePerLayer(t *testing.T) {
	reg := startRegistry(t, "", "")
	d := startDaemon(t)
	d.importBusybox()

	// Four layers, two of them big enough for several progress updates.
	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM busybox\n"+
		"RUN head -c 3000000 /dev/urandom > /big1\n"+
		"RUN head -c 2000000 /dev/urandom > /big2\n"+
		"RUN echo small > /small\n"), 0o644)
	ref := reg.host + "/progress/multi:1"
	d.must("build", "-q", "-t", ref, ctxDir)
	// forget reclaims the image's layers, so the next pull downloads them.
	forget := func() {
		t.Helper()
		d.skiff("rmi", "-f", ref)
		d.must("image", "prune", "-a", "-f")
		if out := d.must("images", "-q", "-a"); strings.TrimSpace(out) != "" {
			t.Fatalf("images left: %s", out)
		}
	}

	done := regexp.MustCompile(`CLI-EXIT=(\d+)`)
	runTerm := func(name, cmdline string) string {
		t.Helper()
		tm := newTerm(t, d, name, 120, 40, cmdline)
		s := tm.waitFor("CLI-EXIT=")
		if m := done.FindStringSubmatch(s); m == nil || m[1] != "0" {
			t.Fatalf("%s failed:\n%s", cmdline, s)
		}
		return s
	}

	// skiff push: every layer pushed, one line each.
	s := runTerm("skpush", binDir+"/skiff push "+ref)
	checkLayers(t, "skiff push", s, 4, regexp.MustCompile(`^Pushed$`))
	if !strings.Contains(s, "1: digest: sha256:") {
		t.Errorf("skiff push: no digest line:\n%s", s)
	}
	// docker push to another repository: the blobs are mounted or exist.
	d.must("tag", ref, reg.host+"/progress/copy:1")
	s = runTerm("dkpush", "docker push "+reg.host+"/progress/copy:1")
	checkLayers(t, "docker push", s, 4, regexp.MustCompile(`^(Mounted from progress/multi|Layer already exists|Pushed)$`))

	d.must("save", "-o", filepath.Join(d.root, "multi.tar"), ref)
	d.skiff("rmi", reg.host+"/progress/copy:1")
	forget()

	s = runTerm("dkpull", "docker pull "+ref)
	t.Logf("docker pull, final screen:\n%s", s)
	checkLayers(t, "docker pull", s, 4, regexp.MustCompile(`^Pull complete$`))
	if !strings.Contains(s, "Status: Downloaded newer image for "+ref) {
		t.Errorf("docker pull: no status line:\n%s", s)
	}
	forget()

	s = runTerm("skpull", binDir+"/skiff pull "+ref)
	checkLayers(t, "skiff pull", s, 4, regexp.MustCompile(`^Pull complete$`))
	forget()

	// run of an image not here pulls it, drawn on stderr the same way.
	for _, cli := range []string{"docker", binDir + "/skiff"} {
		s = runTerm("run"+filepath.Base(cli), cli+" run --rm "+ref+" cat /small")
		checkLayers(t, cli+" run", s, 4, regexp.MustCompile(`^Pull complete$`))
		if !strings.Contains(s, "Unable to find image '"+ref+"' locally") || !strings.Contains(s, "\nsmall\n") {
			t.Errorf("%s run:\n%s", cli, s)
		}
		forget()
	}

	// docker load on a terminal asks for progress: a bar per layer.
	s = runTerm("dkload", "docker load -i "+filepath.Join(d.root, "multi.tar"))
	checkLayers(t, "docker load", s, 4, regexp.MustCompile(`^Loading layer +\[=+>\] +[0-9.]+[kM]?B/[0-9.]+[kM]?B$`))
	if !strings.Contains(s, "Loaded image: "+ref) {
		t.Errorf("docker load: no loaded line:\n%s", s)
	}
	forget()

	// A build whose FROM is pulled sends the pull's messages in its
	// stream. docker 28's legacy build never draws them as a terminal
	// (it wraps its stdout in a stream the terminal check does not see
	// through), against dockerd too: every status is a line, and the byte
	// counts are left out.
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+ref+"\nLABEL again=1\n"), 0o644)
	s = runTerm("dkbuild", "DOCKER_BUILDKIT=0 docker build -t again "+ctxDir)
	if n := strings.Count(s, ": Pull complete\n"); n != 4 || strings.Contains(s, "Downloading") || !strings.Contains(s, "Successfully tagged again:latest") {
		t.Errorf("docker build: %d layers pulled; screen:\n%s", n, s)
	}
	d.must("rmi", "again")
	forget()
	// skiff's CLI draws a build's pull as a terminal pull.
	s = runTerm("skbuild", binDir+"/skiff build -t again "+ctxDir)
	checkLayers(t, "skiff build", s, 4, regexp.MustCompile(`^Pull complete$`))
	if !strings.Contains(s, "Successfully tagged again:latest") {
		t.Errorf("skiff build: %s", s)
	}
}
