package apiserver

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/logger"
)

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func checkName(name string) error {
	if !validName.MatchString(name) {
		return errdefs.Invalid("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	return nil
}

func (s *Server) containerCreate(w *respWriter, r *http.Request) error {
	name := r.URL.Query().Get("name")
	if name != "" {
		if err := checkName(name); err != nil {
			return err
		}
	}
	var body createBody
	if err := readJSON(r, &body); err != nil {
		return err
	}
	req := body.CreateRequest
	if req.Config == nil {
		return invalidf("config cannot be empty in order to create a container")
	}
	if req.HostConfig == nil {
		req.HostConfig = &container.HostConfig{}
	}
	warn, err := migrateMAC(w.minor, body.MacAddress, &req)
	if err != nil {
		return err
	}
	resp, err := s.b.ContainerCreate(engine.WithCreatePlatform(r.Context(), r.URL.Query().Get("platform")), name, &req)
	if err != nil {
		return err
	}
	if warn != "" {
		resp.Warnings = append(resp.Warnings, warn)
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	return writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) containerList(w *respWriter, r *http.Request) error {
	q := r.URL.Query()
	f, err := parseFilters(q)
	if err != nil {
		return err
	}
	opts := engine.ListOptions{All: boolValue(q, "all"), Size: boolValue(q, "size"), Filters: f}
	if v := q.Get("limit"); v != "" {
		if opts.Limit, err = strconv.Atoi(v); err != nil {
			return invalidf("invalid limit %q: %v", v, err)
		}
	}
	list, err := s.b.ContainerList(r.Context(), opts)
	if err != nil {
		return err
	}
	if list == nil {
		list = []container.Summary{}
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) containerInspect(w *respWriter, r *http.Request) error {
	c, err := s.b.ContainerInspect(r.Context(), r.PathValue("id"), boolValue(r.URL.Query(), "size"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, withLegacyNetworkSettings(c))
}

func (s *Server) containerStart(w *respWriter, r *http.Request) error {
	// A JSON object of more than "{}" and spaces is a HostConfig, which API
	// 1.24 stopped accepting here.
	if r.ContentLength > 7 {
		return invalidf("starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24")
	}
	if err := s.b.ContainerStart(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerStop(w *respWriter, r *http.Request) error {
	q := r.URL.Query()
	t, err := timeoutValue(q)
	if err != nil {
		return err
	}
	if err := s.b.ContainerStop(r.Context(), r.PathValue("id"), t, q.Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerRestart(w *respWriter, r *http.Request) error {
	q := r.URL.Query()
	t, err := timeoutValue(q)
	if err != nil {
		return err
	}
	if err := s.b.ContainerRestart(r.Context(), r.PathValue("id"), t, q.Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerKill(w *respWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.b.ContainerKill(r.Context(), id, r.URL.Query().Get("signal")); err != nil {
		// dockerd's wording: "cannot kill container: web: container ... is not running"
		return fmt.Errorf("cannot kill container: %s: %w", id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// containerWait sends the 200 header as soon as the wait is registered, so
// `docker run` can start the container knowing no exit will be missed, and
// the result when the condition is met.
func (s *Server) containerWait(w *respWriter, r *http.Request) error {
	cond := r.URL.Query().Get("condition")
	switch container.WaitCondition(cond) {
	case "":
		cond = string(container.WaitConditionNotRunning)
	case container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return invalidf("invalid condition: %q", cond)
	}
	ctx := r.Context()
	ch, err := s.b.ContainerWait(ctx, r.PathValue("id"), cond)
	if err != nil {
		return err
	}
	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(http.StatusOK)
	w.Flush()

	var res container.WaitResponse
	select {
	case v, ok := <-ch:
		if ok {
			res = v
		} else {
			res = container.WaitResponse{StatusCode: -1, Error: &container.WaitExitError{Message: "wait ended without a result"}}
		}
	case <-ctx.Done():
		return nil
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(&res)
}

func (s *Server) containerRemove(w *respWriter, r *http.Request) error {
	q := r.URL.Query()
	if boolValue(q, "link") {
		return errdefs.NotImplemented("links are not supported")
	}
	if err := s.b.ContainerRemove(r.Context(), r.PathValue("id"), boolValue(q, "force"), boolValue(q, "v")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerPrune(w *respWriter, r *http.Request) error {
	f, err := parseFilters(r.URL.Query())
	if err != nil {
		return err
	}
	rep, err := s.b.ContainerPrune(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (s *Server) containerRename(w *respWriter, r *http.Request) error {
	name := r.URL.Query().Get("name")
	if name == "" {
		return invalidf("Neither old nor new names may be empty")
	}
	if err := checkName(name); err != nil {
		return err
	}
	if err := s.b.ContainerRename(r.Context(), r.PathValue("id"), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// resizeQuery reads the h and w of a resize request.
func resizeQuery(r *http.Request) (h, w uint, err error) {
	q := r.URL.Query()
	hv, err := uint32Value(q, "h")
	if err != nil {
		return 0, 0, err
	}
	wv, err := uint32Value(q, "w")
	if err != nil {
		return 0, 0, err
	}
	return uint(hv), uint(wv), nil
}

// containerResize sets the size of the container's terminal.
func (s *Server) containerResize(w *respWriter, r *http.Request) error {
	h, wd, err := resizeQuery(r)
	if err != nil {
		return err
	}
	if err := s.b.ContainerResize(r.Context(), r.PathValue("id"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// rfc3339NanoFixed keeps every timestamp the same width, as docker prints them.
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

// containerLogs streams the log: stdcopy frames without a tty, the raw bytes
// with one. Arguments are checked before the 200 goes out; after it, errors
// travel in the stream.
func (s *Server) containerLogs(w *respWriter, r *http.Request) error {
	q := r.URL.Query()
	opts := engine.LogsOptions{
		Stdout:     boolValue(q, "stdout"),
		Stderr:     boolValue(q, "stderr"),
		Follow:     boolValue(q, "follow"),
		Timestamps: boolValue(q, "timestamps"),
		Details:    boolValue(q, "details"),
		Tail:       -1,
	}
	if !opts.Stdout && !opts.Stderr {
		return invalidf("must specify at least one of 'stdout' or 'stderr'")
	}
	if v := q.Get("tail"); v != "" && v != "all" {
		// dockerd reads anything that is not a count as "all".
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			opts.Tail = n
		}
	}
	var err error
	if opts.Since, err = parseTime(q.Get("since")); err != nil {
		return invalidf(`invalid value for "since": %v`, err)
	}
	if v := q.Get("until"); v != "0" {
		if opts.Until, err = parseTime(v); err != nil {
			return invalidf(`invalid value for "until": %v`, err)
		}
	}
	ctx := r.Context()
	msgs, tty, err := s.b.ContainerLogs(ctx, r.PathValue("id"), opts)
	if err != nil {
		return err
	}

	ct := hdrRaw
	if !tty && w.minor >= 42 {
		ct = hdrMultiplexed
	}
	w.Header()["Content-Type"] = ct
	w.WriteHeader(http.StatusOK)
	w.Flush()

	var stdout, stderr, sysErr io.Writer = w, w, w
	if !tty {
		m := newMuxer(w)
		stdout, stderr, sysErr = m.stream(streamStdout), m.stream(streamStderr), m.stream(streamSystemErr)
	}
	var line []byte
	for {
		var msg engine.LogMessage
		var ok bool
		select {
		case msg, ok = <-msgs:
		case <-ctx.Done():
			return nil
		}
		if !ok {
			return nil
		}
		if msg.Err != nil {
			fmt.Fprintf(sysErr, "Error grabbing logs: %v\n", msg.Err)
			w.Flush()
			continue
		}
		out := stdout
		switch msg.Stream {
		case "stdout":
			if !opts.Stdout {
				continue
			}
		case "stderr":
			if !opts.Stderr {
				continue
			}
			out = stderr
		default:
			continue
		}
		p := msg.Line
		if opts.Timestamps || opts.Details {
			line = line[:0]
			if opts.Timestamps {
				line = append(msg.Time.UTC().AppendFormat(line, rfc3339NanoFixed), ' ')
			}
			if opts.Details {
				line = append(appendLogAttrs(line, msg.Attrs), ' ')
			}
			p = append(line, msg.Line...)
			line = p
		}
		if _, err := out.Write(p); err != nil {
			return nil // the client went away
		}
		// Batch what is already queued into one flush; never hold a line back.
		if len(msgs) == 0 {
			w.Flush()
		}
	}
}

// appendLogAttrs is dockerd's --details prefix: the record's attributes as
// KEY=VALUE pairs, sorted, query-escaped and joined by commas.
func appendLogAttrs(b []byte, attrs []logger.Attr) []byte {
	for i, a := range attrs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(append(b, url.QueryEscape(a.Key)...), '='), url.QueryEscape(a.Value)...)
	}
	return b
}
