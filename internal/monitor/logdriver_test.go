package monitor

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/logger"
	"github.com/skiff-dev/skiff/internal/logger/local"
)

// openLog composes the driver, its local cache and the non-blocking buffer
// from monitor.json's Log; a driver that cannot start is Docker's error.
func TestOpenLog(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cache := filepath.Join(t.TempDir(), "container-cached.log")
	d, err := openLog(&Config{Log: &logger.Config{Driver: logger.Syslog,
		Syslog:      &logger.SyslogConfig{Network: "udp", Address: pc.LocalAddr().String(), Facility: 3 << 3, Tag: "t"},
		Cache:       &logger.FileConfig{Path: cache, MaxSize: 1 << 20, MaxFiles: 2},
		Attrs:       []logger.Attr{{Key: "tag", Value: "t"}},
		NonBlocking: true, MaxBufferSize: 1 << 20,
	}})
	if err != nil {
		t.Fatal(err)
	}
	d.WriteEntries([]logger.Entry{{Stream: "stdout", Line: []byte("hello\n"), Time: time.Now()}})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1024)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil || !strings.HasSuffix(string(buf[:n]), "]: hello\n") {
		t.Errorf("syslog got %q %v", buf[:n], err)
	}
	var got []logger.Entry
	local.Read(context.Background(), cache, logger.ReadOptions{Tail: -1}, func(e logger.Entry) error { got = append(got, e); return nil })
	if len(got) != 1 || string(got[0].Line) != "hello\n" || len(got[0].Attrs) != 1 {
		t.Errorf("cache: %+v", got)
	}

	// none, and the legacy json-file fields.
	if d, err := openLog(&Config{Log: &logger.Config{Driver: logger.None}}); d != nil || err != nil {
		t.Errorf("none: %v %v", d, err)
	}
	if d, err := openLog(&Config{LogPath: filepath.Join(t.TempDir(), "x-json.log"), LogMaxFiles: 1}); d == nil || err != nil {
		t.Errorf("legacy json-file: %v %v", d, err)
	} else {
		d.Close()
	}
	_, err = openLog(&Config{Log: &logger.Config{Driver: logger.Journald, Journald: &logger.JournaldConfig{Socket: filepath.Join(t.TempDir(), "none")}}})
	if err == nil || err.Error() != "failed to initialize logging driver: journald is not enabled on this host" {
		t.Errorf("journald without a journal: %v", err)
	}
}
