package engine

import (
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"

	"github.com/skiff-dev/skiff/internal/filters"
)

// eventLog keeps the last events for `events --since` and fans new ones out
// to live subscribers. A slow subscriber loses events rather than stalling
// the engine (Docker does the same).
type eventLog struct {
	mu     sync.Mutex
	past   []events.Message
	subs   map[chan events.Message]filters.Args
	maxLen int
}

func newEventLog() *eventLog {
	return &eventLog{subs: map[chan events.Message]filters.Args{}, maxLen: 1024}
}

func (l *eventLog) publish(typ events.Type, action events.Action, id string, attrs map[string]string) {
	now := time.Now()
	m := events.Message{
		Type: typ, Action: action, Scope: "local",
		Actor: events.Actor{ID: id, Attributes: attrs},
		Time:  now.Unix(), TimeNano: now.UnixNano(),
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.past = append(l.past, m)
	if len(l.past) > l.maxLen {
		l.past = append([]events.Message(nil), l.past[len(l.past)-l.maxLen/2:]...)
	}
	for ch, f := range l.subs {
		if !eventMatches(f, m) {
			continue
		}
		select {
		case ch <- m:
		default:
		}
	}
}

func (l *eventLog) subscribe(since, until time.Time, f filters.Args) ([]events.Message, <-chan events.Message, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var past []events.Message
	if !since.IsZero() {
		for _, m := range l.past {
			t := time.Unix(0, m.TimeNano)
			if t.Before(since) || (!until.IsZero() && t.After(until)) || !eventMatches(f, m) {
				continue
			}
			past = append(past, m)
		}
	}
	if !until.IsZero() && !until.After(time.Now()) {
		return past, nil, func() {}
	}
	ch := make(chan events.Message, 256)
	l.subs[ch] = f
	var once sync.Once
	cancel := func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.subs, ch)
			l.mu.Unlock()
			close(ch)
		})
	}
	return past, ch, cancel
}

// eventMatches applies Docker's event filters: type, event/action, container,
// image, label, and the generic "id"/"name" matching the actor.
func eventMatches(f filters.Args, m events.Message) bool {
	if !f.Match("type", string(m.Type)) {
		return false
	}
	if f.Has("event") && !f.Match("event", string(m.Action)) && !f.Match("event", strings.SplitN(string(m.Action), ":", 2)[0]) {
		return false
	}
	if f.Has("action") && !f.Match("action", string(m.Action)) {
		return false
	}
	matchActor := func(term string) bool {
		if !f.Has(term) {
			return true
		}
		return f.MatchPrefix(term, m.Actor.ID) || f.Match(term, m.Actor.Attributes["name"])
	}
	if m.Type == events.ContainerEventType && !matchActor("container") {
		return false
	}
	if f.Has("container") && m.Type != events.ContainerEventType {
		return false
	}
	if f.Has("image") {
		img := m.Actor.Attributes["image"]
		if m.Type == events.ImageEventType {
			img = m.Actor.ID
		}
		if !f.Match("image", img) && !f.Match("image", m.Actor.Attributes["name"]) {
			return false
		}
	}
	// network and volume filters pass only their own type's events, by ID
	// (prefix) or name, like Docker's fuzzy match.
	for _, typ := range []events.Type{events.NetworkEventType, events.VolumeEventType} {
		key := string(typ)
		if f.Has(key) && (m.Type != typ || !(f.MatchPrefix(key, m.Actor.ID) || f.Match(key, m.Actor.Attributes["name"]))) {
			return false
		}
	}
	if !f.Match("scope", m.Scope) {
		return false
	}
	return f.MatchLabels("label", m.Actor.Attributes)
}
