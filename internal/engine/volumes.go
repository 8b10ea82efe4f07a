package engine

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
	volumetypes "github.com/moby/moby/api/types/volume"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
	"github.com/skiff-dev/skiff/internal/volume"
)

func (e *Engine) volumeEvent(name string, action events.Action, extra map[string]string) {
	attrs := map[string]string{"driver": "local"}
	for k, v := range extra {
		if v != "" || k == "propagation" {
			attrs[k] = v
		}
	}
	e.events.publish(events.VolumeEventType, action, name, attrs)
}

func (e *Engine) volumeInfo(v *volume.Volume, usage bool) volumetypes.Volume {
	out := volumetypes.Volume{
		Name: v.Name, Driver: v.Driver, Mountpoint: e.vols.Mountpoint(v.Name), Scope: "local",
		Labels: v.Labels, Options: v.Options, CreatedAt: v.CreatedAt.Format(time.RFC3339),
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if usage {
		out.UsageData = &volumetypes.UsageData{RefCount: int64(len(e.volumeUsers(v.Name))), Size: e.vols.Size(v.Name)}
	}
	return out
}

// VolumeCreate makes a volume, or returns the existing one of that name.
func (e *Engine) VolumeCreate(ctx context.Context, req volumetypes.CreateRequest) (*volumetypes.Volume, error) {
	v, created, err := e.vols.Create(req.Name, req.Driver, req.DriverOpts, req.Labels)
	if err != nil {
		return nil, err
	}
	if created {
		e.volumeEvent(v.Name, events.ActionCreate, nil)
	}
	out := e.volumeInfo(v, false)
	return &out, nil
}

// VolumeInspect describes one volume.
func (e *Engine) VolumeInspect(ctx context.Context, name string) (*volumetypes.Volume, error) {
	v, err := e.vols.Get(name)
	if err != nil {
		return nil, err
	}
	out := e.volumeInfo(v, false)
	return &out, nil
}

// VolumeList lists volumes matching f (dangling, driver, label, label!, name).
func (e *Engine) VolumeList(ctx context.Context, f filters.Args) (*volumetypes.ListResponse, error) {
	if err := f.Validate("dangling", "driver", "label", "label!", "name"); err != nil {
		return nil, err
	}
	dangling, danglingSet, err := f.Bool("dangling")
	if err != nil {
		return nil, err
	}
	all, err := e.vols.List()
	if err != nil {
		return nil, err
	}
	resp := &volumetypes.ListResponse{Volumes: []volumetypes.Volume{}, Warnings: []string{}}
	for _, v := range all {
		if !f.Match("name", v.Name) || !f.Match("driver", v.Driver) || !f.MatchLabels("label", v.Labels) ||
			(f.Has("label!") && matchesAnyLabel(f.Get("label!"), v.Labels)) {
			continue
		}
		if danglingSet && (len(e.volumeUsers(v.Name)) == 0) != dangling {
			continue
		}
		resp.Volumes = append(resp.Volumes, e.volumeInfo(v, false))
	}
	return resp, nil
}

// VolumeRemove deletes a volume no container uses. force only hides a
// missing volume, as in Docker.
func (e *Engine) VolumeRemove(ctx context.Context, name string, force bool) error {
	if _, err := e.vols.Get(name); err != nil {
		if force && errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	if users := e.volumeUsers(name); len(users) > 0 {
		return errdefs.Conflict("remove %s: volume is in use - [%s]", name, strings.Join(users, ", "))
	}
	if err := e.vols.Remove(name); err != nil {
		return err
	}
	e.volumeEvent(name, events.ActionDestroy, nil)
	return nil
}

// VolumePrune removes unused volumes: anonymous ones only, unless the
// filter all=true is given (Docker's behaviour since API 1.42).
func (e *Engine) VolumePrune(ctx context.Context, f filters.Args) (*volumetypes.PruneReport, error) {
	if err := f.Validate("label", "label!", "all"); err != nil {
		return nil, err
	}
	all, _, err := f.Bool("all")
	if err != nil {
		return nil, err
	}
	vols, err := e.vols.List()
	if err != nil {
		return nil, err
	}
	rep := &volumetypes.PruneReport{VolumesDeleted: []string{}}
	for _, v := range vols {
		if (!all && !v.Anonymous()) || !f.MatchLabels("label", v.Labels) ||
			(f.Has("label!") && matchesAnyLabel(f.Get("label!"), v.Labels)) || len(e.volumeUsers(v.Name)) > 0 {
			continue
		}
		size := e.vols.Size(v.Name)
		if err := e.vols.Remove(v.Name); err != nil {
			continue
		}
		e.volumeEvent(v.Name, events.ActionDestroy, nil)
		rep.VolumesDeleted = append(rep.VolumesDeleted, v.Name)
		rep.SpaceReclaimed += uint64(size)
	}
	e.events.publish(events.VolumeEventType, events.ActionPrune, "", map[string]string{"reclaimed": strconv.FormatUint(rep.SpaceReclaimed, 10)})
	return rep, nil
}
