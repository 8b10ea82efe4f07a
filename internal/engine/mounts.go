package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/archive"
	"github.com/skiff-dev/skiff/internal/containerfs"
	"github.com/skiff-dev/skiff/internal/errdefs"
	skmount "github.com/skiff-dev/skiff/internal/mount"
)

// MountPoint is one volume, bind or tmpfs mount of a container, resolved at
// create time and stored with the container.
type MountPoint struct {
	Type        mount.Type
	Name        string // volume name
	Source      string // host path: bind source, volume data dir
	Destination string
	Driver      string
	Mode        string // as the user wrote it ("ro,Z"), shown by inspect
	RW          bool
	Propagation mount.Propagation
	// Anonymous volumes were made for this container and go with it
	// (rm -v, run --rm).
	Anonymous bool `json:",omitempty"`
	// Tmpfs mount options (size=, mode=) for tmpfs mounts.
	TmpfsOptions []string `json:",omitempty"`
	NonRecursive bool     `json:",omitempty"`

	copyUp bool // fill the (new, empty) volume with the image's content
}

// procMountsAllowed are the only destinations inside /proc runc accepts.
var procMountsAllowed = map[string]bool{
	"/proc/cpuinfo": true, "/proc/diskstats": true, "/proc/meminfo": true, "/proc/stat": true,
	"/proc/swaps": true, "/proc/uptime": true, "/proc/loadavg": true, "/proc/slabinfo": true,
	"/proc/net/dev": true, "/proc/sys/kernel/ns_last_pid": true,
}

func checkDestination(dst, typ, spec string) error {
	if dst == "" {
		return errdefs.Invalid("invalid mount config for type %q: field Target must not be empty", typ)
	}
	if !path.IsAbs(dst) {
		return errdefs.Invalid("invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", typ, dst)
	}
	c := path.Clean(dst)
	if c == "/" {
		return errdefs.Invalid("invalid specification: destination can't be '/'%s", spec)
	}
	if (c == "/proc" || strings.HasPrefix(c, "/proc/")) && !procMountsAllowed[c] {
		return errdefs.Invalid("%q cannot be mounted because it is inside /proc", c)
	}
	return nil
}

// mountSet collects mounts by destination; later sources override earlier
// ones (image VOLUME < --volumes-from < -v/--mount), and -v/--mount may not
// name one destination twice.
type mountSet struct {
	byDst    map[string]*MountPoint
	explicit map[string]bool
}

func (s *mountSet) add(m *MountPoint, explicit bool) error {
	m.Destination = path.Clean(m.Destination)
	if explicit {
		if s.explicit[m.Destination] {
			return errdefs.Invalid("Duplicate mount point: %s", m.Destination)
		}
		s.explicit[m.Destination] = true
	}
	s.byDst[m.Destination] = m
	return nil
}

