package engine

import (
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/cgroups"
	"github.com/skiff-dev/skiff/internal/errdefs"
)

func TestCgroupnsMode(t *testing.T) {
	unified, err := cgroups.IsUnified()
	if err != nil {
		t.Skip("no cgroup file system:", err)
	}
	// dockerd's: host on v1 (always, for a privileged container), private on v2.
	def := container.CgroupnsModeHost
	if unified {
		def = container.CgroupnsModePrivate
	}
	for _, c := range []struct {
		daemon     string
		mode       container.CgroupnsMode
		privileged bool
		want       container.CgroupnsMode
		err        string
	}{
		{"", "", false, def, ""},
		{"", "", true, def, ""},
		{"private", "", false, "private", ""},
		{"host", "", false, "host", ""},
		{"private", "", true, def, ""},
		{"", "private", false, "private", ""},
		{"private", "host", false, "host", ""},
		{"", "bogus", false, "", "invalid cgroup namespace mode: bogus"},
	} {
		e := &Engine{cfg: Config{DefaultCgroupnsMode: c.daemon}}
		hc := container.HostConfig{CgroupnsMode: c.mode, Privileged: c.privileged}
		err := e.setCgroupnsMode(&hc)
		switch {
		case c.err != "" && (err == nil || err.Error() != c.err || !errdefs.IsInvalid(err)):
			t.Errorf("%+v: error %v, want Invalid %q", c, err, c.err)
		case c.err == "" && (err != nil || hc.CgroupnsMode != c.want):
			t.Errorf("%+v: %q, %v; want %q", c, hc.CgroupnsMode, err, c.want)
		}
	}
	hc := container.HostConfig{SecurityOpt: []string{"writable-cgroups=yes please"}}
	if err := (&Engine{}).setCgroupnsMode(&hc); err == nil || err.Error() != `invalid --security-opt 2: "writable-cgroups=yes please"` {
		t.Errorf("writable-cgroups=yes please: %v", err)
	}
	if err := ValidateCgroupnsMode("shared"); err == nil || err.Error() != `invalid default cgroup namespace (shared): use "host" or "private"` {
		t.Errorf("daemon default shared: %v", err)
	}
	for _, ok := range []string{"", "host", "private"} {
		if err := ValidateCgroupnsMode(ok); err != nil {
			t.Errorf("daemon default %q: %v", ok, err)
		}
	}
}
