package engine

import (
	"io"
	"time"

	"github.com/moby/moby/api/types/jsonstream"

	"github.com/skiff-dev/skiff/internal/filters"
	"github.com/skiff-dev/skiff/internal/logger"
)

// ListOptions selects containers for ContainerList.
type ListOptions struct {
	All     bool
	Limit   int // -1 or 0: no limit; n: the n most recently created
	Latest  bool
	Size    bool
	Filters filters.Args
}

// LogsOptions selects log records for ContainerLogs.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	Tail           int // -1: all
	Since, Until   time.Time
	Timestamps     bool
	Details        bool // prefix each line with its attributes (--details)
}

// LogMessage is one record of a container's log.
type LogMessage struct {
	Stream string // "stdout" or "stderr"
	Line   []byte // the bytes as written, newline included when there was one
	Time   time.Time
	Attrs  []logger.Attr // labels, env, tag stored with the record, sorted by key
	Err    error         // set on the last message when reading failed
}

// AttachOptions are the client's streams for ContainerAttach. The apiserver
// has already hijacked the connection and, for a container without a tty,
// wraps Stdout/Stderr so each write becomes one stdcopy frame.
type AttachOptions struct {
	Stdin          io.Reader // nil when the client does not send stdin
	Stdout, Stderr io.Writer // nil when not requested
	Stream         bool      // live output
	Logs           bool      // replay the log first
	DetachKeys     string
	// NoDetachKeys: a tty's input goes to the container as it is (the CRI's
	// streams have no detach sequence).
	NoDetachKeys bool
}

// ExecStartOptions carries the streams of an exec start.
type ExecStartOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Detach         bool
	// NoDetachKeys: a tty's input goes to the process as it is (the CRI's
	// streams have no detach sequence).
	NoDetachKeys bool
}

// ImageListOptions selects images for ImageList.
type ImageListOptions struct {
	All     bool
	Filters filters.Args
	// HidePause leaves out the CRI's pause image (PauseRepo), which skiff
	// makes itself, unless All or a reference filter asks for it: Docker
	// API lists (`skiff images`) are the user's images.
	HidePause bool
}

// ImportOptions describes POST /images/create?fromSrc=...
type ImportOptions struct {
	Repo, Tag string
	Changes   []string // Dockerfile instructions: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL
	Message   string
	Platform  string
}

// PullOptions describes POST /images/create?fromImage=...
type PullOptions struct {
	Platform     string
	AllTags      bool   // every tag of the repository (the reference has no tag)
	RegistryAuth string // the X-Registry-Auth header as sent (base64url JSON)
	// Progress receives each status message as the pull goes; the apiserver
	// writes it to the client's JSON stream and flushes. Never nil.
	Progress func(jsonstream.Message)
}
