package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Events of every type, read back with --since/--until, filters and a
// format, as the docker CLI shows them.
func TestEventsAllTypes(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	since := fmt.Sprint(time.Now().Add(-time.Second).Unix())
	d.must("volume", "create", "ev-vol")
	_, _, netCode := d.docker("network", "create", "ev-net")
	d.must("tag", "busybox", "ev-img:1")
	d.skiff("run", "--name", "ev1", "-v", "ev-vol:/data", "busybox", "sh", "-c", "exit 5")
	d.must("rm", "ev1")
	d.must("rmi", "ev-img:1")
	if netCode == 0 {
		d.must("network", "rm", "ev-net")
	}
	d.must("volume", "rm", "ev-vol")
	until := fmt.Sprint(time.Now().Add(time.Second).Unix())
	time.Sleep(1100 * time.Millisecond) // until must have passed for a bounded read

	// (Volume events carry no name attribute: the ID is the name.)
	format := "{{.Type}} {{.Action}} {{if .Actor.Attributes.name}}{{.Actor.Attributes.name}}{{else}}{{.Actor.ID}}{{end}}"
	out, errOut, code := d.docker("events", "--since", since, "--until", until, "--format", format)
	if code != 0 {
		t.Fatalf("events: %d %s", code, errOut)
	}
	want := []string{
		"volume create ev-vol", "image tag ev-img:1", "container create ev1", "container start ev1",
		"container die ev1", "container destroy ev1", "image untag", "volume destroy ev-vol",
	}
	if netCode == 0 {
		want = append(want, "network create ev-net", "network destroy ev-net")
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("events lack %q:\n%s", w, out)
		}
	}
	// Filters: type, event, container, volume, image; Docker's fields.
	out, _, _ = d.docker("events", "--since", since, "--until", until, "--filter", "container=ev1", "--filter", "event=die",
		"--format", "{{.Type}} {{.Status}} {{.From}} {{.Actor.Attributes.exitCode}} {{.Actor.Attributes.image}} {{.Scope}}")
	if strings.TrimSpace(out) != "container die busybox 5 busybox local" {
		t.Errorf("container die event: %q", out)
	}
	out, _, _ = d.docker("events", "--since", since, "--until", until, "--filter", "volume=ev-vol", "--format", "{{.Action}} {{.Actor.Attributes.driver}}")
	if !strings.Contains(out, "create local") || !strings.Contains(out, "destroy local") || strings.Contains(out, "container") {
		t.Errorf("volume filter: %q", out)
	}
	out, _, _ = d.docker("events", "--since", since, "--until", until, "--filter", "type=image", "--format", "{{.Action}} {{.Actor.ID}}")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) != 2 || !strings.HasPrefix(f[1], "sha256:") {
			t.Errorf("image event without the image ID: %q", l)
		}
	}
	if _, errOut, code := d.docker("events", "--since", "2", "--until", "1"); code == 0 || !strings.Contains(errOut, "cannot be after") {
		t.Errorf("since after until: %d %s", code, errOut)
	}
}
