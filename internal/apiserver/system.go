package apiserver

import (
	"encoding/json"
	"maps"
	"net/http"
	goruntime "runtime"
	"slices"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
)

var (
	hdrNoCache    = []string{"no-cache, no-store, must-revalidate"}
	hdrPragma     = []string{"no-cache"}
	hdrBuilder    = []string{"1"} // the classic builder; "2" would send the CLI to BuildKit
	hdrSwarm      = []string{"inactive"}
	hdrTextPlain  = []string{"text/plain; charset=utf-8"}
	hdrZeroLength = []string{"0"}
	bodyOK        = []byte("OK")
)

// ping answers GET and HEAD /_ping: the client reads Api-Version (version
// negotiation), Ostype, Docker-Experimental, Builder-Version and Swarm.
func (s *Server) ping(w *respWriter, r *http.Request) error {
	h := w.Header()
	h["Cache-Control"] = hdrNoCache
	h["Pragma"] = hdrPragma
	h["Builder-Version"] = hdrBuilder
	h["Swarm"] = hdrSwarm
	h["Content-Type"] = hdrTextPlain
	if r.Method == http.MethodHead {
		h["Content-Length"] = hdrZeroLength
		w.WriteHeader(http.StatusOK)
		return nil
	}
	_, err := w.Write(bodyOK)
	return err
}

func (s *Server) version(w *respWriter, r *http.Request) error {
	v := s.b.Version(r.Context())
	if v.APIVersion == "" {
		v.APIVersion = APIVersion
	}
	if v.MinAPIVersion == "" {
		v.MinAPIVersion = MinAPIVersion
	}
	if v.Os == "" {
		v.Os = "linux"
	}
	if v.Arch == "" {
		v.Arch = goruntime.GOARCH
	}
	if v.GoVersion == "" {
		v.GoVersion = goruntime.Version()
	}
	if v.Platform.Name == "" {
		v.Platform.Name = "skiff"
	}
	// The docker CLI prints the server from the Engine component's details.
	// The slice may be the backend's own: change a copy.
	v.Components = slices.Clone(v.Components)
	engineAt := -1
	for i, c := range v.Components {
		if c.Name == "Engine" {
			engineAt = i
		}
	}
	if engineAt < 0 {
		v.Components = append(v.Components, system.ComponentVersion{Name: "Engine", Version: v.Version})
		engineAt = len(v.Components) - 1
	}
	c := &v.Components[engineAt]
	d := make(map[string]string, 9)
	for k, val := range map[string]string{
		"ApiVersion": v.APIVersion, "MinAPIVersion": v.MinAPIVersion, "Os": v.Os, "Arch": v.Arch,
		"GoVersion": v.GoVersion, "GitCommit": v.GitCommit, "BuildTime": v.BuildTime,
		"KernelVersion": v.KernelVersion, "Experimental": strconv.FormatBool(v.Experimental),
	} {
		d[k] = val
	}
	maps.Copy(d, c.Details) // what the engine says wins
	c.Details = d
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) info(w *respWriter, r *http.Request) error {
	info, err := s.b.Info(r.Context())
	if err != nil {
		return err
	}
	// skiff has no swarm mode. dockerd reports an inactive node as
	// {"NodeID":"","NodeAddr":"","LocalNodeState":"inactive",...}; compose
	// takes an empty state for an active swarm, as the ping's Swarm header
	// says the same.
	if info.Swarm.LocalNodeState == "" {
		info.Swarm = swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}
	}
	return writeJSON(w, http.StatusOK, info)
}

// legacyEvent adds the fields API versions before 1.52 carry (status, id,
// from), which older clients still read.
type legacyEvent struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
	*events.Message
}

// events streams events as JSON lines: the stored ones from since, then live
// ones until until (or until the client leaves). An until in the past ends
// the stream after the stored events.
func (s *Server) events(w *respWriter, r *http.Request) error {
	q := r.URL.Query()
	since, err := parseTime(q.Get("since"))
	if err != nil {
		return invalidf("invalid value for 'since': %v", err)
	}
	until, err := parseTime(q.Get("until"))
	if err != nil {
		return invalidf("invalid value for 'until': %v", err)
	}
	if !until.IsZero() && !since.IsZero() && until.Before(since) {
		return invalidf("`since` time (%s) cannot be after `until` time (%s)", q.Get("since"), q.Get("until"))
	}
	f, err := parseFilters(q)
	if err != nil {
		return err
	}

	past, live, cancel := s.b.SubscribeEvents(since, until, f)
	defer cancel()

	var timeout <-chan time.Time
	onlyPast := false
	if !until.IsZero() {
		if d := time.Until(until); d <= 0 {
			onlyPast = true
		} else {
			t := time.NewTimer(d)
			defer t.Stop()
			timeout = t.C
		}
	}

	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(http.StatusOK)
	w.Flush()

	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	legacy := w.minor < 52
	encode := func(ev *events.Message) error {
		if !legacy {
			return enc.Encode(ev)
		}
		le := legacyEvent{Message: ev}
		switch ev.Type {
		case events.ContainerEventType:
			le.Status, le.ID, le.From = string(ev.Action), ev.Actor.ID, ev.Actor.Attributes["image"]
		case events.ImageEventType:
			le.Status, le.ID = string(ev.Action), ev.Actor.ID
		}
		return enc.Encode(&le)
	}

	for i := range past {
		if err := encode(&past[i]); err != nil {
			return nil // the client went away
		}
	}
	w.Flush()
	if onlyPast || (live == nil && timeout == nil) {
		return nil
	}
	ctx := r.Context()
	for {
		select {
		case ev, ok := <-live:
			if !ok {
				return nil
			}
			if err := encode(&ev); err != nil {
				return nil
			}
			w.Flush()
		case <-timeout:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}
