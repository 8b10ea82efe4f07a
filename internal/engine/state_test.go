package engine

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

const (
	sCreated    = container.StateCreated
	sRunning    = container.StateRunning
	sPaused     = container.StatePaused
	sRestarting = container.StateRestarting
	sRemoving   = container.StateRemoving
	sExited     = container.StateExited
	sDead       = container.StateDead
)

// allowedMoves are the status changes that make sense, written out apart
// from stateMachine so that a change to the table shows up here.
var allowedMoves = map[[2]container.ContainerState]bool{
	{sCreated, sCreated}: true, {sCreated, sRunning}: true, {sCreated, sRemoving}: true,
	{sRunning, sPaused}: true, {sRunning, sExited}: true,
	{sPaused, sRunning}: true, {sPaused, sExited}: true,
	{sRestarting, sRunning}: true, {sRestarting, sExited}: true, {sRestarting, sRestarting}: true,
	{sExited, sExited}: true, {sExited, sRunning}: true, {sExited, sRestarting}: true, {sExited, sRemoving}: true,
	{sRemoving, sDead}: true,
	{sDead, sRemoving}: true,
}

// inspectFlags are what inspect shows for each status (Docker's, except that
// a restarting container is not Running: it has no process).
var inspectFlags = map[container.ContainerState][4]bool{ // Running, Paused, Restarting, Dead
	sCreated: {}, sRunning: {true}, sPaused: {true, true}, sRestarting: {false, false, true},
	sRemoving: {}, sExited: {}, sDead: {false, false, false, true},
}

var allEvents = []stateEvent{evStart, evStartFailed, evExit, evPause, evUnpause, evRestartWait,
	evRestartCancel, evRemove, evRemoveFailed}

// TestTransitionTable applies every event to a container in every status:
// an allowed move sets the status and its flags together and is written
// (removal in progress excepted); any other is refused with Conflict (304
// for starting a running container), changes nothing and writes nothing.
// Every (from, to) pair is then checked against allowedMoves.
func TestTransitionTable(t *testing.T) {
	env := newTestEngine(t)
	reached := map[[2]container.ContainerState]bool{}
	for _, ev := range allEvents {
		for _, from := range allStates {
			c := env.add(t, "c", from)
			writes := env.store.writeCount()
			before := c.save()
			c.mu.Lock()
			err := env.e.transition(c, ev, func(c *Container) { c.State.ExitCode = 7 })
			after := c.save()
			c.mu.Unlock()
			to, ok := stateMachine[ev][from]
			name := ev.String() + " from " + string(from)
			if !ok {
				want := errdefs.KindConflict
				if ev == evStart && from == sRunning {
					want = errdefs.KindNotModified
				}
				wantKind(t, name, err, want)
				if !reflect.DeepEqual(before, after) || env.store.writeCount() != writes {
					t.Errorf("%s: a refused move changed the state (%+v) or wrote", name, after.state)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			reached[[2]container.ContainerState{from, to}] = true
			st := c.State
			if st.Status != to || [4]bool{st.Running, st.Paused, st.Restarting, st.Dead} != inspectFlags[to] || st.ExitCode != 7 {
				t.Errorf("%s: state %+v, want %s with flags %v", name, st, to, inspectFlags[to])
			}
			rec := env.store.record(t, c.ID)
			if unsaved[ev] {
				if env.store.writeCount() != writes {
					t.Errorf("%s: removal in progress was written", name)
				}
			} else if rec == nil || !reflect.DeepEqual(rec.State, st) {
				t.Errorf("%s: record %+v, want %+v", name, rec, st)
			}
			env.e.reg.remove(c)
		}
	}
	for _, from := range allStates {
		for _, to := range allStates {
			p := [2]container.ContainerState{from, to}
			if reached[p] != allowedMoves[p] {
				t.Errorf("%s → %s: reachable %v, allowed %v", from, to, reached[p], allowedMoves[p])
			}
		}
	}
}

// TestRefusalsInDockersWords: the messages clients match.
func TestRefusalsInDockersWords(t *testing.T) {
	c := &Container{ID: "abc", Name: "web"}
	for _, tc := range []struct {
		ev   stateEvent
		from container.ContainerState
		want string
	}{
		{evPause, sExited, "Container abc is not running"},
		{evPause, sPaused, "Container abc is already paused"},
		{evPause, sRestarting, "Container abc is restarting, wait until the container is running"},
		{evUnpause, sRunning, "Container abc is not paused"},
		{evUnpause, sCreated, "Container abc is not running"},
		{evStart, sRunning, "container abc is already running"},
		{evStart, sPaused, "cannot start a paused container, try unpause instead"},
		{evStart, sRemoving, "container abc is marked for removal and cannot be started"},
		{evStart, sDead, "container abc is marked for removal and cannot be started"},
		{evRemove, sRunning, `cannot remove container "/web": container is running: stop the container before removing or force remove`},
		{evRemove, sPaused, `cannot remove container "/web": container is paused and must be unpaused first`},
		{evRemove, sRemoving, "removal of container web is already in progress"},
		{evExit, sExited, "Container abc is not running"},
	} {
		c.State.Status = tc.from
		if err := c.check(tc.ev); err == nil || err.Error() != tc.want {
			t.Errorf("%s from %s: %v, want %q", tc.ev, tc.from, err, tc.want)
		}
	}
}

// TestTransitionWriteFails: a move whose record cannot be written is rolled
// back, every field the move touched included, and the error says what
// failed; the facts (an exit, a failed start or removal) stay applied.
func TestTransitionWriteFails(t *testing.T) {
	env := newTestEngine(t)
	for _, ev := range allEvents {
		for from := range stateMachine[ev] {
			c := env.add(t, "c", from)
			env.store.setFail(errDiskFull)
			before := c.save()
			c.mu.Lock()
			err := env.e.transition(c, ev, func(c *Container) {
				c.State.ExitCode, c.ManualStop, c.RestartCount = 9, true, 3
			})
			after := c.save()
			c.mu.Unlock()
			env.store.setFail(nil)
			name := ev.String() + " from " + string(from)
			switch {
			case unsaved[ev]:
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
			case facts[ev]:
				if !errors.Is(err, errDiskFull) || after.state.Status != stateMachine[ev][from] {
					t.Errorf("%s: %v, state %s", name, err, after.state.Status)
				}
			default:
				if !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), "record "+ev.String()) {
					t.Errorf("%s: error %v", name, err)
				}
				if !reflect.DeepEqual(before, after) {
					t.Errorf("%s: not rolled back: %+v, was %+v", name, after, before)
				}
			}
			env.e.reg.remove(c)
		}
	}
}
