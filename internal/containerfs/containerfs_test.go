package containerfs

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Symlinks that point at / or climb with .. resolve inside the root.
func TestResolveStaysInRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root"), 0o644)
	os.Symlink("/", filepath.Join(root, "slash"))
	os.Symlink("../../../../../../"+outside, filepath.Join(root, "up"))
	os.Symlink(outside, filepath.Join(root, "abs"))
	os.Symlink("/etc/passwd", filepath.Join(root, "pw"))
	fd, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, p := range []string{"/up/secret", "/abs/secret", "/slash" + outside + "/secret", "/../../" + outside + "/secret"} {
		if f, err := OpenInRoot(fd, p, unix.O_RDONLY); err == nil {
			unix.Close(f)
			t.Errorf("%s opened a file outside the root", p)
		}
	}
	f, err := OpenInRoot(fd, "/slash/slash/etc/passwd", unix.O_RDONLY)
	if err != nil {
		t.Fatalf("in-root path through links: %v", err)
	}
	unix.Close(f)
	if got, err := Resolve(fd, "/slash/pw"); err != nil || got != "/etc/passwd" {
		t.Fatalf("Resolve = %q, %v", got, err)
	}
	st, err := Lstat(fd, "/pw")
	if err != nil || st.LinkTarget != "/etc/passwd" || st.Name != "pw" {
		t.Fatalf("Lstat = %+v, %v", st, err)
	}
}
