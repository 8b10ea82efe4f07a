// Package apiserver serves the Docker Engine API over HTTP. Routes decode the
// request, call the Backend and encode the answer; they hold no state of
// their own. statusFor is the one place where an error kind becomes an HTTP
// status.
package apiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// API versions this server speaks. Requests for a version in between are
// served the same way except where a route notes a difference.
const (
	APIVersion    = "1.51"
	MinAPIVersion = "1.24"

	maxMinor = 51
	minMinor = 24
)

// Options configure a Server.
type Options struct {
	Debug  bool         // log every request at debug level
	Logger *slog.Logger // nil: slog.Default()
	// Build runs POST /build; nil answers 501 (build.go).
	Build BuildBackend
}

// Server is the Docker Engine API as an http.Handler.
type Server struct {
	b     Backend
	log   *slog.Logger
	debug bool
	mux   *http.ServeMux

	// Response headers every reply carries. Built once: a shared []string
	// per header spares an allocation per request.
	hdrOnce   sync.Once
	hdrServer []string
	// Heads of hijacked replies, with the same common headers.
	head200, head101Mux, head101Raw []byte

	pool sync.Pool // *respWriter

	builds       BuildBackend // build.go
	remoteClient *http.Client // downloads of remote build contexts; nil: http.DefaultClient
}

var (
	hdrAPIVersion   = []string{APIVersion}
	hdrExperimental = []string{"false"}
	hdrOSType       = []string{"linux"}
)

// New returns a Server that calls b.
func New(b Backend, opts Options) *Server {
	s := &Server{b: b, log: opts.Logger, debug: opts.Debug, mux: http.NewServeMux(), builds: opts.Build}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.pool.New = func() any { return new(respWriter) }
	s.routes()
	return s
}

// Serve answers requests on l until ctx ends, then shuts down: requests in
// flight see their context cancelled (long polls such as events, wait and
// attach end), and Serve returns once they have.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:     s,
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	done, failed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ctx.Done():
		case <-failed:
			return
		}
		// Handlers whose backend ignores the cancellation get a grace
		// period, then their connections are closed.
		shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutCtx); err != nil {
			srv.Close()
		}
	}()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	close(failed)
	<-done
	return fmt.Errorf("serve API: %w", err)
}

func (s *Server) initHeaders() {
	v := s.b.Version(context.Background()).Version
	if v == "" {
		v = "dev"
	}
	server := "skiff/" + v + " (linux)"
	s.hdrServer = []string{server}
	common := "Api-Version: " + APIVersion + "\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: " + server + "\r\n\r\n"
	s.head200 = []byte("HTTP/1.1 200 OK\r\nContent-Type: " + mediaRaw + "\r\n" + common)
	upgraded := "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: "
	s.head101Mux = []byte(upgraded + mediaMultiplexed + "\r\n" + common)
	s.head101Raw = []byte(upgraded + mediaRaw + "\r\n" + common)
}

// ServeHTTP strips the /v1.NN prefix, checks the version, sets the common
// headers and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.hdrOnce.Do(s.initHeaders)
	start := time.Now()

	rw := s.pool.Get().(*respWriter)
	*rw = respWriter{ResponseWriter: w, minor: maxMinor}
	defer func() {
		if s.debug {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "api request",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", rw.status), slog.Duration("took", time.Since(start)))
		}
		rw.ResponseWriter = nil
		s.pool.Put(rw)
	}()

	h := w.Header()
	h["Api-Version"] = hdrAPIVersion
	h["Docker-Experimental"] = hdrExperimental
	h["Ostype"] = hdrOSType
	h["Server"] = s.hdrServer

	if minor, rest, ok, err := splitVersion(r.URL.Path); ok {
		if err != nil {
			s.writeError(rw, r, err)
			return
		}
		rw.minor = minor
		r.URL.Path = rest
		if r.URL.RawPath != "" {
			if _, raw, ok, _ := splitVersion(r.URL.RawPath); ok {
				r.URL.RawPath = raw
			} else {
				r.URL.RawPath = ""
			}
		}
	}
	s.mux.ServeHTTP(rw, r)
}

