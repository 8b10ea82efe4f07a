package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/meta"
	"github.com/skiff-dev/skiff/internal/mount"
	"github.com/skiff-dev/skiff/internal/testutil"
)

func newSnapshotter(t *testing.T) (*Snapshotter, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := meta.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	root := filepath.Join(dir, "snapshots")
	s, err := New(root, db)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

// inMountNS runs fn where its mounts are invisible to the host.
func inMountNS(t *testing.T, fn func()) {
	t.Helper()
	testutil.InMountNS(t, func() error { fn(); return nil })
}

func mountAll(t *testing.T, mounts []Mount, target string) error {
	t.Helper()
	if len(mounts) != 1 {
		t.Fatalf("want one mount, got %v", mounts)
	}
	return mount.All(mounts, target)
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// buildTwoLayers commits base (a, dir/{x,y}, gone) and top (a changed, gone
// whited out, dir made opaque with only z) and returns the top's name.
func buildTwoLayers(t *testing.T, s *Snapshotter) string {
	ctx := context.Background()
	if _, err := s.Prepare(ctx, "base-active", ""); err != nil {
		t.Fatal(err)
	}
	up, err := s.UpperDir(ctx, "base-active")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(up, "a"), "a1")
	write(t, filepath.Join(up, "dir", "x"), "x")
	write(t, filepath.Join(up, "dir", "y"), "y")
	write(t, filepath.Join(up, "gone"), "gone")
	if err := s.Commit(ctx, "sha256:base", "base-active"); err != nil {
		t.Fatal(err)
	}

	if _, err := s.Prepare(ctx, "top-active", "sha256:base"); err != nil {
		t.Fatal(err)
	}
	up, err = s.UpperDir(ctx, "top-active")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(up, "a"), "a2")
	if err := unix.Mknod(filepath.Join(up, "gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(up, "dir", "z"), "z")
	if err := unix.Setxattr(filepath.Join(up, "dir"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "sha256:top", "top-active"); err != nil {
		t.Fatal(err)
	}
	return "sha256:top"
}

func TestOverlayMountsShowMergedLayers(t *testing.T) {
	ctx := context.Background()
	s, _ := newSnapshotter(t)
	top := buildTwoLayers(t, s)

	mounts, err := s.Prepare(ctx, "container-1", top)
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := s.Dirs(ctx, "container-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs.Lowers) != 2 || dirs.Upper == "" || dirs.Work == "" {
		t.Fatalf("Dirs = %+v, want two lowers, an upper and a work dir", dirs)
	}
	if want := []Mount{mount.Overlay(dirs.Lowers, dirs.Upper, dirs.Work)}; !reflect.DeepEqual(mounts, want) {
		t.Fatalf("Prepare = %+v, want the overlay of Dirs %+v", mounts, want)
	}
	if got, _ := s.Mounts(ctx, "container-1"); !reflect.DeepEqual(got, mounts) {
		t.Fatalf("Mounts = %+v, Prepare gave %+v", got, mounts)
	}
	upper, _ := s.UpperDir(ctx, "container-1")
	target := t.TempDir()

	inMountNS(t, func() {
		if err := mountAll(t, mounts, target); err != nil {
			t.Errorf("mount overlay: %v", err)
			return
		}
		defer unix.Unmount(target, unix.MNT_DETACH)
		if b, _ := os.ReadFile(filepath.Join(target, "a")); string(b) != "a2" {
			t.Errorf("a = %q, want the top layer's a2", b)
		}
		if _, err := os.Lstat(filepath.Join(target, "gone")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("whited-out file visible: %v", err)
		}
		if got := readDir(t, filepath.Join(target, "dir")); !slices.Equal(got, []string{"z"}) {
			t.Errorf("opaque dir shows %v, want [z]", got)
		}
		write(t, filepath.Join(target, "new"), "new")
		if b, err := os.ReadFile(filepath.Join(upper, "new")); err != nil || string(b) != "new" {
			t.Errorf("write did not land in the upper dir: %q %v", b, err)
		}
	})

	u, err := s.Usage(ctx, "container-1")
	if err != nil || u.Size != 3 {
		t.Fatalf("Usage of container-1 = %+v, %v; want 3 bytes", u, err)
	}
}

func TestViews(t *testing.T) {
	ctx := context.Background()
	s, _ := newSnapshotter(t)
	top := buildTwoLayers(t, s)

	tests := []struct {
		name, parent string
		wantType     string
		check        func(t *testing.T, root string)
	}{
		{"two layers", top, "overlay", func(t *testing.T, root string) {
			if got := readDir(t, root); !slices.Equal(got, []string{"a", "dir"}) {
				t.Errorf("root shows %v", got)
			}
		}},
		{"one layer", "sha256:base", "bind", func(t *testing.T, root string) {
			if got := readDir(t, root); !slices.Equal(got, []string{"a", "dir", "gone"}) {
				t.Errorf("root shows %v", got)
			}
		}},
		{"empty", "", "bind", func(t *testing.T, root string) {
			if got := readDir(t, root); len(got) != 0 {
				t.Errorf("root shows %v", got)
			}
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := "view-" + string(rune('a'+i))
			mounts, err := s.View(ctx, key, tc.parent)
			if err != nil {
				t.Fatal(err)
			}
			if mounts[0].Type != tc.wantType {
				t.Fatalf("view mount type %q, want %q", mounts[0].Type, tc.wantType)
			}
			if _, err := s.UpperDir(ctx, key); !errdefs.IsInvalid(err) {
				t.Errorf("UpperDir of a view: %v", err)
			}
			target := t.TempDir()
			inMountNS(t, func() {
				if err := mountAll(t, mounts, target); err != nil {
					t.Errorf("mount: %v", err)
					return
				}
				defer unix.Unmount(target, unix.MNT_DETACH)
				tc.check(t, target)
				if err := os.WriteFile(filepath.Join(target, "w"), nil, 0o644); !errors.Is(err, unix.EROFS) {
					t.Errorf("write into a view: %v, want EROFS", err)
				}
			})
			if err := s.Remove(ctx, key); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestActiveWithoutParentIsOverlay(t *testing.T) {
	ctx := context.Background()
	s, _ := newSnapshotter(t)
	mounts, err := s.Prepare(ctx, "scratch", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 1 || mounts[0].Type != "overlay" {
		t.Fatalf("active snapshot without parent: %v", mounts)
	}
	target := t.TempDir()
	inMountNS(t, func() {
		if err := mountAll(t, mounts, target); err != nil {
			t.Errorf("mount: %v", err)
			return
		}
		defer unix.Unmount(target, unix.MNT_DETACH)
		write(t, filepath.Join(target, "f"), "x")
	})
	up, _ := s.UpperDir(ctx, "scratch")
	if _, err := os.Stat(filepath.Join(up, "f")); err != nil {
		t.Fatal(err)
	}
	if got := readDir(t, s.emptyDir()); len(got) != 0 {
		t.Fatalf("the shared empty lower dir got %v", got)
	}
}

func TestLifecycleErrors(t *testing.T) {
	ctx := context.Background()
	s, root := newSnapshotter(t)
	top := buildTwoLayers(t, s)
	if _, err := s.Prepare(ctx, "c", top); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		err  error
		kind errdefs.Kind
	}{
		{"prepare existing key", func() error { _, err := s.Prepare(ctx, "c", top); return err }(), errdefs.KindConflict},
		{"prepare on missing parent", func() error { _, err := s.Prepare(ctx, "d", "sha256:nope"); return err }(), errdefs.KindNotFound},
		{"prepare on active parent", func() error { _, err := s.Prepare(ctx, "d", "c"); return err }(), errdefs.KindInvalid},
		{"commit onto existing name", s.Commit(ctx, top, "c"), errdefs.KindConflict},
		{"commit a committed snapshot", s.Commit(ctx, "x", top), errdefs.KindInvalid},
		{"remove a parent", s.Remove(ctx, "sha256:base"), errdefs.KindConflict},
		{"remove parent of an active", s.Remove(ctx, top), errdefs.KindConflict},
		{"remove missing", s.Remove(ctx, "nope"), errdefs.KindNotFound},
		{"stat missing", func() error { _, err := s.Stat(ctx, "nope"); return err }(), errdefs.KindNotFound},
		{"mounts of committed", func() error { _, err := s.Mounts(ctx, top); return err }(), errdefs.KindInvalid},
		{"empty key", func() error { _, err := s.Prepare(ctx, "", ""); return err }(), errdefs.KindInvalid},
	}
	for _, tc := range tests {
		if got := errdefs.KindOf(tc.err); got != tc.kind {
			t.Errorf("%s: %v (kind %v), want kind %v", tc.name, tc.err, got, tc.kind)
		}
	}
	// Failed creations leave no directory behind.
	if got := readDir(t, root); len(got) != 4 { // empty, base, top, c
		t.Errorf("snapshot root holds %v", got)
	}

	info, err := s.Stat(ctx, "c")
	if err != nil || info.Kind != KindActive || info.Parent != top {
		t.Fatalf("Stat c = %+v, %v", info, err)
	}
	var keys []string
	s.Walk(ctx, func(i Info) error { keys = append(keys, string(i.Kind)+":"+i.Key); return nil })
	if want := []string{"active:c", "committed:sha256:base", "committed:sha256:top"}; !slices.Equal(keys, want) {
		t.Fatalf("Walk = %v, want %v", keys, want)
	}

	// Removing from the top down works and removes the files.
	for _, k := range []string{"c", top, "sha256:base"} {
		if err := s.Remove(ctx, k); err != nil {
			t.Fatalf("remove %s: %v", k, err)
		}
	}
	if got := readDir(t, root); !slices.Equal(got, []string{"empty"}) {
		t.Fatalf("after removing everything the root holds %v", got)
	}
}

func TestCrashLeftoversCleaned(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := meta.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	root := filepath.Join(dir, "snapshots")
	s, err := New(root, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, "keep", ""); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"new-123", "rm-7-abcd", "999"} {
		write(t, filepath.Join(root, d, "fs", "f"), "x")
	}
	if _, err := New(root, db); err != nil {
		t.Fatal(err)
	}
	if got := readDir(t, root); !slices.Equal(got, []string{"1", "empty"}) {
		t.Fatalf("after reopen the root holds %v", got)
	}
	if _, err := New(filepath.Join(dir, "a,b"), db); !errdefs.IsInvalid(err) {
		t.Fatalf("root with a comma: %v", err)
	}
}

// A new snapshot's root takes its parent's owner but mode 0755 (as Docker's
// overlay2): an image whose root entry was 0700 still lets other users in.
func TestCommitKeepsRootOwnership(t *testing.T) {
	ctx := context.Background()
	s, _ := newSnapshotter(t)
	if _, err := s.Prepare(ctx, "a", ""); err != nil {
		t.Fatal(err)
	}
	up, _ := s.UpperDir(ctx, "a")
	os.Chmod(up, 0o700)
	os.Lchown(up, 1000, 1001)
	if err := s.Commit(ctx, "base", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, "b", "base"); err != nil {
		t.Fatal(err)
	}
	up, _ = s.UpperDir(ctx, "b")
	var st unix.Stat_t
	unix.Lstat(up, &st)
	if st.Mode&0o7777 != 0o755 || st.Uid != 1000 || st.Gid != 1001 {
		t.Fatalf("upper root mode %o owner %d:%d, want 755 and the parent's 1000:1001", st.Mode&0o7777, st.Uid, st.Gid)
	}
}
