package apiserver

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
)

const (
	mediaRaw         = "application/vnd.docker.raw-stream"
	mediaMultiplexed = "application/vnd.docker.multiplexed-stream"
)

var (
	hdrJSON        = []string{"application/json"}
	hdrRaw         = []string{mediaRaw}
	hdrMultiplexed = []string{mediaMultiplexed}
)

// writeJSON replies with v encoded as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// readJSON decodes the request body into v. An empty body leaves v as it is,
// as dockerd does; a body must be declared application/json.
func readJSON(r *http.Request, v any) error {
	ct := r.Header.Get("Content-Type")
	if r.Body == nil || r.ContentLength == 0 {
		return nil
	}
	if ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return errdefs.Invalid("unsupported Content-Type header (%s): must be 'application/json'", ct)
		}
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			if r.ContentLength == -1 {
				return nil // chunked and empty
			}
			return errdefs.Invalid("invalid JSON: got EOF while reading request body")
		}
		return errdefs.Invalid("invalid JSON: %v", err)
	}
	return nil
}

// boolValue reads a query flag as dockerd does: absent, "", "0", "no",
// "false" and "none" are false, anything else true.
func boolValue(q url.Values, k string) bool {
	s := strings.ToLower(strings.TrimSpace(q.Get(k)))
	return !(s == "" || s == "0" || s == "no" || s == "false" || s == "none")
}

// boolDefault is boolValue with a value for an absent key.
func boolDefault(q url.Values, k string, def bool) bool {
	if _, ok := q[k]; !ok {
		return def
	}
	return boolValue(q, k)
}

func parseFilters(q url.Values) (filters.Args, error) {
	return filters.Parse(q.Get("filters"))
}

// parseTime reads a time the docker CLI sends: seconds since the epoch with
// an optional fraction ("1700000000.123456789"), or RFC 3339 from other
// clients. Empty is the zero time.
func parseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	secs, frac, hasFrac := strings.Cut(v, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, errors.New("invalid timestamp " + strconv.Quote(v))
	}
	var nsec int64
	if hasFrac && frac != "" {
		if len(frac) > 9 {
			frac = frac[:9] // more digits than nanoseconds: truncate
		}
		for i := 0; i < len(frac); i++ {
			if frac[i] < '0' || frac[i] > '9' {
				return time.Time{}, errors.New("invalid timestamp " + strconv.Quote(v))
			}
		}
		n, _ := strconv.ParseInt(frac, 10, 64)
		for i := len(frac); i < 9; i++ {
			n *= 10
		}
		nsec = n
	}
	return time.Unix(sec, nsec), nil
}

// timeoutValue reads the stop/restart timeout "t": absent is nil.
func timeoutValue(q url.Values) (*int, error) {
	v := q.Get("t")
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, errdefs.Invalid("invalid value for t: %q: %v", v, err)
	}
	return &n, nil
}

func uint32Value(q url.Values, k string) (uint32, error) {
	v := q.Get(k)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, errdefs.Invalid("invalid resize %s %q: %v", map[string]string{"h": "height", "w": "width"}[k], v, err)
	}
	return uint32(n), nil
}
