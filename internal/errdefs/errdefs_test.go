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
