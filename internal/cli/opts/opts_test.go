package opts

import (
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"
)

func TestMemBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"512m", 512 << 20, ""},
		{"1g", 1 << 30, ""},
		{"1.5G", 3 << 29, ""},
		{"100", 100, ""},
		{"64k", 64 << 10, ""},
		{"x", 0, "invalid size: 'x'"},
		{"12q", 0, "invalid suffix: 'q'"},
	} {
		var m MemBytes
		err := m.Set(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("Set(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || m.Value() != tc.want {
			t.Errorf("Set(%q) = %d, %v; want %d", tc.in, m.Value(), err, tc.want)
		}
	}
	var s MemSwapBytes
	if err := s.Set("-1"); err != nil || s.Value() != -1 {
		t.Errorf("swap -1: %d %v", s.Value(), err)
	}
	var c NanoCPUs
	if err := c.Set("0.25"); err != nil || c.Value() != 250_000_000 || c.String() != "0.250" {
		t.Errorf("cpus: %d %q %v", c.Value(), c.String(), err)
	}
}

func TestParseVolumeSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want VolumeSpec
		err  bool
	}{
		{"/data", VolumeSpec{Type: mount.TypeVolume, Target: "/data"}, false},
		{"/h:/c", VolumeSpec{Type: mount.TypeBind, Source: "/h", Target: "/c"}, false},
		{"./rel:/c:ro", VolumeSpec{Type: mount.TypeBind, Source: "./rel", Target: "/c", ReadOnly: true}, false},
		{"named:/c:rw", VolumeSpec{Type: mount.TypeVolume, Source: "named", Target: "/c"}, false},
		{"/a::/b", VolumeSpec{}, true},
		{"/a:/b:ro:x", VolumeSpec{}, true},
	} {
		got, err := ParseVolumeSpec(tc.in)
		if tc.err {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestNetworkOpt(t *testing.T) {
	var n NetworkOpt
	if n.NetworkMode() != "default" {
		t.Errorf("default mode %q", n.NetworkMode())
	}
	if err := n.Set("host"); err != nil || n.NetworkMode() != "host" {
		t.Errorf("short: %v %q", err, n.NetworkMode())
	}
	var l NetworkOpt
	if err := l.Set("name=net1,alias=a1,ip=10.0.0.5"); err != nil {
		t.Fatal(err)
	}
	got := l.Value()[0]
	if got.Target != "net1" || !reflect.DeepEqual(got.Aliases, []string{"a1"}) || got.IPv4Address.String() != "10.0.0.5" {
		t.Errorf("long: %+v", got)
	}
	if err := l.Set("alias=x,foo=bar"); err == nil || !strings.Contains(err.Error(), "invalid field key foo") {
		t.Errorf("bad key: %v", err)
	}
}

func TestFilterOpt(t *testing.T) {
	f := NewFilterOpt()
	for _, v := range []string{"name=web", " Status = exited ", "label=a=b"} {
		if err := f.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]map[string]bool{"name": {"web": true}, "status": {"exited": true}, "label": {"a=b": true}}
	if !reflect.DeepEqual(map[string]map[string]bool(f.Value()), want) {
		t.Errorf("filters %v", f.Value())
	}
	if err := f.Set("novalue"); err == nil || err.Error() != "bad format of filter (expected name=value)" {
		t.Errorf("bad filter: %v", err)
	}
}

func TestMountOptErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"type=volume,target=/x,bind-propagation=rshared", "cannot mix 'bind-*' options with mount type 'volume'"},
		{"target=/x,readonly=maybe", `invalid value for 'readonly'`},
		{"target", "invalid field 'target' must be a key=value pair"},
		{"type=tmpfs,target=/t,tmpfs-mode=999", "invalid value for tmpfs-mode: 999"},
	} {
		var m MountOpt
		if err := m.Set(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
}
