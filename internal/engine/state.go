package engine

import (
	"fmt"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// The container state machine. A container's status is one of Docker's,
// and moves (stateMachine below is the truth):
//
//	created    --start--> running     --pause--> paused --unpause--> running
//	created/exited --start failed--> same     running/paused --exit--> exited
//	exited     --restart wait--> restarting --start--> running
//	restarting --restart cancel / start failed--> exited
//	created/exited/dead --remove--> removing --remove failed--> dead
//
// Every change of status goes through transition, which checks the move
// against stateMachine, sets the status and the flags inspect shows
// (Running, Paused, Restarting, Dead) together from flagsOf, applies the
// caller's other fields (Pid, ExitCode, ...), writes the record, and
// returns the write's error. A move the table does not have is refused
// with Docker's words (refusal), mostly Conflict.
//
// A failed write is rolled back: transition restores the fields it changed,
// under c.mu, which every reader of the record takes, so nobody sees the
// state the store does not have and the API call fails instead of lying.
// (Rolling back under the lock, rather than marshalling a copy before
// applying it, keeps one encoder for the record and the caller's set
// function free to touch any field.) The exceptions are the facts: an exit,
// a failed start, a failed removal record what already happened, and
// rolling them back would have the engine believe in a process that is
// gone, or a removal still under way. They are applied, and the write error
// is logged and returned; the record then reads as after a crash just
// before the write, which restore handles (an exit from the monitor's
// exit.json, which onExit keeps for that; a restart that failed is tried
// again by the next engine).

// stateEvent is what happened to a container, or what was asked of it.
type stateEvent int

const (
	evStart         stateEvent = iota // its process was started
	evStartFailed                     // a start failed before the process ran
	evExit                            // its process ended
	evPause                           // frozen
	evUnpause                         // thawed
	evRestartWait                     // a restart policy's back-off began
	evRestartCancel                   // that back-off was canceled
	evRemove                          // removal began
	evRemoveFailed                    // removal failed half-way: dead, as Docker
)

var eventNames = map[stateEvent]string{
	evStart: "start", evStartFailed: "start failed", evExit: "exit", evPause: "pause",
	evUnpause: "unpause", evRestartWait: "restart wait", evRestartCancel: "restart cancel",
	evRemove: "remove", evRemoveFailed: "remove failed",
}

func (ev stateEvent) String() string { return eventNames[ev] }

// allStates are Docker's statuses, in its order.
var allStates = []container.ContainerState{
	container.StateCreated, container.StateRunning, container.StatePaused, container.StateRestarting,
	container.StateRemoving, container.StateExited, container.StateDead,
}

// stateMachine[ev][from] is the status ev moves a container in status from
// to; a missing entry is a move that makes no sense.
var stateMachine = map[stateEvent]map[container.ContainerState]container.ContainerState{
	evStart: {
		container.StateCreated:    container.StateRunning,
		container.StateExited:     container.StateRunning,
		container.StateRestarting: container.StateRunning, // the policy's restart
	},
	evStartFailed: { // Docker keeps "created" for a container that never ran
		container.StateCreated:    container.StateCreated,
		container.StateExited:     container.StateExited,
		container.StateRestarting: container.StateExited, // as Docker, the policy stops here
	},
	evExit: {
		container.StateRunning: container.StateExited,
		container.StatePaused:  container.StateExited, // killed while frozen
	},
	evPause:   {container.StateRunning: container.StatePaused},
	evUnpause: {container.StatePaused: container.StateRunning},
	evRestartWait: {
		container.StateExited:     container.StateRestarting,
		container.StateRestarting: container.StateRestarting, // re-armed by a new engine
	},
	evRestartCancel: {container.StateRestarting: container.StateExited},
	evRemove: {
		container.StateCreated: container.StateRemoving,
		container.StateExited:  container.StateRemoving,
		container.StateDead:    container.StateRemoving,
	},
	evRemoveFailed: {container.StateRemoving: container.StateDead},
}

// stateFlags are the booleans inspect shows for each status. A restarting
// container has no process: Running is false (restart.go).
type stateFlags struct{ running, paused, restarting, dead bool }

var flagsOf = map[container.ContainerState]stateFlags{
	container.StateCreated:    {},
	container.StateRunning:    {running: true},
	container.StatePaused:     {running: true, paused: true},
	container.StateRestarting: {restarting: true},
	container.StateRemoving:   {},
	container.StateExited:     {},
	container.StateDead:       {dead: true},
}

// facts are the events that are applied even when their write fails.
var facts = map[stateEvent]bool{evExit: true, evStartFailed: true, evRemoveFailed: true}

// unsaved are the moves whose record is not written: removal in progress is
// runtime only, as Docker's RemovalInProgress (the removal deletes the
// record, and one more write would cost every `rm` and `run --rm` two
// fdatasyncs; a crash mid-removal leaves the record as it was before it).
var unsaved = map[stateEvent]bool{evRemove: true}

// refusal is Docker's error for ev on a container in status from.
func (c *Container) refusal(ev stateEvent, from container.ContainerState) error {
	switch ev {
	case evStart:
		switch from {
		case container.StateRunning:
			return errdefs.NotModified("container %s is already running", c.ID)
		case container.StatePaused:
			return errdefs.Conflict("cannot start a paused container, try unpause instead")
		case container.StateRemoving, container.StateDead:
			return errdefs.Conflict("container %s is marked for removal and cannot be started", c.ID)
		}
	case evPause:
		switch from {
		case container.StatePaused:
			return errdefs.Conflict("Container %s is already paused", c.ID)
		case container.StateRestarting:
			return errdefs.Conflict("Container %s is restarting, wait until the container is running", c.ID)
		}
		return errdefs.Conflict("Container %s is not running", c.ID)
	case evUnpause:
		if from == container.StateRunning {
			return errdefs.Conflict("Container %s is not paused", c.ID)
		}
		return errdefs.Conflict("Container %s is not running", c.ID)
	case evExit:
		return errdefs.Conflict("Container %s is not running", c.ID)
	case evRemove:
		switch from {
		case container.StateRemoving:
			return errdefs.Conflict("removal of container %s is already in progress", c.Name)
		case container.StatePaused:
			return errdefs.Conflict("cannot remove container \"/%s\": container is paused and must be unpaused first", c.Name)
		}
		return errdefs.Conflict("cannot remove container \"/%s\": container is %s: stop the container before removing or force remove", c.Name, from)
	}
	return errdefs.Conflict("container %s: cannot %s while %s", c.ID, ev, from)
}

// check reports whether ev may happen to c now (nil) or Docker's error;
// the caller holds c.mu. Operations call it before doing work that
// transition then records.
func (c *Container) check(ev stateEvent) error {
	if _, ok := stateMachine[ev][c.State.Status]; !ok {
		return c.refusal(ev, c.State.Status)
	}
	return nil
}

// markedForRemoval: start, restart and update refuse such a container.
func (c *Container) markedForRemoval() bool {
	return c.State.Status == container.StateRemoving || c.State.Status == container.StateDead
}

// savedFields are what a transition may change, for a rollback.
type savedFields struct {
	state                State
	manualStop, hasStart bool
	restartCount         int
}

func (c *Container) save() savedFields {
	return savedFields{c.State, c.ManualStop, c.HasBeenStartedBefore, c.RestartCount}
}

func (c *Container) restore(s savedFields) {
	c.State, c.ManualStop, c.HasBeenStartedBefore, c.RestartCount = s.state, s.manualStop, s.hasStart, s.restartCount
}

// transition applies ev to c: it checks the move, sets the status and its
// flags, lets set change the other fields of the record, and writes the
// record (except for the unsaved moves). A refused move changes nothing; a
// failed write is rolled back and returned (see the top of this file). The
// caller holds c.mu.
func (e *Engine) transition(c *Container, ev stateEvent, set func(*Container)) error {
	return e.applyTransition(c, ev, !unsaved[ev], set)
}

// applyTransition is transition with the write chosen by the caller: onExit
// does not write the exit of a --rm container (its removal follows) or one
// seen while the engine shuts down (the next engine reads exit.json).
func (e *Engine) applyTransition(c *Container, ev stateEvent, write bool, set func(*Container)) error {
	from := c.State.Status
	to, ok := stateMachine[ev][from]
	if !ok {
		return c.refusal(ev, from)
	}
	prev := c.save()
	f := flagsOf[to]
	c.State.Status = to
	c.State.Running, c.State.Paused, c.State.Restarting, c.State.Dead = f.running, f.paused, f.restarting, f.dead
	if set != nil {
		set(c)
	}
	if !write {
		return nil
	}
	if err := e.persist(c); err != nil {
		err = fmt.Errorf("record %s of container %s: %w", ev, c.ID, err)
		if facts[ev] {
			// Kept (see the top of this file).
			e.log.Error("record the exit of a container", "container", c.ID, "err", err)
			return err
		}
		c.restore(prev)
		return err
	}
	return nil
}
