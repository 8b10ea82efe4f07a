package tests

import (
	"strings"
	"testing"
)

// pull --all-tags fetches every tag of a repository, through our CLI and
// the docker CLI; a tag with -a is refused as docker refuses it.
func TestPullAllTags(t *testing.T) {
	reg := startRegistry(t, "", "")
	d := startDaemon(t)
	d.importBusybox()
	repo := reg.host + "/e2e/multi"
	for _, tag := range []string{"v1", "v2", "v3"} {
		d.must("tag", "busybox", repo+":"+tag)
		d.must("push", "-q", repo+":"+tag)
	}
	for _, tag := range []string{"v1", "v2", "v3"} {
		d.must("rmi", repo+":"+tag)
	}

	out := d.must("pull", "--all-tags", repo)
	for _, want := range []string{"v1: Pulling from e2e/multi", "v2: Pulling from e2e/multi", "v3: Pulling from e2e/multi",
		"Status: Image is up to date for " + repo, "\n" + repo + "\n"} {
		if !strings.Contains("\n"+out, want) {
			t.Fatalf("pull -a output lacks %q:\n%s", want, out)
		}
	}
	images := d.must("images", "--format", "{{.Tag}}", repo)
	if got := strings.Fields(images); len(got) != 3 {
		t.Fatalf("tags after pull -a: %q", images)
	}
	for _, tag := range []string{"v1", "v2", "v3"} {
		d.must("image", "inspect", repo+":"+tag)
	}

	for _, tag := range []string{"v1", "v2", "v3"} {
		d.must("rmi", repo+":"+tag)
	}
	d.must("rmi", "busybox")
	dout, derr, code := d.docker("pull", "-a", repo)
	if code != 0 || !strings.Contains(dout, "Status: Downloaded newer image for "+repo) {
		t.Fatalf("docker pull -a: exit %d\n%s\n%s", code, dout, derr)
	}
	ids := map[string]bool{}
	for _, id := range strings.Fields(d.must("images", "-q", repo)) {
		ids[id] = true
	}
	if n := len(ids); n != 1 {
		t.Fatalf("docker pull -a: %d image ids for %s, want 1 (three tags of one image)", n, repo)
	}
	if n := len(strings.Fields(d.must("images", "--format", "{{.Tag}}", repo))); n != 3 {
		t.Fatalf("docker pull -a: %d tags, want 3", n)
	}

	for _, bad := range []string{repo + ":v1"} {
		_, errOut, code := d.skiff("pull", "-a", bad)
		if code == 0 || !strings.Contains(errOut, "tag can't be used with --all-tags/-a") {
			t.Fatalf("pull -a %s: exit %d: %s", bad, code, errOut)
		}
	}
	_, errOut, code := d.skiff("pull", "-a", reg.host+"/e2e/absent")
	if code != 1 || !strings.Contains(errOut, "not found") && !strings.Contains(errOut, "unknown") {
		t.Fatalf("pull -a of a missing repository: exit %d: %s", code, errOut)
	}
}
