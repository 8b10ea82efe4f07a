package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-units"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/errdefs"
)

// jsonStream writes JSON messages (pull and import progress) and flushes
// each, remembering whether the reply has started.
type jsonStream struct {
	w   *respWriter
	enc *json.Encoder
}

func newJSONStream(w *respWriter) *jsonStream {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &jsonStream{w: w, enc: enc}
}

func (j *jsonStream) send(m jsonstream.Message) {
	if !j.w.started() {
		j.w.Header()["Content-Type"] = hdrJSON
		j.w.WriteHeader(http.StatusOK)
	}
	_ = j.enc.Encode(&wireMessage{
		Stream: m.Stream, Status: m.Status, Progress: m.Progress, ProgressText: progressText(m.Progress),
		ID: m.ID, Error: m.Error, Aux: m.Aux,
	})
	j.w.Flush()
}

// wireMessage is a stream message in dockerd's field order, with the
// rendered bar ("progress") beside progressDetail as dockerd 28 sends it:
// older clients and SDKs print that text rather than draw their own.
type wireMessage struct {
	Stream       string               `json:"stream,omitempty"`
	Status       string               `json:"status,omitempty"`
	Progress     *jsonstream.Progress `json:"progressDetail,omitempty"`
	ProgressText string               `json:"progress,omitempty"`
	ID           string               `json:"id,omitempty"`
	Error        *jsonstream.Error    `json:"errorDetail,omitempty"`
	Aux          *json.RawMessage     `json:"aux,omitempty"`
}

// progressText renders p as dockerd's JSONProgress.String does for a
// daemon without a terminal (200 columns): a 50-step bar and the byte
// counts, "" when there is nothing to count.
func progressText(p *jsonstream.Progress) string {
	if p == nil || (p.Current <= 0 && p.Total <= 0) {
		return ""
	}
	if p.Total <= 0 {
		if p.Units == "" {
			return fmt.Sprintf("%8v", units.HumanSize(float64(p.Current)))
		}
		return fmt.Sprintf("%d %s", p.Current, p.Units)
	}
	pct := min(int(float64(p.Current)/float64(p.Total)*100)/2, 50)
	bar := "[" + strings.Repeat("=", pct) + ">" + strings.Repeat(" ", 50-pct) + "] "
	var nums string
	switch {
	case p.HideCounts:
	case p.Units == "":
		nums = fmt.Sprintf("%8v/%v", units.HumanSize(float64(p.Current)), units.HumanSize(float64(p.Total)))
		if p.Current > p.Total {
			nums = fmt.Sprintf("%8v", units.HumanSize(float64(p.Current)))
		}
	default:
		nums = fmt.Sprintf("%d/%d %s", p.Current, p.Total, p.Units)
		if p.Current > p.Total {
			nums = fmt.Sprintf("%d %s", p.Current, p.Units)
		}
	}
	left := ""
	if p.Current > 0 && p.Start > 0 && pct < 50 {
		perByte := time.Since(time.Unix(p.Start, 0)) / time.Duration(p.Current)
		left = " " + (time.Duration(p.Total-p.Current) * perByte).Round(time.Second).String()
	}
	return bar + nums + left
}

// streamError is an error once the stream has started. The legacy "error"
// string rides along with errorDetail, as dockerd sends it.
type streamError struct {
	Detail  jsonstream.Error `json:"errorDetail"`
	Message string           `json:"error"`
}

// finish turns err into the reply: a status while nothing has been sent,
// an error message in the stream after.
func (j *jsonStream) finish(err error) error {
	if err == nil || !j.w.started() {
		return err
	}
	_ = j.enc.Encode(streamError{Detail: jsonstream.Error{Message: err.Error()}, Message: err.Error()})
	j.w.Flush()
	return nil
}

