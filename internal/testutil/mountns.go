package testutil

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// InMountNS runs fn on a thread of its own in a new mount namespace whose
// mounts are private, so whatever fn mounts is invisible to the host and
// goes away with the thread (never unlocked, so the Go runtime ends it),
// even when the test fails half way. It skips without root.
func InMountNS(t testing.TB, fn func() error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			errc <- err
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
