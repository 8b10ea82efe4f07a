package opts

import (
	"bytes"
	"encoding/csv"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	mounttypes "github.com/moby/moby/api/types/mount"
)

// FuzzParseVolumeSpec: a -v value that parses has a target, and its type
// follows its source (a path is a bind, anything else a volume); written
// back as SOURCE:TARGET[:ro] it parses to the same spec.
//
//	go test ./internal/cli/opts -run '^$' -fuzz '^FuzzParseVolumeSpec$' -fuzztime 1m
func FuzzParseVolumeSpec(f *testing.F) {
	for _, s := range []string{"/data", "vol:/data", "/host:/data:ro", "./rel:/d:rw,z", "~/x:/y", "c:/x:/y",
		"a:b:c:d", "::", "/a::/b", "x", "é:/ü:ro"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		if strings.ContainsRune(spec, 0) {
			return // no command line carries a NUL (docker's parser ends the spec there)
		}
		v, err := ParseVolumeSpec(spec)
		if err != nil {
			return
		}
		if v.Target == "" {
			t.Fatalf("%q: no target in %+v", spec, v)
		}
		wantType := mounttypes.TypeVolume
		if v.Source != "" && strings.ContainsRune("./~", rune(v.Source[0])) {
			wantType = mounttypes.TypeBind
		}
		if v.Type != wantType {
			t.Fatalf("%q: type %s for source %q", spec, v.Type, v.Source)
		}
		if v.Source == "" || drive(v.Source) || drive(v.Target) {
			// An anonymous volume is TARGET alone; a one-letter section
			// followed by ':' is a Windows drive to docker's parser
			// ("c:/x" is one path), so SOURCE:TARGET would not say it.
			return
		}
		again := v.Source + ":" + v.Target
		if v.ReadOnly {
			again += ":ro"
		}
		v2, err := ParseVolumeSpec(again)
		if err != nil || v2 != v {
			t.Fatalf("%q gave %+v; written back as %q it gives %+v, %v", spec, v, again, v2, err)
		}
	})
}

func drive(s string) bool {
	r := []rune(s)
	return len(r) == 1 && unicode.IsLetter(r[0])
}

// FuzzMountOpt: a --mount value that parses gives one mount that passes
// validateMount; written back as --mount's CSV fields it parses to the same
// mount.
func FuzzMountOpt(f *testing.F) {
	for _, s := range []string{
		"type=bind,source=/a,target=/b,readonly,bind-propagation=rshared",
		"type=volume,src=v,dst=/d,volume-nocopy=true,volume-label=a=b,volume-driver=local,volume-opt=o=1",
		"type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1777",
		"type=bind,src=/x,dst=/y,ro=true,bind-recursive=readonly,bind-propagation=rprivate",
		"type=image,source=busybox,target=/img,image-subpath=/etc",
		`"type=volume,target=/a,b",consistency=cached`,
		"target=/only",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		var m MountOpt
		if m.Set(value) != nil {
			return
		}
		if len(m.Value()) != 1 {
			t.Fatalf("%q gave %d mounts", value, len(m.Value()))
		}
		mt := m.Value()[0]
		if err := validateMount(&mt); err != nil {
			t.Fatalf("%q gave a mount that validateMount refuses: %v", value, err)
		}
		again, ok := mountCSV(mt)
		if !ok {
			return // a value --mount's fields cannot carry (whitespace around it)
		}
		var m2 MountOpt
		if err := m2.Set(again); err != nil {
			t.Fatalf("%q gave %+v; written back as %q: %v", value, mt, again, err)
		}
		if got := m2.Value()[0]; !reflect.DeepEqual(got, mt) {
			t.Fatalf("%q gave %+v; written back as %q it gives %+v", value, mt, again, got)
		}
	})
}

// mountCSV writes m as --mount fields; false when a value cannot be
// written (the parser trims, so surrounding whitespace or an empty value
// does not survive).
func mountCSV(m mounttypes.Mount) (string, bool) {
	var fields []string
	ok := true
	add := func(k, v string) {
		if v == "" || strings.TrimSpace(v) != v {
			ok = false
		}
		fields = append(fields, k+"="+v)
	}
	add("type", string(m.Type))
	if m.Source != "" {
		add("source", m.Source)
	}
	if m.Target != "" {
		add("target", m.Target)
	}
	if m.ReadOnly {
		fields = append(fields, "readonly")
	}
	if m.Consistency != "" {
		add("consistency", string(m.Consistency))
	}
	if b := m.BindOptions; b != nil {
		if b.Propagation != "" {
			add("bind-propagation", string(b.Propagation))
		}
		switch {
		case b.NonRecursive:
			add("bind-recursive", "disabled")
		case b.ReadOnlyNonRecursive:
			add("bind-recursive", "writable")
		case b.ReadOnlyForceRecursive:
			add("bind-recursive", "readonly")
		}
		add("bind-create-src", strconv.FormatBool(b.CreateMountpoint))
	}
	if v := m.VolumeOptions; v != nil {
		add("volume-nocopy", strconv.FormatBool(v.NoCopy))
		if v.Subpath != "" {
			add("volume-subpath", v.Subpath)
		}
		for _, k := range slices.Sorted(maps.Keys(v.Labels)) {
			add("volume-label", k+"="+v.Labels[k])
		}
		if d := v.DriverConfig; d != nil {
			if d.Name != "" {
				add("volume-driver", d.Name)
			}
			for _, k := range slices.Sorted(maps.Keys(d.Options)) {
				add("volume-opt", k+"="+d.Options[k])
			}
		}
	}
	if i := m.ImageOptions; i != nil {
		add("image-subpath", i.Subpath)
	}
	if tm := m.TmpfsOptions; tm != nil {
		add("tmpfs-size", strconv.FormatInt(tm.SizeBytes, 10))
		add("tmpfs-mode", strconv.FormatUint(uint64(tm.Mode), 8)) // raw octal, as parsed
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(fields)
	w.Flush()
	return strings.TrimSuffix(buf.String(), "\n"), ok
}
