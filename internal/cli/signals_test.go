package cli

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

func TestForwardAllSignals(t *testing.T) {
	f := newFakeAPI(t)
	got := make(chan string, 10)
	f.handle("POST /containers/{id}/kill", func(w http.ResponseWriter, r *http.Request) {
		got <- r.PathValue("id") + " " + r.URL.Query().Get("signal")
		w.WriteHeader(http.StatusNoContent)
	})
	api, err := client.New(client.WithHost(f.host()))
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	sigc := make(chan os.Signal, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go forwardAllSignals(ctx, api, "ctr", sigc)
	// SIGCHLD, SIGPIPE and the runtime's SIGURG are not the container's.
	for _, s := range []os.Signal{syscall.SIGCHLD, syscall.SIGURG, syscall.SIGPIPE, syscall.SIGINT, syscall.SIGTERM} {
		sigc <- s
	}
	for _, want := range []string{"ctr INT", "ctr TERM"} {
		select {
		case g := <-got:
			if g != want {
				t.Errorf("forwarded %q, want %q", g, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s not forwarded", want)
		}
	}
	select {
	case g := <-got:
		t.Errorf("unexpected forward %q", g)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestDetachKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		err  bool
	}{
		{"", []byte{16, 17}, false},
		{"ctrl-p,ctrl-q", []byte{16, 17}, false},
		{"ctrl-a,x", []byte{1, 'x'}, false},
		{"ctrl-@,ctrl-_", []byte{0, 31}, false},
		{"ctrl-1", nil, true},
		{"abc", nil, true},
	} {
		got, err := parseDetachKeys(tc.in)
		if (err != nil) != tc.err || string(got) != string(tc.want) {
			t.Errorf("parseDetachKeys(%q) = %v, %v", tc.in, got, err)
		}
	}

	// Input passes through, a broken partial match included; the full
	// sequence ends the stream.
	r := newEscapeProxy(strings.NewReader("ab\x10c\x10\x10\x11rest"), []byte{16, 17})
	b, err := io.ReadAll(r)
	if !errors.Is(err, errDetached) || string(b) != "ab\x10c\x10" {
		t.Errorf("read %q, %v", b, err)
	}
	b, err = io.ReadAll(newEscapeProxy(strings.NewReader("plain\x10"), []byte{16, 17}))
	if err != nil || string(b) != "plain\x10" {
		t.Errorf("read %q, %v", b, err)
	}
}
