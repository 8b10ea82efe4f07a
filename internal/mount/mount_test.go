package mount

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/testutil"
)

func TestOverlayOptions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		m      Mount
		want   []string
		wantFl uintptr
	}{
		{"writable", Overlay([]string{"/l1", "/l2"}, "/u", "/w"), []string{"lowerdir=/l1:/l2", "upperdir=/u", "workdir=/w"}, 0},
		{"read-only", Overlay([]string{"/u", "/l1"}, "", "", "ro"), []string{"lowerdir=/u:/l1", "ro"}, unix.MS_RDONLY},
		{"volatile", Overlay([]string{"/l"}, "/u", "/w", "volatile"), []string{"lowerdir=/l", "upperdir=/u", "workdir=/w", "volatile"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.m.Type != "overlay" || !reflect.DeepEqual(tc.m.Options, tc.want) {
				t.Fatalf("Overlay = %+v, want options %q", tc.m, tc.want)
			}
			fl, data := tc.m.split()
			if fl != tc.wantFl {
				t.Errorf("flags %#x, want %#x", fl, tc.wantFl)
			}
			for _, d := range data {
				if d == "ro" {
					t.Errorf("ro passed as file system data: %q", data)
				}
			}
		})
	}
	if b := Bind("/d", true); b.Type != "bind" || !reflect.DeepEqual(b.Options, []string{"ro", "rbind"}) {
		t.Fatalf("Bind = %+v", b)
	}
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("these tests mount file systems: run them as root")
	}
}

// layers makes n lower directories (each with a file named after it), an
// upper and a work directory.
func layers(t *testing.T, n int) (lowers []string, upper, work string) {
	base := t.TempDir()
	for i := range n {
		d := filepath.Join(base, "a-long-enough-layer-directory-name-"+strconv.Itoa(i))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "f"+strconv.Itoa(i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		lowers = append(lowers, d)
	}
	upper, work = filepath.Join(base, "upper"), filepath.Join(base, "work")
	os.Mkdir(upper, 0o755)
	os.Mkdir(work, 0o755)
	return lowers, upper, work
}

func TestDetached(t *testing.T) {
	requireRoot(t)
	lowers, upper, work := layers(t, 70)
	long := Overlay(lowers, upper, work)
	if d := strings.Join(long.Options, ","); len(d) < maxData {
		t.Fatalf("options of %d bytes do not test the long path", len(d))
	}
	for _, tc := range []struct {
		name     string
		m        Mount
		see      string // a file the mount shows
		readOnly bool
	}{
		{"overlay", Overlay(lowers[:2], upper, work), "f1", false},
		{"overlay of 70 layers", long, "f69", false},
		{"read-only overlay", Overlay(lowers[:3], "", "", "ro"), "f2", true},
		{"read-only bind", Bind(lowers[0], true), "f0", true},
		{"bind", Bind(lowers[0], false), "f0", false},
		{"read-only tmpfs", Mount{Type: "tmpfs", Source: "tmpfs", Options: []string{"ro", "mode=0755"}}, ".", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd, err := Detached([]Mount{tc.m})
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			if _, err := os.Stat(filepath.Join("/proc/self/fd", strconv.Itoa(fd), tc.see)); err != nil {
				t.Fatalf("the mount does not show %s: %v", tc.see, err)
			}
			name := "written-" + strings.ReplaceAll(tc.name, " ", "-")
			err = os.WriteFile(filepath.Join("/proc/self/fd", strconv.Itoa(fd), name), nil, 0o644)
			if tc.readOnly != errors.Is(err, unix.EROFS) {
				t.Fatalf("write: %v, want read-only %v", err, tc.readOnly)
			}
			if err := unix.Close(fd); err != nil {
				t.Fatal(err)
			}
			fd = -1
			if tc.m.Type == "overlay" && !tc.readOnly {
				// The write went to the upper directory.
				if _, err := os.Stat(filepath.Join(upper, name)); err != nil {
					t.Fatalf("upper dir: %v", err)
				}
			}
		})
	}
	if _, err := Detached([]Mount{Bind("/", true), Bind("/", true)}); err == nil {
		t.Fatal("Detached of two mounts did not fail")
	}
}

func TestAll(t *testing.T) {
	requireRoot(t)
	lowers, upper, work := layers(t, 70)
	for _, tc := range []struct {
		name string
		ms   []Mount
		see  []string
	}{
		{"short overlay", []Mount{Overlay(lowers[:2], upper, work)}, []string{"f0", "f1"}},
		{"long overlay, volatile", []Mount{Overlay(lowers, upper, work, "volatile")}, []string{"f0", "f69"}},
		{"bind with a target", []Mount{Bind(lowers[0], true), {Type: "bind", Source: lowers[1], Target: "sub", Options: []string{"ro", "rbind"}}}, []string{"f0", "sub/f1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := t.TempDir()
			if len(tc.ms) > 1 {
				os.Mkdir(filepath.Join(lowers[0], "sub"), 0o755)
			}
			testutil.InMountNS(t, func() error {
				if err := All(tc.ms, target); err != nil {
					return err
				}
				for _, f := range tc.see {
					if _, err := os.Stat(filepath.Join(target, f)); err != nil {
						return err
					}
				}
				return nil
			})
			// The namespace died with its thread: nothing is left here.
			if ents, _ := os.ReadDir(target); len(ents) != 0 {
				t.Fatalf("the mount is visible outside its namespace: %d entries", len(ents))
			}
		})
	}
}