// imageCreate is both pull (fromImage) and import (fromSrc).
func (s *Server) imageCreate(w *respWriter, r *http.Request) error {
	q := r.URL.Query()
	js := newJSONStream(w)
	ctx := r.Context()

	if img := q.Get("fromImage"); img != "" {
		ref := strings.TrimSuffix(img, ":") // "pull -a" sends a trailing colon
		tag := q.Get("tag")
		if tag != "" {
			if strings.Contains(tag, ":") { // a digest
				ref += "@" + tag
			} else {
				ref += ":" + tag
			}
		}
		err := s.b.ImagePull(ctx, ref, engine.PullOptions{
			// Docker's API: no tag anywhere means every tag.
			AllTags:      tag == "" && !hasTagOrDigest(ref),
			Platform:     q.Get("platform"),
			RegistryAuth: r.Header.Get("X-Registry-Auth"),
			Progress:     js.send,
		})
		return js.finish(err)
	}

	src := q.Get("fromSrc")
	if src != "-" {
		if src == "" {
			return invalidf("fromImage or fromSrc is required")
		}
		return errdefs.NotImplemented("importing from a URL is not supported; send the archive in the request body (fromSrc=-)")
	}
	msg := q.Get("message")
	if msg == "" {
		msg = "Imported from " + src
	}
	repo, tag := splitTag(q.Get("repo"), q.Get("tag"))
	id, err := s.b.ImageImport(ctx, r.Body, engine.ImportOptions{
		Repo:     repo,
		Tag:      tag,
		Changes:  q["changes"],
		Message:  msg,
		Platform: q.Get("platform"),
	})
	if err != nil {
		return js.finish(err)
	}
	js.send(jsonstream.Message{Status: id})
	return nil
}

// splitTag separates a tag given inside repo ("app:v1", as the client sends
// it) unless tag is set; a colon before the last slash is a registry port.
func splitTag(repo, tag string) (string, string) {
	if tag != "" {
		return repo, tag
	}
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		return repo[:i], repo[i+1:]
	}
	return repo, ""
}

func (s *Server) imageList(w *respWriter, r *http.Request) error {
	q := r.URL.Query()
	f, err := parseFilters(q)
	if err != nil {
		return err
	}
	list, err := s.b.ImageList(r.Context(), engine.ImageListOptions{All: boolValue(q, "all"), Filters: f, HidePause: true})
	if err != nil {
		return err
	}
	if list == nil {
		list = []image.Summary{}
	}
	return writeJSON(w, http.StatusOK, list)
}

// imageGet serves GET /images/NAME/json and /images/NAME/history, NAME
// being free to contain slashes.
func (s *Server) imageGet(w *respWriter, r *http.Request) error {
	p := r.PathValue("name")
	if name, ok := strings.CutSuffix(p, "/json"); ok && name != "" {
		img, err := s.b.ImageInspect(r.Context(), name)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, img)
	}
	if name, ok := strings.CutSuffix(p, "/history"); ok && name != "" {
		h, err := s.b.ImageHistory(r.Context(), name)
		if err != nil {
			return err
		}
		if h == nil {
			h = []image.HistoryResponseItem{}
		}
		return writeJSON(w, http.StatusOK, h)
	}
	if name, ok := strings.CutSuffix(p, "/get"); ok && name != "" {
		return s.imageSaveOne(w, r, name)
	}
	return notFoundf("page not found")
}

// imagePost serves POST /images/NAME/tag.
func (s *Server) imagePost(w *respWriter, r *http.Request) error {
	if name, ok := strings.CutSuffix(r.PathValue("name"), "/push"); ok && name != "" {
		return s.imagePush(w, r, name)
	}
	name, ok := strings.CutSuffix(r.PathValue("name"), "/tag")
	if !ok || name == "" {
		return notFoundf("page not found")
	}
	q := r.URL.Query()
	repo := q.Get("repo")
	if repo == "" {
		return invalidf("source and target image are required")
	}
	if err := s.b.ImageTag(r.Context(), name, repo, q.Get("tag")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) imageRemove(w *respWriter, r *http.Request) error {
	name := r.PathValue("name")
	if strings.TrimSpace(name) == "" {
		return invalidf("image name cannot be blank")
	}
	q := r.URL.Query()
	list, err := s.b.ImageRemove(r.Context(), name, boolValue(q, "force"), boolValue(q, "noprune"))
	if err != nil {
		return err
	}
	if list == nil {
		list = []image.DeleteResponse{}
	}
	return writeJSON(w, http.StatusOK, list)
}

// hasTagOrDigest reports whether ref names a tag or a digest (an invalid
// ref says yes: the pull reports it).
func hasTagOrDigest(ref string) bool {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return true
	}
	_, tagged := n.(reference.Tagged)
	_, digested := n.(reference.Digested)
	return tagged || digested
}
