package volume

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/meta"
)

func TestStore(t *testing.T) {
	dir := t.TempDir()
	db, err := meta.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := New(filepath.Join(dir, "volumes"), db)
	if err != nil {
		t.Fatal(err)
	}
	v, created, err := s.Create("data", "", nil, map[string]string{"a": "b"})
	if err != nil || !created || v.Driver != "local" {
		t.Fatalf("create: %+v %v %v", v, created, err)
	}
	if _, created, _ := s.Create("data", "", nil, nil); created {
		t.Fatal("second create of the same name made a new volume")
	}
	if !s.IsEmpty("data") {
		t.Fatal("new volume not empty")
	}
	os.WriteFile(filepath.Join(s.Mountpoint("data"), "f"), []byte("12345"), 0o644)
	if s.Size("data") != 5 {
		t.Fatalf("size %d", s.Size("data"))
	}
	anon, _, err := s.Create("", "", nil, nil)
	if err != nil || !anon.Anonymous() || len(anon.Name) != 64 {
		t.Fatalf("anonymous: %+v %v", anon, err)
	}
	for _, bad := range []struct {
		name string
		opts map[string]string
	}{{"a/b", nil}, {"x", map[string]string{"bogus": "1"}}, {"y", map[string]string{"type": "tmpfs"}}} {
		if _, _, err := s.Create(bad.name, "", bad.opts, nil); !errdefs.IsInvalid(err) {
			t.Errorf("create %q %v: %v, want invalid", bad.name, bad.opts, err)
		}
	}
	if _, _, err := s.Create("z", "nfs-plugin", nil, nil); !errdefs.IsNotFound(err) {
		t.Errorf("unknown driver: %v", err)
	}
	if typ, src, opts := s.MountSpec(&Volume{Name: "t", Options: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=64m"}}); typ != "tmpfs" || src != "tmpfs" || len(opts) != 1 {
		t.Errorf("MountSpec: %s %s %v", typ, src, opts)
	}
	if err := s.Remove("data"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Mountpoint("data")); !os.IsNotExist(err) {
		t.Fatal("data left behind")
	}
	if err := s.Remove("data"); !errdefs.IsNotFound(err) {
		t.Fatalf("remove twice: %v", err)
	}
	list, _ := s.List()
	if len(list) != 1 {
		t.Fatalf("list: %d", len(list))
	}
}
