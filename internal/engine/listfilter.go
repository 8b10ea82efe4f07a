package engine

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
)

// psFilterKeys are the filters GET /containers/json accepts, dockerd's list.
var psFilterKeys = []string{"ancestor", "before", "exited", "id", "isolation", "label", "name", "status", "health", "since", "volume", "network", "is-task", "publish", "expose"}

// psFilter is a parsed `docker ps` filter set. parsePsFilter checks the
// values; the engine then fills in what needs its stores (the id, before,
// since and ancestor sets) and match decides each row, with dockerd's rules
// (daemon/list.go).
type psFilter struct {
	args filters.Args
	// all lists stopped containers too: --all, a limit, or a status filter.
	all bool

	names           []*regexp.Regexp // the name values that compile
	exited          []int
	taskSet, isTask bool
	publish, expose map[string]bool // "8080/tcp"

	// Set by the engine.
	ids         map[string]bool // nil: no id filter
	ancestorSet bool
	ancestors   map[string]bool // image ids: the images named and their descendants
	before      string          // container ids
	since       string
}

// parsePsFilter validates f as dockerd does, with its messages.
func parsePsFilter(f filters.Args, all bool) (*psFilter, error) {
	if err := f.Validate(psFilterKeys...); err != nil {
		return nil, err
	}
	pf := &psFilter{args: f, all: all, publish: map[string]bool{}, expose: map[string]bool{}}
	for _, v := range f.Get("name") {
		// A value that is no regular expression can still match exactly.
		if re, err := regexp.Compile(v); err == nil {
			pf.names = append(pf.names, re)
		}
	}
	for _, v := range f.Get("exited") {
		code, err := strconv.Atoi(v)
		if err != nil {
			return nil, errdefs.Invalid("invalid filter 'exited=%s': %v", v, err)
		}
		pf.exited = append(pf.exited, code)
	}
	for _, v := range f.Get("status") {
		switch container.ContainerState(v) {
		case container.StateCreated, container.StateRunning, container.StatePaused, container.StateRestarting,
			container.StateRemoving, container.StateExited, container.StateDead:
		default:
			return nil, errdefs.Invalid("invalid filter 'status=%s': invalid value for state (%s): must be one of created, running, paused, restarting, removing, exited, dead", v, v)
		}
		pf.all = true
	}
	if f.Has("is-task") {
		pf.taskSet = true
		vs := f.Get("is-task")
		no, yes := false, false
		for _, v := range vs {
			no = no || v == "0" || v == "false"
			yes = yes || v == "1" || v == "true"
		}
		if no == yes { // none or both
			return nil, errdefs.Invalid("invalid filter 'is-task=%s'", fmt.Sprint(vs))
		}
		pf.isTask = yes
	}
	for _, v := range f.Get("health") {
		switch container.HealthStatus(v) {
		case container.NoHealthcheck, container.Starting, container.Healthy, container.Unhealthy:
		default:
			return nil, errdefs.Invalid("invalid filter 'health=%s': invalid value for health (%s): must be one of none, starting, healthy, unhealthy", v, v)
		}
	}
	for _, key := range []string{"publish", "expose"} {
		set := pf.publish
		if key == "expose" {
			set = pf.expose
		}
		for _, v := range f.Get(key) {
			if strings.Contains(v, ":") {
				return nil, errdefs.Invalid("filter for '%s' should not contain ':': %s", key, v)
			}
			// PORT[/PROTO] or START-END[/PROTO]; tcp when no protocol.
			// dockerd answers these two errors with a 500; they are the
			// client's, so Invalid (400) here, with the same words.
			pr, err := network.ParsePortRange(v)
			if err != nil {
				return nil, errdefs.Invalid("error while looking up for %s %s: %v", key, v, err)
			}
			for p := range pr.All() {
				set[p.String()] = true
			}
		}
	}
	return pf, nil
}

// psRow is what the filters look at in one container.
type psRow struct {
	ID, Name string // Name without the leading "/"
	Running  bool   // running, paused or restarting: listed without --all
	Started  bool   // has run at least once (exited filters need it)
	ExitCode int
	State    container.ContainerState
	Health   string // "none" without a health check
	Labels   map[string]string
	ImageID  string
	Managed  bool // a swarm task; never, in skiff
	Mounts   []container.MountPoint
	Networks map[string]*network.EndpointSettings // by network name
	Ports    []container.PortSummary
}

// match reports whether r passes every filter (before and since are
// applied by the caller, which walks the list in order).
func (pf *psFilter) match(r *psRow) bool {
	f := pf.args
	if !r.Running && !pf.all {
		return false
	}
	if f.Has("name") && !pf.matchName("/"+r.Name) && !pf.matchName(r.Name) {
		return false
	}
	if pf.ids != nil && !pf.ids[r.ID] {
		return false
	}
	if pf.taskSet && pf.isTask != r.Managed {
		return false
	}
	if !matchKVList(f.Get("label"), r.Labels) {
		return false
	}
	// isolation is a Windows filter: accepted, and every row passes.
	if len(pf.exited) > 0 {
		ok := false
		for _, code := range pf.exited {
			if code == r.ExitCode && !r.Running && r.Started {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if f.Has("status") && !f.Match("status", string(r.State)) {
		return false
	}
	if f.Has("health") && !f.Match("health", r.Health) {
		return false
	}
	if f.Has("volume") && !matchVolume(f.Get("volume"), r.Mounts) {
		return false
	}
	if pf.ancestorSet && !pf.ancestors[r.ImageID] {
		return false
	}
	if f.Has("network") && !matchNetwork(f.Get("network"), r.Networks) {
		return false
	}
	if len(pf.publish) > 0 || len(pf.expose) > 0 {
		ok := false
		for _, p := range r.Ports {
			if pf.publish[fmt.Sprintf("%d/%s", p.PublicPort, p.Type)] || pf.expose[fmt.Sprintf("%d/%s", p.PrivatePort, p.Type)] {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// matchName is dockerd's filter Match on names: a value equal to s, or a
// regular expression found in s (so "web" matches "/myweb1", "^/web$" only
// "web").
func (pf *psFilter) matchName(s string) bool {
	if pf.args.Match("name", s) {
		return true
	}
	for _, re := range pf.names {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// matchKVList: every KEY or KEY=VALUE must be among labels.
func matchKVList(want []string, labels map[string]string) bool {
	for _, v := range want {
		k, val, hasVal := strings.Cut(v, "=")
		got, ok := labels[k]
		if !ok || (hasVal && got != val) {
			return false
		}
	}
	return true
}

// matchVolume: a value names a mount's destination, or its volume name
// (a bind's source path).
func matchVolume(values []string, mounts []container.MountPoint) bool {
	for _, v := range values {
		for _, m := range mounts {
			name := m.Name
			if name == "" {
				name = m.Source
			}
			if v == m.Destination || v == name {
				return true
			}
		}
	}
	return false
}

// matchNetwork: a value is a network's name, or a prefix of its id.
func matchNetwork(values []string, nets map[string]*network.EndpointSettings) bool {
	for _, v := range values {
		if _, ok := nets[v]; ok {
			return true
		}
		for _, es := range nets {
			if es != nil && strings.HasPrefix(es.NetworkID, v) {
				return true
			}
		}
	}
	return false
}