// setupMounts resolves c's -v, --mount, --volumes-from and image volumes,
// creating the volumes they name, and copies the image's content into new
// empty volumes. On error the anonymous volumes it made are removed.
func (e *Engine) setupMounts(ctx context.Context, c *Container) (err error) {
	cfg, hc := c.Config, c.HostConfig
	s := &mountSet{byDst: map[string]*MountPoint{}, explicit: map[string]bool{}}
	for dst := range cfg.Volumes {
		if err := checkDestination(dst, "volume", ""); err != nil {
			return err
		}
		// --volume-driver names the driver of the volumes of -v and of
		// the image, as in Docker (--mount carries its own).
		s.add(&MountPoint{Type: mount.TypeVolume, Destination: dst, RW: true, Anonymous: true, copyUp: true, Driver: hc.VolumeDriver}, false)
	}
	for _, vf := range hc.VolumesFrom {
		if err := e.addVolumesFrom(s, vf); err != nil {
			return err
		}
	}
	for _, b := range hc.Binds {
		m, err := parseBind(b)
		if err != nil {
			return err
		}
		if m.Type == mount.TypeVolume && m.Driver == "" {
			m.Driver = hc.VolumeDriver
		}
		if err := s.add(m, true); err != nil {
			return err
		}
	}
	for _, mt := range hc.Mounts {
		m, err := parseMount(mt)
		if err != nil {
			return err
		}
		if err := s.add(m, true); err != nil {
			return err
		}
	}
	for dst := range hc.Tmpfs {
		if err := checkDestination(dst, "tmpfs", ""); err != nil {
			return err
		}
	}
	var made []string
	defer func() {
		if err != nil {
			for _, n := range made {
				e.vols.Remove(n)
			}
		}
	}()
	var out []*MountPoint
	for _, m := range s.byDst {
		if m.Type == mount.TypeVolume && m.Source == "" {
			var opts, labels map[string]string
			if m.Name != "" {
				opts, labels = e.volumeOptsFor(hc, m.Name)
			}
			v, created, err := e.vols.Create(m.Name, m.Driver, opts, labels)
			if errdefs.IsNotFound(err) {
				// An unknown driver: not a 404 here, which would make a
				// client think the image is missing and pull it.
				return errdefs.Invalid("%s", err.Error())
			}
			if err != nil {
				return err
			}
			if created {
				if m.Name == "" {
					made = append(made, v.Name)
				}
				e.volumeEvent(v.Name, events.ActionCreate, nil)
			}
			m.Name, m.Driver, m.Source = v.Name, v.Driver, e.vols.Mountpoint(v.Name)
			m.Anonymous = v.Anonymous() && m.Anonymous
			m.copyUp = m.copyUp && v.Options["type"] == "" && v.Options["device"] == "" && e.vols.IsEmpty(v.Name)
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Destination < out[j].Destination })
	if err := e.copyUp(ctx, c, out); err != nil {
		return err
	}
	c.MountPoints = out
	return nil
}

// addVolumesFrom adds the mounts of the container --volumes-from names.
func (e *Engine) addVolumesFrom(s *mountSet, spec string) error {
	name, mode, _ := strings.Cut(spec, ":")
	switch mode {
	case "", "ro", "rw", "z", "Z":
	default:
		return errdefs.Invalid("invalid mode for volumes-from: %s", mode)
	}
	src, err := e.reg.get(name)
	if err != nil {
		return err
	}
	src.mu.Lock()
	mps := src.MountPoints
	src.mu.Unlock()
	for _, m := range mps {
		if m.Type == mount.TypeTmpfs {
			continue
		}
		cp := *m
		cp.Anonymous = false
		switch mode {
		case "ro":
			cp.RW = false
		case "rw":
			cp.RW = true
		}
		s.add(&cp, false)
	}
	return nil
}

