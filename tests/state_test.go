package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A removal that fails half-way leaves the container "dead", as Docker
// does: recorded (it survives an engine restart), listed, refused a start,
// and removed by the next rm once the cause is gone. The failure here is a
// file the container's directory cannot lose (chattr +i).
func TestRemoveFailureLeavesDead(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	id := strings.TrimSpace(d.dockerOK("create", "--name", "dd", "busybox", "true"))
	pin := filepath.Join(d.root, "data", "containers", id, "pin")
	if err := os.WriteFile(pin, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	chattr := func(flag string) {
		if out, err := exec.Command("chattr", flag, pin).CombinedOutput(); err != nil {
			t.Fatalf("chattr %s: %v %s", flag, err, out)
		}
	}
	chattr("+i")
	t.Cleanup(func() { exec.Command("chattr", "-i", pin).Run() })

	d.dockerFails(1, "operation not permitted", "rm", "dd")
	state := func() string {
		return strings.TrimSpace(d.dockerOK("inspect", "-f", "{{.State.Status}} {{.State.Dead}} {{.State.Running}}", "dd"))
	}
	if s := state(); s != "dead true false" {
		t.Fatalf("after a failed rm: %q", s)
	}
	d.stop()
	d.start()
	if s := state(); s != "dead true false" {
		t.Errorf("after an engine restart: %q", s)
	}
	if out := d.dockerOK("ps", "-a", "--filter", "status=dead", "--format", "{{.Names}} {{.Status}}"); strings.TrimSpace(out) != "dd Dead" {
		t.Errorf("ps of a dead container: %q", out)
	}
	d.dockerFails(1, "marked for removal and cannot be started", "start", "dd")

	chattr("-i")
	d.dockerOK("rm", "dd")
	d.dockerFails(1, "No such container", "container", "inspect", "dd")
}
