package engine

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func TestParseDetachKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		bad  bool
	}{
		{"", []byte{16, 17}, false},
		{"ctrl-p,ctrl-q", []byte{16, 17}, false},
		{"ctrl-x,x", []byte{24, 'x'}, false},
		{"ctrl-@,ctrl-[,ctrl-_", []byte{0, 27, 31}, false},
		{"ctrl-1", nil, true},
		{"abc", nil, true},
	} {
		got, err := parseDetachKeys(tc.in)
		if (err != nil) != tc.bad || !bytes.Equal(got, tc.want) {
			t.Errorf("parseDetachKeys(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestEscapeReader(t *testing.T) {
	detached := false
	r := &escapeReader{r: strings.NewReader("ab\x10c\x10\x10\x11rest"), keys: []byte{16, 17}, onDetach: func() { detached = true }}
	out, err := io.ReadAll(r)
	if err != errDetached || !detached {
		t.Fatalf("err %v detached %v", err, detached)
	}
	// A partial match is passed through once it fails; input after the
	// sequence is never read.
	if string(out) != "ab\x10c\x10" {
		t.Errorf("passed through %q", out)
	}
	r = &escapeReader{r: strings.NewReader("no keys\x10"), keys: []byte{16, 17}, onDetach: func() {}}
	out, err = io.ReadAll(r)
	if err != nil || string(out) != "no keys" {
		t.Errorf("plain input: %q %v", out, err)
	}
}

func TestParsePS(t *testing.T) {
	out := []byte("UID PID PPID C STIME TTY TIME CMD\nroot 10 1 0 10:00 ? 00:00:00 sleep 1000\nroot 11 1 0 10:00 ? 00:00:00 other\n")
	r, err := parsePS(out, []int{10})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Processes) != 1 || r.Processes[0][7] != "sleep 1000" || len(r.Titles) != 8 {
		t.Errorf("%+v", r)
	}
	if _, err := parsePS([]byte("USER COMMAND\nroot x\n"), nil); err == nil {
		t.Error("no PID column accepted")
	}
}

func TestShouldRestart(t *testing.T) {
	c := &Container{HostConfig: &container.HostConfig{}}
	set := func(name string, max int) {
		c.HostConfig.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyMode(name), MaximumRetryCount: max}
	}
	for _, tc := range []struct {
		policy string
		max    int
		count  int
		code   int
		manual bool
		want   bool
	}{
		{"no", 0, 0, 1, false, false},
		{"", 0, 0, 1, false, false},
		{"always", 0, 5, 0, false, true},
		{"always", 0, 0, 0, true, false},
		{"unless-stopped", 0, 0, 0, false, true},
		{"unless-stopped", 0, 0, 0, true, false},
		{"on-failure", 0, 9, 1, false, true},
		{"on-failure", 0, 0, 0, false, false},
		{"on-failure", 2, 1, 1, false, true},
		{"on-failure", 2, 2, 1, false, false},
	} {
		set(tc.policy, tc.max)
		c.RestartCount = tc.count
		if got := c.shouldRestart(tc.code, tc.manual); got != tc.want {
			t.Errorf("%+v: got %v", tc, got)
		}
	}
}

func TestMergeAndValidateHealthcheck(t *testing.T) {
	img := &container.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: time.Second, Retries: 5}
	h := mergeHealthcheck(&container.HealthConfig{Retries: 1}, img)
	if h.Test[1] != "true" || h.Interval != time.Second || h.Retries != 1 {
		t.Errorf("merge: %+v", h)
	}
	if got := probeCommand(&container.HealthConfig{Test: []string{"NONE"}}); got != nil {
		t.Errorf("NONE: %v", got)
	}
	if got := probeCommand(h); strings.Join(got, " ") != "/bin/sh -c true" {
		t.Errorf("CMD-SHELL: %v", got)
	}
	for _, bad := range []*container.HealthConfig{
		{Interval: time.Microsecond}, {Retries: -1}, {Test: []string{"WHAT", "x"}}, {Test: []string{"CMD"}},
	} {
		if validateHealthcheck(bad) == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}