// parseBind reads a -v / HostConfig.Binds entry: SRC:DST[:MODE] or DST.
func parseBind(spec string) (*MountPoint, error) {
	bad := func(why string) error {
		return errdefs.Invalid("invalid volume specification: '%s'%s", spec, why)
	}
	parts := strings.Split(spec, ":")
	m := &MountPoint{RW: true}
	switch len(parts) {
	case 1:
		m.Destination = parts[0]
	case 2:
		m.Source, m.Destination = parts[0], parts[1]
	case 3:
		m.Source, m.Destination, m.Mode = parts[0], parts[1], parts[2]
	default:
		return nil, bad("")
	}
	if m.Destination == "" || (len(parts) > 1 && m.Source == "") {
		return nil, bad("")
	}
	typ := "volume"
	if path.IsAbs(m.Source) {
		typ = "bind"
	}
	if err := checkDestination(m.Destination, typ, ""); err != nil {
		return nil, bad(": " + err.Error())
	}
	if m.Mode != "" {
		for _, o := range strings.Split(m.Mode, ",") {
			switch o {
			case "ro":
				m.RW = false
			case "rw", "z", "Z", "nocopy":
			case "private", "rprivate", "shared", "rshared", "slave", "rslave":
				m.Propagation = mount.Propagation(o)
			default:
				return nil, errdefs.Invalid("invalid mode: %s", m.Mode)
			}
		}
	}
	nocopy := strings.Contains(","+m.Mode+",", ",nocopy,")
	switch {
	case m.Source == "":
		m.Type, m.Anonymous, m.copyUp = mount.TypeVolume, true, true
	case path.IsAbs(m.Source):
		m.Type = mount.TypeBind
		m.Source = path.Clean(m.Source)
		if m.Propagation == "" {
			m.Propagation = mount.PropagationRPrivate
		}
		// Docker creates a missing bind source for -v (not for --mount).
		if _, err := os.Stat(m.Source); os.IsNotExist(err) {
			if err := os.MkdirAll(m.Source, 0o755); err != nil {
				return nil, errdefs.Invalid("create bind source %s: %v", m.Source, err)
			}
		}
	default:
		if m.Propagation != "" {
			return nil, errdefs.Invalid("invalid mode: %s", m.Mode)
		}
		m.Type, m.Name, m.copyUp = mount.TypeVolume, m.Source, !nocopy
		m.Source = ""
	}
	return m, nil
}

// parseMount reads a --mount / HostConfig.Mounts entry.
func parseMount(mt mount.Mount) (*MountPoint, error) {
	typ := string(mt.Type)
	bad := func(format string, args ...any) error {
		return errdefs.Invalid("invalid mount config for type %q: %s", typ, fmt.Sprintf(format, args...))
	}
	if err := checkDestination(mt.Target, typ, ""); err != nil {
		return nil, err
	}
	m := &MountPoint{Type: mt.Type, Destination: mt.Target, RW: !mt.ReadOnly}
	switch mt.Type {
	case mount.TypeBind:
		if mt.Source == "" {
			return nil, bad("field Source must not be empty")
		}
		if !path.IsAbs(mt.Source) {
			return nil, bad("invalid mount path: '%s' mount path must be absolute", mt.Source)
		}
		if mt.VolumeOptions != nil {
			return nil, bad("field VolumeOptions must not be specified")
		}
		if mt.TmpfsOptions != nil {
			return nil, bad("field TmpfsOptions must not be specified")
		}
		m.Source = path.Clean(mt.Source)
		m.Propagation = mount.PropagationRPrivate
		if bo := mt.BindOptions; bo != nil {
			if bo.Propagation != "" {
				m.Propagation = bo.Propagation
			}
			m.NonRecursive = bo.NonRecursive
		}
		if _, err := os.Stat(m.Source); err != nil {
			if mt.BindOptions == nil || !mt.BindOptions.CreateMountpoint {
				return nil, bad("bind source path does not exist: %s", m.Source)
			}
			if err := os.MkdirAll(m.Source, 0o755); err != nil {
				return nil, bad("create bind source: %v", err)
			}
		}
	case mount.TypeVolume:
		if mt.BindOptions != nil {
			return nil, bad("field BindOptions must not be specified")
		}
		if mt.TmpfsOptions != nil {
			return nil, bad("field TmpfsOptions must not be specified")
		}
		m.Name, m.Anonymous, m.copyUp = mt.Source, mt.Source == "", true
		if vo := mt.VolumeOptions; vo != nil {
			m.copyUp = !vo.NoCopy
			if vo.Subpath != "" {
				return nil, errdefs.NotImplemented("volume subpath is not supported")
			}
			if vo.DriverConfig != nil && vo.DriverConfig.Name != "" && vo.DriverConfig.Name != "local" {
				// Invalid, not NotFound: see setupMounts.
				return nil, errdefs.Invalid("error looking up volume plugin %s: plugin %q not found", vo.DriverConfig.Name, vo.DriverConfig.Name)
			}
		}
	case mount.TypeTmpfs:
		if mt.Source != "" {
			return nil, bad("field Source must not be specified")
		}
		if mt.BindOptions != nil {
			return nil, bad("field BindOptions must not be specified")
		}
		if mt.VolumeOptions != nil {
			return nil, bad("field VolumeOptions must not be specified")
		}
		if to := mt.TmpfsOptions; to != nil {
			if to.SizeBytes < 0 {
				return nil, bad("invalid tmpfs size %d", to.SizeBytes)
			}
			if to.SizeBytes > 0 {
				m.TmpfsOptions = append(m.TmpfsOptions, "size="+strconv.FormatInt(to.SizeBytes, 10))
			}
			if to.Mode != 0 {
				m.TmpfsOptions = append(m.TmpfsOptions, "mode="+strconv.FormatUint(uint64(to.Mode), 8)) // raw octal, as Docker prints it
			}
			for _, kv := range to.Options {
				m.TmpfsOptions = append(m.TmpfsOptions, strings.Join(kv, "="))
			}
		}
	default:
		return nil, bad("mount type unknown")
	}
	return m, nil
}

