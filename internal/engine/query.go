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

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
)

var listFilters = []string{"id", "name", "label", "status", "exited", "ancestor", "before", "since", "health", "network", "volume", "is-task", "publish", "expose"}

// ContainerList returns containers newest first, as `docker ps` shows them.
func (e *Engine) ContainerList(ctx context.Context, opts ListOptions) ([]container.Summary, error) {
	f := opts.Filters
	if err := f.Validate(listFilters...); err != nil {
		return nil, err
	}
	for _, s := range f.Get("status") {
		switch s {
		case "created", "restarting", "running", "removing", "paused", "exited", "dead":
		default:
			return nil, errdefs.Invalid("invalid filter 'status=%s'", s)
		}
	}
	all := e.reg.all()
	sort.Slice(all, func(i, j int) bool { return all[i].Created.After(all[j].Created) })
	var before, since time.Time
	if v := f.Get("before"); len(v) > 0 {
		c, err := e.reg.get(v[0])
		if err != nil {
			return nil, err
		}
		before = c.Created
	}
	if v := f.Get("since"); len(v) > 0 {
		c, err := e.reg.get(v[0])
		if err != nil {
			return nil, err
		}
		since = c.Created
	}
	limit := opts.Limit
	if opts.Latest {
		limit = 1
	}
	out := []container.Summary{}
	for _, c := range all {
		c.mu.Lock()
		s, ok := e.summary(c, opts, f, before, since)
		c.mu.Unlock()
		if !ok {
			continue
		}
		out = append(out, s)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

// summary builds c's row and applies the filters; the caller holds c.mu.
func (e *Engine) summary(c *Container, opts ListOptions, f filters.Args, before, since time.Time) (container.Summary, bool) {
	st := c.State
	all := opts.All || opts.Limit > 0 || opts.Latest || f.Has("status") || f.Has("exited")
	if !all && !st.Running && !st.Restarting { // docker ps lists restarting ones
		return container.Summary{}, false
	}
	if !f.MatchPrefix("id", c.ID) || !matchName(f, c.Name) || !f.Match("status", string(st.Status)) || !f.MatchLabels("label", c.Config.Labels) {
		return container.Summary{}, false
	}
	if f.Has("exited") && (st.Running || st.Status == container.StateCreated || !f.Match("exited", strconv.Itoa(st.ExitCode))) {
		return container.Summary{}, false
	}
	if f.Has("health") && !f.Match("health", healthFilterValue(st.Health)) { // health.go
		return container.Summary{}, false
	}
	if f.Has("ancestor") && !e.matchAncestor(f.Get("ancestor"), c) {
		return container.Summary{}, false
	}
	if !before.IsZero() && !c.Created.Before(before) {
		return container.Summary{}, false
	}
	if !since.IsZero() && !c.Created.After(since) {
		return container.Summary{}, false
	}
	cmd := strings.Join(append([]string{c.Path}, c.Args...), " ")
	s := container.Summary{
		ID: c.ID, Names: []string{"/" + c.Name}, Image: c.Config.Image, ImageID: c.ImageID,
		Command: cmd, Created: c.Created.Unix(), Ports: e.portSummary(c),
		Labels: c.Config.Labels, State: st.Status, Status: statusString(st),
		Mounts:          mountPointsOf(c),
		NetworkSettings: &container.NetworkSettingsSummary{Networks: e.netSummary(c)},
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
	if opts.Size {
		if u, err := e.snaps.Usage(context.Background(), c.SnapshotKey); err == nil {
			s.SizeRw = u.Size
		}
	}
	return s, true
}

func matchName(f filters.Args, name string) bool {
	if !f.Has("name") {
		return true
	}
	for _, v := range f.Get("name") {
		v = strings.TrimPrefix(v, "/")
		if strings.Contains(name, v) || f.MatchGlob("name", name) {
			return true
		}
	}
	return false
}

func (e *Engine) matchAncestor(refs []string, c *Container) bool {
	for _, r := range refs {
		if img, err := e.images.Get(context.Background(), r); err == nil && img.ID == c.ImageID {
			return true
		}
		if r == c.Config.Image {
			return true
		}
	}
	return false
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
	defer c.mu.Unlock()
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
	if size {
		if u, err := e.snaps.Usage(ctx, c.SnapshotKey); err == nil {
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
		skip := c.State.Running || c.removing || !f.MatchLabels("label", c.Config.Labels) ||
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
