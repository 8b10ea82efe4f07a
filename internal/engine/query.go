package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
)

// ContainerList returns containers newest first, as `docker ps` shows them,
// filtered with dockerd's rules (listfilter.go).
func (e *Engine) ContainerList(ctx context.Context, opts ListOptions) ([]container.Summary, error) {
	limit := opts.Limit
	if opts.Latest {
		limit = 1
	}
	pf, err := parsePsFilter(opts.Filters, opts.All || limit > 0)
	if err != nil {
		return nil, err
	}
	all := e.reg.all()
	sort.Slice(all, func(i, j int) bool { return all[i].Created.After(all[j].Created) })
	if err := e.resolvePsFilter(ctx, pf, all); err != nil {
		return nil, err
	}
	out := []container.Summary{}
	before := pf.before
	for _, c := range all {
		// dockerd walks the list newest first: everything down to the
		// "before" container (itself included) is left out, and the walk
		// stops at the "since" one.
		if before != "" {
			if c.ID == before {
				before = ""
			}
			continue
		}
		if c.ID == pf.since {
			break
		}
		c.mu.Lock()
		s, row := e.summary(c)
		snapKey := c.SnapshotKey
		c.mu.Unlock()
		if !pf.match(&row) {
			continue
		}
		if opts.Size { // a walk of the upper dir: only for the rows kept
			if u, err := e.snaps.Usage(ctx, snapKey); err == nil {
				s.SizeRw = u.Size
			}
		}
		out = append(out, s)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

// resolvePsFilter fills in the parts of pf that need the engine's records:
// the containers an id filter names (a unique id prefix, as dockerd's
// GetByPrefix), the before and since containers (id, prefix or name), and
// the images an ancestor filter stands for (each image named and every
// image built on it).
func (e *Engine) resolvePsFilter(ctx context.Context, pf *psFilter, all []*Container) error {
	f := pf.args
	if f.Has("id") {
		pf.ids = map[string]bool{}
		for _, v := range f.Get("id") {
			var found []string
			for _, c := range all {
				if strings.HasPrefix(c.ID, v) {
					found = append(found, c.ID)
				}
			}
			if len(found) == 1 {
				pf.ids[found[0]] = true
			}
		}
	}
	for _, key := range []string{"before", "since"} {
		for _, v := range f.Get(key) {
			c, err := e.reg.get(v)
			if err != nil {
				return err
			}
			if key == "before" {
				pf.before = c.ID
			} else {
				pf.since = c.ID
			}
		}
	}
	if f.Has("ancestor") {
		pf.ancestorSet, pf.ancestors = true, map[string]bool{}
		imgs, err := e.images.List(ctx)
		if err != nil {
			return err
		}
		children := map[string][]string{}
		for _, img := range imgs {
			if img.Parent != "" {
				children[img.Parent] = append(children[img.Parent], img.ID)
			}
		}
		var add func(id string)
		add = func(id string) {
			if pf.ancestors[id] {
				return
			}
			pf.ancestors[id] = true
			for _, ch := range children[id] {
				add(ch)
			}
		}
		for _, ref := range f.Get("ancestor") {
			img, err := e.images.Get(ctx, ref)
			if err != nil {
				// dockerd logs it and matches nothing for this value.
				e.log.Debug("ps ancestor filter: image not found", "image", ref, "err", err)
				continue
			}
			add(img.ID)
		}
	}
	return nil
}

// summary builds c's ps row and what the filters look at; the caller holds
// c.mu.
func (e *Engine) summary(c *Container) (container.Summary, psRow) {
	st := c.State
	nets, portMap := e.networkSettings(c)
	s := container.Summary{
		ID: c.ID, Names: []string{"/" + c.Name}, Image: c.Config.Image, ImageID: c.ImageID,
		Command: commandString(c.Path, c.Args), Created: c.Created.Unix(), Ports: portsOf(portMap),
		Labels: c.Config.Labels, State: st.Status, Status: statusString(st),
		Mounts:          mountPointsOf(c),
		NetworkSettings: &container.NetworkSettingsSummary{Networks: nets},
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
	row := psRow{
		ID: c.ID, Name: c.Name, Running: st.Running || st.Restarting, Started: !st.StartedAt.IsZero(),
		ExitCode: st.ExitCode, State: st.Status, Health: healthFilterValue(st.Health), // health.go
		Labels: c.Config.Labels, ImageID: c.ImageID, Mounts: s.Mounts, Networks: nets, Ports: s.Ports,
	}
	return s, row
}

// portsOf is the ps row's ports as dockerd lists them: one entry per
// binding, and one with only the container port for a port that is exposed
// but not published (while the container runs).
func portsOf(pm network.PortMap) []container.PortSummary {
	out := []container.PortSummary{}
	for p, bindings := range pm {
		if len(bindings) == 0 {
			out = append(out, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
			continue
		}
		for _, b := range bindings {
			hp, err := strconv.ParseUint(b.HostPort, 10, 16)
			if err != nil {
				continue
			}
			out = append(out, container.PortSummary{IP: b.HostIP, PrivatePort: p.Num(), PublicPort: uint16(hp), Type: string(p.Proto())})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.PrivatePort != b.PrivatePort {
			return a.PrivatePort < b.PrivatePort
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.PublicPort < b.PublicPort
	})
	return out
}

// commandString is the ps COMMAND as dockerd builds it: the path, then the
// arguments, each one that holds a space wrapped in single quotes. Nothing
// is escaped: quotes inside an argument are shown as they are.
func commandString(path string, args []string) string {
	if len(args) == 0 {
		return path
	}
	var b strings.Builder
	b.WriteString(path)
	for _, a := range args {
		b.WriteByte(' ')
		if strings.Contains(a, " ") {
			b.WriteString("'" + a + "'")
		} else {
			b.WriteString(a)
		}
	}
	return b.String()
}

// statusString is Docker's human STATUS column.
func statusString(st State) string {
	switch st.Status {
	case container.StateRunning:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt)) + healthSuffix(st.Health)
	case container.StatePaused:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt)) + " (Paused)"
	case container.StateExited:
		if st.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", st.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(time.Since(st.FinishedAt)))
	case container.StateRemoving:
		return "Removal In Progress"
	case container.StateDead:
		return "Dead"
	case container.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, units.HumanDuration(time.Since(st.FinishedAt)))
	}
	return "Created"
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ContainerInspect returns Docker's inspect document.
func (e *Engine) ContainerInspect(ctx context.Context, ref string, size bool) (*container.InspectResponse, error) {
	c, err := e.reg.get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	st := c.State
	cfg := *c.Config
	hc := *c.HostConfig
	dir := e.containerDir(c.ID)
	r := &container.InspectResponse{
		ID: c.ID, Created: timeString(c.Created), Path: c.Path, Args: c.Args,
		State: &container.State{
			Status: st.Status, Running: st.Running, Paused: st.Paused, Restarting: st.Restarting, OOMKilled: st.OOMKilled,
			Dead: st.Dead, Pid: st.Pid, ExitCode: st.ExitCode, Error: st.Error,
			StartedAt: timeString(st.StartedAt), FinishedAt: timeString(st.FinishedAt),
		},
		Image:          c.ImageID,
		ResolvConfPath: filepath.Join(dir, "resolv.conf"), HostnamePath: filepath.Join(dir, "hostname"),
		HostsPath: filepath.Join(dir, "hosts"), LogPath: c.LogPath, Name: "/" + c.Name,
		RestartCount: c.RestartCount, Driver: "overlayfs", Platform: "linux",
		HostConfig: &hc, Config: &cfg, Mounts: mountPointsOf(c),
		NetworkSettings: e.inspectNetwork(c),
	}
	r.State.Health = copyHealth(st.Health) // health.go
	snapKey := c.SnapshotKey
	c.mu.Unlock()
	if size { // a walk of the upper dir: not under c.mu, which onExit needs
		if u, err := e.snaps.Usage(ctx, snapKey); err == nil {
			r.SizeRw = &u.Size
		}
	}
	return r, nil
}

// ContainerPrune removes stopped containers that match f.
func (e *Engine) ContainerPrune(ctx context.Context, f filters.Args) (container.PruneReport, error) {
	rep := container.PruneReport{ContainersDeleted: []string{}}
	if err := f.Validate("until", "label", "label!"); err != nil {
		return rep, err
	}
	var until time.Time
	if v := f.Get("until"); len(v) > 0 {
		t, err := parseTimestamp(v[0])
		if err != nil {
			return rep, err
		}
		until = t
	}
	for _, c := range e.reg.all() {
		c.mu.Lock()
		skip := c.State.Running || c.State.Status == container.StateRemoving || !f.MatchLabels("label", c.Config.Labels) ||
			(!until.IsZero() && !c.Created.Before(until)) || matchesAnyLabel(f.Get("label!"), c.Config.Labels)
		c.mu.Unlock()
		if skip {
			continue
		}
		u, _ := e.snaps.Usage(ctx, c.SnapshotKey)
		if err := e.remove(ctx, c, false); err != nil {
			continue
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, c.ID)
		rep.SpaceReclaimed += uint64(u.Size)
	}
	e.events.publish(events.ContainerEventType, events.ActionPrune, "", map[string]string{"reclaimed": strconv.FormatUint(rep.SpaceReclaimed, 10)})
	return rep, nil
}

func matchesAnyLabel(want []string, labels map[string]string) bool {
	for _, v := range want {
		k, val, hasVal := strings.Cut(v, "=")
		if got, ok := labels[k]; ok && (!hasVal || got == val) {
			return true
		}
	}
	return false
}

// parseTimestamp accepts unix seconds (with fraction), RFC3339 and durations
// ("10m" means 10 minutes ago), as Docker's --since/--until do.
func parseTimestamp(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errdefs.Invalid("invalid timestamp %q", s)
}

// ContainerRename changes a container's name.
func (e *Engine) ContainerRename(ctx context.Context, ref, newName string) error {
	c, err := e.reg.get(ref)
	if err != nil {
		return err
	}
	newName = strings.TrimPrefix(newName, "/")
	if !validName.MatchString(newName) {
		return errdefs.Invalid("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", newName)
	}
	c.mu.Lock()
	old := c.Name
	c.mu.Unlock()
	if old == newName {
		return errdefs.Invalid("Renaming a container with the same name as its current name")
	}
	if err := e.reg.reserve(newName, c.ID); err != nil {
		return err
	}
	c.mu.Lock()
	c.Name = newName
	err = e.persist(c)
	c.mu.Unlock()
	if err != nil {
		e.reg.release(newName)
		return err
	}
	e.reg.release(old)
	e.containerEvent(c, events.ActionRename, map[string]string{"oldName": "/" + old})
	return nil
}
