// Package testutil holds helpers shared by the tests of several packages.
// Only _test.go files import it.
package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

var busyboxApplets = []string{
	"sh", "echo", "cat", "ls", "sleep", "id", "true", "false", "hostname", "dd", "tail",
	"head", "wc", "grep", "env", "test", "readlink", "pwd", "seq", "touch", "mkdir", "stat",
	"tty", "stty", "cut", "yes",
}

// BusyboxRoot builds a minimal root file system in a temp dir from Debian's
// busybox-static: busybox with applet links, /etc/passwd, /etc/group and a
// non-executable /etc/notexec. It skips the test when busybox is missing.
func BusyboxRoot(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("busybox not available: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd":  "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":   "root:x:0:\ndaemon:x:1:\nwheel:x:10:root\naudio:x:29:daemon,nobody\nnogroup:x:65534:\n",
		"etc/notexec": "#!/bin/sh\necho no\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}
