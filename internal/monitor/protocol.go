// Package monitor is the per-container monitor (`skiff-shim monitor`) and its
// client for the engine. The monitor is the parent of the container's first
// process: it holds the container's stdio, writes its log (driver), serves
// attach/start/kill/wait on DIR/monitor.sock and records DIR/exit.json, so a
// container keeps running, logging and getting its exit recorded while the
// engine is away.
//
// The package does not import internal/runtime (the engine links it for the
// client); the shim's entry point, internal/monitor/shim, wires the real
// runtime into Run.
//
// This file and client.go are what the engine uses; they import only the
// standard library, errdefs and logger (for the Config type).
package monitor

import (
	"time"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/logger"
)

// Files in the bundle directory.
const (
	ConfigFile  = "monitor.json" // Config, written by the engine
	SocketFile  = "monitor.sock" // the protocol below
	ExitFile    = "exit.json"    // Exit, written by the monitor when the container exited
	MonitorLog  = "monitor.log"  // the monitor's own stderr
	readyLine   = "ready\n"
	errorPrefix = "error"
)

// Config is DIR/monitor.json.
type Config struct {
	ID string
	// Log is the container's resolved log configuration (logdriver.go).
	// Without it, LogPath names a json-file log ("" = none) rotated at
	// LogMaxSize bytes (0 = never) into LogMaxFiles files.
	Log         *logger.Config `json:",omitempty"`
	LogPath     string
	LogMaxSize  int64
	LogMaxFiles int
	OpenStdin   bool // -i: keep a stdin pipe for attachers
	StdinOnce   bool // close the container's stdin when the first attached client's stdin ends
	Tty         bool // -t: the process gets a pty (its master is the stdout stream; see tty.go)
	// ConsoleHeight, ConsoleWidth: the pty's size at creation (0: the kernel's default).
	ConsoleHeight uint16 `json:",omitempty"`
	ConsoleWidth  uint16 `json:",omitempty"`
	ShimPath      string // the skiff-shim binary (for runtime.Create)
}

// Exit is how the container's first process ended: the reply to `wait` and
// the content of DIR/exit.json. Error is set when the process could not be
// started (ExitCode is then 127, 126 or 128, like Docker's).
type Exit struct {
	ExitCode   int       `json:"exitCode"`
	OOMKilled  bool      `json:"oomKilled"`
	FinishedAt time.Time `json:"finishedAt"`
	Error      string    `json:"error,omitempty"`
}

// request is the one JSON line that starts every connection.
type request struct {
	Op     string `json:"op"` // attach, start, kill, wait
	Stdin  bool   `json:"stdin,omitempty"`
	Stdout bool   `json:"stdout,omitempty"`
	Stderr bool   `json:"stderr,omitempty"`
	Signal int    `json:"signal,omitempty"`
	Height uint16 `json:"height,omitempty"` // resize
	Width  uint16 `json:"width,omitempty"`  // resize
}

// reply answers attach (before the frames), start and kill. An empty object
// is success.
type reply struct {
	Pid      int    `json:"pid,omitempty"`
	Error    string `json:"error,omitempty"`
	Kind     string `json:"kind,omitempty"` // errdefs kind of Error
	ExitCode int    `json:"exitCode,omitempty"`
}

// Stream numbers of Docker's stdcopy frames: an 8-byte header
// [stream, 0, 0, 0, size (big endian uint32)] and size bytes of output.
const (
	StreamStdout = 1
	StreamStderr = 2
)

// StartError is a failed start: the message and the exit code recorded for
// the container (127 command not found, 126 cannot invoke, 128 other). It
// is wrapped in the errdefs kind that matches the code.
type StartError struct {
	Msg      string
	ExitCode int
}

func (e *StartError) Error() string { return e.Msg }

// kindName and kindFromName spell errdefs kinds on the wire and on the
// ready line (errdefs.KindName).
func kindName(err error) string { return errdefs.KindName(err) }

func kindFromName(name string) errdefs.Kind { return errdefs.KindByName(name) }

// ExitCodeFor is the exit code Docker records for a start error of err's
// kind (errdefs.StartExitCode).
func ExitCodeFor(err error) int { return errdefs.StartExitCode(err) }
