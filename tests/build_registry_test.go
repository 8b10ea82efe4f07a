package tests

import (
	"strings"
	"testing"
)

// A build FROM an image in a registry that needs a login pulls it with the
// client's credentials (X-Registry-Config), through our CLI and docker's;
// without them the pull is refused.
func TestBuildFromPrivateRegistry(t *testing.T) {
	reg := startRegistry(t, "builduser", "b-pass")
	d := startDaemon(t)
	d.importBusybox()
	base := reg.host + "/private/base:1"
	d.must("tag", "busybox", base)
	d.mustIn(strings.NewReader("b-pass\n"), "login", "-u", "builduser", "--password-stdin", reg.host)
	d.must("push", "-q", base)
	d.must("rmi", base)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo built > /built\n"})

	d.must("logout", reg.host)
	if out, errOut, code := d.skiff("build", "-t", "frompriv:1", ctx); code == 0 {
		t.Fatalf("build without credentials succeeded:\n%s", out)
	} else if !strings.Contains(out+errOut, "pull access denied") && !strings.Contains(strings.ToLower(out+errOut), "unauthorized") {
		t.Fatalf("build without credentials: exit %d\n%s\n%s", code, out, errOut)
	}

	d.mustIn(strings.NewReader("b-pass\n"), "login", "-u", "builduser", "--password-stdin", reg.host)
	if out := d.must("build", "-t", "frompriv:1", ctx); !strings.Contains(out, "Successfully tagged frompriv:1") {
		t.Fatalf("build with credentials:\n%s", out)
	}
	if got := d.must("run", "--rm", "frompriv:1", "cat", "/built"); got != "built\n" {
		t.Fatalf("built image: %q", got)
	}
	d.must("rmi", "frompriv:1", base)
	if out, errOut, code := d.dockerBuild(nil, "--no-cache", "-t", "frompriv:2", ctx); code != 0 || !strings.Contains(out, "Successfully tagged frompriv:2") {
		t.Fatalf("docker build with credentials: exit %d\n%s\n%s", code, out, errOut)
	}
}