// volumeOptsFor finds the driver options and labels --mount gives volume
// name (volume-opt=..., volume-label=...), used when it is created.
func (e *Engine) volumeOptsFor(hc *container.HostConfig, name string) (map[string]string, map[string]string) {
	for _, mt := range hc.Mounts {
		if mt.Type == mount.TypeVolume && mt.Source == name && mt.VolumeOptions != nil {
			var opts map[string]string
			if mt.VolumeOptions.DriverConfig != nil {
				opts = mt.VolumeOptions.DriverConfig.Options
			}
			return opts, mt.VolumeOptions.Labels
		}
	}
	return nil, nil
}

// copyUp fills new empty volumes with what the image has at their
// destination, keeping ownership and modes (Docker's copy-up). The
// container's overlay is mounted detached, never on the host.
func (e *Engine) copyUp(ctx context.Context, c *Container, mps []*MountPoint) error {
	need := false
	for _, m := range mps {
		need = need || m.copyUp
	}
	if !need {
		return nil
	}
	mounts, err := e.snaps.Mounts(ctx, c.SnapshotKey)
	if err != nil {
		return fmt.Errorf("root filesystem of %s: %w", c.ID, err)
	}
	root, err := skmount.Detached(mounts)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	for _, m := range mps {
		if !m.copyUp {
			continue
		}
		m.copyUp = false
		src, err := containerfs.OpenInRoot(root, m.Destination, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			continue // nothing there (or not a directory): nothing to copy
		}
		err = copyDirInto(ctx, src, m.Source)
		unix.Close(src)
		if err != nil {
			return fmt.Errorf("copy image content into volume %s: %w", m.Name, err)
		}
	}
	return nil
}

// copyDirInto copies the tree under the directory src into dst, with the
// directory's own owner and mode.
func copyDirInto(ctx context.Context, src int, dst string) error {
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.TarDirContents(ctx, src, pw)) }()
	_, err := archive.Apply(ctx, dst, pr, archive.WithWhiteouts(archive.WhiteoutLiteral))
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return err
	}
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	return os.Chmod(dst, os.FileMode(st.Mode&0o777)|modeExtra(st.Mode))
}

func modeExtra(m uint32) os.FileMode {
	var f os.FileMode
	if m&unix.S_ISVTX != 0 {
		f |= os.ModeSticky
	}
	if m&unix.S_ISGID != 0 {
		f |= os.ModeSetgid
	}
	return f
}

