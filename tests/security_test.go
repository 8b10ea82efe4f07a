package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --security-opt: no-new-privileges applies; seccomp=unconfined is what
// skiff runs anyway; a seccomp profile is refused (skiff applies none yet),
// through both CLIs, with nothing created.
func TestSecurityOpts(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	if out := d.must("run", "--rm", "--security-opt", "no-new-privileges", "busybox", "grep", "NoNewPrivs", "/proc/self/status"); !strings.Contains(out, "NoNewPrivs:\t1") {
		t.Errorf("no-new-privileges: %q", out)
	}
	d.must("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "true")
	profile := filepath.Join(t.TempDir(), "profile.json")
	os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`), 0o644)
	for _, cli := range []func(...string) (string, string, int){d.skiff, d.docker} {
		_, errOut, code := cli("run", "--rm", "--security-opt", "seccomp="+profile, "busybox", "true")
		if code != 125 || !strings.Contains(errOut, "seccomp profiles are not supported") {
			t.Errorf("seccomp profile: exit %d %q, want 125 and a clear error", code, errOut)
		}
	}
	if out := d.must("ps", "-aq"); out != "" {
		t.Errorf("refused runs left containers: %q", out)
	}
}
