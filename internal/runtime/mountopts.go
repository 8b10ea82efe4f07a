package runtime

import (
	"strings"

	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// mountOpts is a spec mount's options split the way mount(2) wants them.
type mountOpts struct {
	flags       uintptr // MS_* flags for the mount itself
	propagation uintptr // MS_SHARED, MS_SLAVE... applied by a second call
	recursiveRO bool    // "rro": read-only all the way down (mount_setattr)
	data        []string
}

var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"bind":          {false, unix.MS_BIND},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"silent":        {false, unix.MS_SILENT},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"sync":          {false, unix.MS_SYNCHRONOUS},
}

var propagationOpts = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

func parseMountOpts(opts []string) (mountOpts, error) {
	var m mountOpts
	for _, o := range opts {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				m.flags &^= f.flag
			} else {
				m.flags |= f.flag
			}
			continue
		}
		if p, ok := propagationOpts[o]; ok {
			m.propagation = p
			continue
		}
		switch o {
		case "rro":
			m.recursiveRO = true
			m.flags |= unix.MS_RDONLY
		case "tmpcopyup", "rrw", "":
			// tmpcopyup (copy the image's files into a tmpfs) is not
			// supported; rrw is the default.
		case "idmap", "ridmap":
			return m, errdefs.NotImplemented("mount option %q is not supported", o)
		default:
			m.data = append(m.data, o)
		}
	}
	return m, nil
}

// propagationFlags parses the spec's rootfsPropagation; "" means rslave,
// which keeps host mount events flowing in and none flowing out.
func propagationFlags(s string) (uintptr, error) {
	if s == "" {
		return unix.MS_SLAVE | unix.MS_REC, nil
	}
	p, ok := propagationOpts[s]
	if !ok {
		return 0, errdefs.Invalid("invalid rootfs propagation %q", s)
	}
	return p, nil
}

// statfsToMountFlags maps statfs's ST_* bits (which differ from MS_* for
// relatime) to the per-mount MS_* flags a bind remount must keep.
func statfsToMountFlags(st uint64) uintptr {
	var f uintptr
	for _, m := range []struct {
		st uint64
		ms uintptr
	}{
		{unix.ST_RDONLY, unix.MS_RDONLY},
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if st&m.st != 0 {
			f |= m.ms
		}
	}
	return f
}

func joinData(d []string) string { return strings.Join(d, ",") }