// specMounts turns c's mount points into runtime mounts, parents first, and
// publishes the volume mount events.
func (e *Engine) specMounts(c *Container) []specs.Mount {
	c.mu.Lock()
	mps := append([]*MountPoint(nil), c.MountPoints...)
	c.mu.Unlock()
	sort.SliceStable(mps, func(i, j int) bool {
		return strings.Count(mps[i].Destination, "/") < strings.Count(mps[j].Destination, "/")
	})
	var out []specs.Mount
	for _, m := range mps {
		var sm specs.Mount
		switch m.Type {
		case mount.TypeTmpfs:
			sm = specs.Mount{Destination: m.Destination, Type: "tmpfs", Source: "tmpfs",
				Options: append([]string{"nosuid", "nodev", "noexec"}, m.TmpfsOptions...)}
		case mount.TypeVolume:
			if v, err := e.vols.Get(m.Name); err == nil {
				typ, src, opts := e.vols.MountSpec(v)
				sm = specs.Mount{Destination: m.Destination, Type: typ, Source: src, Options: opts}
				if typ == "bind" {
					sm.Options = append(sm.Options, "rprivate")
				}
			} else {
				sm = specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: []string{"rbind", "rprivate"}}
			}
			e.volumeEvent(m.Name, events.ActionMount, map[string]string{
				"container": c.ID, "destination": m.Destination, "driver": m.Driver,
				"propagation": string(m.Propagation), "read/write": strconv.FormatBool(m.RW),
			})
		default:
			bind := "rbind"
			if m.NonRecursive {
				bind = "bind"
			}
			prop := string(m.Propagation)
			if prop == "" {
				prop = "rprivate"
			}
			sm = specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: []string{bind, prop}}
		}
		if !m.RW {
			sm.Options = append(sm.Options, "ro")
		}
		out = append(out, sm)
	}
	return out
}

// mountPointsOf is inspect's Mounts; the caller holds c.mu.
func mountPointsOf(c *Container) []container.MountPoint {
	out := []container.MountPoint{}
	for _, m := range c.MountPoints {
		out = append(out, container.MountPoint{
			Type: m.Type, Name: m.Name, Source: m.Source, Destination: m.Destination,
			Driver: m.Driver, Mode: m.Mode, RW: m.RW, Propagation: m.Propagation,
		})
	}
	return out
}

// removeAnonVolumes removes the anonymous volumes of a removed container
// that no other container uses (rm -v, run --rm).
func (e *Engine) removeAnonVolumes(c *Container) {
	c.mu.Lock()
	mps := c.MountPoints
	c.mu.Unlock()
	for _, m := range mps {
		if m.Type != mount.TypeVolume || !m.Anonymous {
			continue
		}
		if len(e.volumeUsers(m.Name)) > 0 {
			continue
		}
		if err := e.vols.Remove(m.Name); err != nil {
			if !errdefs.IsNotFound(err) {
				e.log.Warn("remove anonymous volume", "volume", m.Name, "err", err)
			}
			continue
		}
		e.volumeEvent(m.Name, events.ActionDestroy, nil)
	}
}

// volumeUsers lists the ids of containers that mount volume name.
func (e *Engine) volumeUsers(name string) []string {
	var ids []string
	for _, c := range e.reg.all() {
		c.mu.Lock()
		for _, m := range c.MountPoints {
			if m.Type == mount.TypeVolume && m.Name == name {
				ids = append(ids, c.ID)
				break
			}
		}
		c.mu.Unlock()
	}
	sort.Strings(ids)
	return ids
}

// hostPathFor maps a path inside a stopped container onto the volume or
// bind mounted there: the host directory and the path below it.
func hostPathFor(mps []*MountPoint, p string) (m *MountPoint, rel string) {
	p = path.Clean("/" + p)
	for _, mp := range mps {
		if mp.Type == mount.TypeTmpfs || mp.Source == "" {
			continue
		}
		d := mp.Destination
		if p == d || strings.HasPrefix(p, d+"/") {
			if m == nil || len(d) > len(m.Destination) {
				m, rel = mp, "/"+strings.TrimPrefix(strings.TrimPrefix(p, d), "/")
			}
		}
	}
	return m, rel
}
