package journald

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/logger"
)

func TestAppendField(t *testing.T) {
	if got := string(appendField(nil, "MESSAGE", []byte("hi"))); got != "MESSAGE=hi\n" {
		t.Errorf("plain: %q", got)
	}
	var want bytes.Buffer
	want.WriteString("ENV\n")
	binary.Write(&want, binary.LittleEndian, uint64(3))
	want.WriteString("a\nb\n")
	if got := appendField(nil, "ENV", []byte("a\nb")); !bytes.Equal(got, want.Bytes()) {
		t.Errorf("binary: %q want %q", got, want.Bytes())
	}
}

// The socket is configurable (JournaldConfig.Socket) for this test only:
// the engine never sets it, so containers always use the real journal.
func TestSend(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "socket")
	if _, err := Open(logger.JournaldConfig{Socket: sock}); !errors.Is(err, ErrNotEnabled) {
		t.Fatalf("no journal: %v", err)
	}
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	w, err := Open(logger.JournaldConfig{Socket: sock, Fields: []logger.Attr{{Key: "CONTAINER_NAME", Value: "web"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ts := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	w.WriteEntries([]logger.Entry{{Stream: "stderr", Line: []byte("aa"), Time: ts}, {Stream: "stderr", Line: []byte("bb\n"), Time: ts}})
	// Bigger than a datagram may be: sent as a file descriptor.
	big := strings.Repeat("x", 300<<10) + "\n"
	w.WriteEntries([]logger.Entry{{Stream: "stdout", Line: []byte(big), Time: ts}})
	buf := make([]byte, 1<<16)
	oob := make([]byte, 64)
	var msgs []string
	for i := 0; i < 3; i++ {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, oobn, _, _, err := pc.ReadMsgUnix(buf, oob)
		if err != nil {
			t.Fatal(err)
		}
		if oobn > 0 {
			msgs = append(msgs, "FD")
			continue
		}
		msgs = append(msgs, string(buf[:n]))
	}
	for i, m := range msgs[:2] {
		for _, want := range []string{"PRIORITY=3\n", "MESSAGE=" + []string{"aa", "bb"}[i] + "\n", "CONTAINER_NAME=web\n",
			"SYSLOG_TIMESTAMP=2024-01-02T03:04:05.000000006Z\n", "CONTAINER_PARTIAL_ORDINAL=" + []string{"1", "2"}[i] + "\n",
			"CONTAINER_PARTIAL_LAST=" + []string{"false", "true"}[i] + "\n", "CONTAINER_LOG_ORDINAL=" + []string{"1", "2"}[i] + "\n"} {
			if !strings.Contains(m, want) {
				t.Errorf("datagram %d lacks %q: %q", i, want, m)
			}
		}
		if !strings.HasPrefix(m, "PRIORITY=3\nMESSAGE=") {
			t.Errorf("datagram %d does not start with PRIORITY, MESSAGE: %q", i, m)
		}
	}
	if !strings.Contains(msgs[0], "CONTAINER_PARTIAL_MESSAGE=true\n") || strings.Contains(msgs[1], "CONTAINER_PARTIAL_MESSAGE") {
		t.Errorf("CONTAINER_PARTIAL_MESSAGE only on pieces before the last: %q", msgs[:2])
	}
	if msgs[2] != "FD" {
		t.Errorf("big record: %.80q", msgs[2])
	}
}
