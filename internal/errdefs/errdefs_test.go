package errdefs

import (
	"fmt"
	"testing"
)

func TestKindSurvivesWrapping(t *testing.T) {
	cases := []struct {
		err  error
		want Kind
	}{
		{NotFound("no such container: %s", "x"), KindNotFound},
		{fmt.Errorf("start: %w", Conflict("in use")), KindConflict},
		{fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", CommandNotFound("nope"))), KindCommandNotFound},
		{fmt.Errorf("plain"), KindUnknown},
		{Wrap(KindInvalid, fmt.Errorf("bad")), KindInvalid},
	}
	for _, c := range cases {
		if got := KindOf(c.err); got != c.want {
			t.Errorf("KindOf(%q) = %v, want %v", c.err, got, c.want)
		}
	}
	if Wrap(KindInvalid, nil) != nil {
		t.Error("Wrap(nil) must stay nil")
	}
}

func TestKindNamesRoundTrip(t *testing.T) {
	for k := KindNotFound; k <= KindSystem; k++ {
		err := Wrap(k, fmt.Errorf("x"))
		name := KindName(err)
		if name == "" || KindByName(name) != k {
			t.Errorf("kind %d: name %q comes back as %d", k, name, KindByName(name))
		}
	}
	if KindName(fmt.Errorf("plain")) != "system" || KindByName("from-the-future") != KindSystem {
		t.Error("an unknown kind must travel as system")
	}
}