// splitVersion recognises a "/vX.Y/" prefix. ok reports whether the path has
// one; err is set when the version is malformed or out of range.
func splitVersion(p string) (minor int, rest string, ok bool, err error) {
	if len(p) < 3 || p[0] != '/' || p[1] != 'v' || p[2] < '0' || p[2] > '9' {
		return 0, p, false, nil
	}
	v, rest := p[2:], "/"
	if i := strings.IndexByte(v, '/'); i >= 0 {
		v, rest = v[:i], v[i:]
	}
	major, min, found := strings.Cut(v, ".")
	maj, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(min)
	if !found || err1 != nil || err2 != nil || maj < 0 || mi < 0 {
		return 0, rest, true, invalidf("malformed API version %q: must be MAJOR.MINOR", v)
	}
	switch {
	case maj > 1 || (maj == 1 && mi > maxMinor):
		return 0, rest, true, invalidf("client version %s is too new. Maximum supported API version is %s", v, APIVersion)
	case maj < 1 || mi < minMinor:
		return 0, rest, true, invalidf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", v, MinAPIVersion)
	}
	return mi, rest, true, nil
}

// handler is a route: it returns an error to have it written as the reply,
// unless it has already started the reply.
type handler func(w *respWriter, r *http.Request) error

func (s *Server) handle(pattern string, h handler) {
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := w.(*respWriter)
		if err := h(rw, r); err != nil {
			s.writeError(rw, r, err)
		}
	}))
}

func (s *Server) routes() {
	s.handle("GET /_ping", s.ping)
	s.handle("GET /version", s.version)
	s.handle("GET /info", s.info)
	s.handle("GET /events", s.events)
	s.handle("POST /auth", s.auth)
	s.handle("GET /distribution/{name...}", s.distributionInspect) // registry.go

	s.handle("POST /containers/create", s.containerCreate)
	s.handle("GET /containers/json", s.containerList)
	s.handle("POST /containers/prune", s.containerPrune)
	s.handle("GET /containers/{id}/json", s.containerInspect)
	s.handle("POST /containers/{id}/start", s.containerStart)
	s.handle("POST /containers/{id}/stop", s.containerStop)
	s.handle("POST /containers/{id}/restart", s.containerRestart)
	s.handle("POST /containers/{id}/kill", s.containerKill)
	s.handle("POST /containers/{id}/wait", s.containerWait)
	s.handle("DELETE /containers/{id}", s.containerRemove)
	s.handle("GET /containers/{id}/logs", s.containerLogs)
	s.handle("POST /containers/{id}/attach", s.containerAttach)
	s.handle("POST /containers/{id}/rename", s.containerRename)
	s.handle("POST /containers/{id}/resize", s.containerResize)
	s.livingRoutes() // living.go: pause, unpause, update, top, stats, changes

	s.handle("POST /containers/{id}/exec", s.execCreate)
	s.handle("POST /exec/{id}/start", s.execStart)
	s.handle("GET /exec/{id}/json", s.execInspect)
	s.handle("POST /exec/{id}/resize", s.execResize)

	s.handle("POST /images/create", s.imageCreate)
	s.handle("GET /images/get", s.imagesGet)
	s.handle("POST /images/load", s.imagesLoad)
	s.handle("POST /images/prune", s.imagesPrune)
	s.handle("POST /commit", s.commit)
	s.handle("POST /build", s.build) // build.go
	s.handle("POST /build/prune", s.buildPrune)
	s.handle("GET /containers/{id}/export", s.containerExport)
	s.handle("GET /system/df", s.systemDF)
	s.handle("GET /images/json", s.imageList)
	// Image names hold slashes and colons, so the rest of the path is
	// taken whole and the action read from its end.
	s.handle("GET /images/{name...}", s.imageGet)
	s.handle("POST /images/{name...}", s.imagePost)
	s.handle("DELETE /images/{name...}", s.imageRemove)

	s.volumeRoutes()  // volumes.go: /volumes and /containers/{id}/archive
	s.networkRoutes() // networks.go: /networks

	s.handle("/", func(w *respWriter, r *http.Request) error {
		return notFoundf("page not found")
	})
}

// respWriter records the status for the request log and carries the API
// version of the request to the routes. Pooled: one per request in flight.
type respWriter struct {
	http.ResponseWriter
	status int
	minor  int // API version 1.minor
}

func (w *respWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Flush sends what is buffered now: streaming routes call it so the client
// sees headers and each message without delay.
func (w *respWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// started reports whether the reply has begun, after which an error can no
// longer become the status.
func (w *respWriter) started() bool { return w.status != 0 }
