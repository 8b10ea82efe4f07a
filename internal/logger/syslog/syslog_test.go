package syslog

import (
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/logger"
)

func TestFormat(t *testing.T) {
	time.Local = time.FixedZone("CET", 3600)
	ts := time.Date(2024, 3, 5, 6, 7, 8, 123456789, time.UTC)
	cases := []struct {
		format string
		want   string
	}{
		{"", "<30>Mar  5 07:07:08 tag[42]: hello\n"},
		{"rfc3164", "<30>Mar  5 07:07:08 host tag[42]: hello\n"},
		{"rfc5424", "<30>1 2024-03-05T07:07:08+01:00 host tag 42 tag - hello\n"},
		{"rfc5424micro", "<30>1 2024-03-05T07:07:08.123456+01:00 host tag 42 tag - hello\n"},
	}
	for _, c := range cases {
		got := string(Format([]byte("x"), c.format, 3<<3|6, ts, "host", "tag", "42", []byte("hello")))
		if got != "x"+c.want {
			t.Errorf("%s: got %q want %q", c.format, got, "x"+c.want)
		}
	}
}

// Over UDP: one datagram per record, severity by stream, the facility, no
// message for an empty line; a TCP server that is gone fails the open.
func TestWriteUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	w, err := Open(logger.SyslogConfig{Network: "udp", Address: pc.LocalAddr().String(), Facility: 16 << 3, Tag: "web"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.WriteEntries([]logger.Entry{{Stream: "stdout", Line: []byte("out\n")}, {Stream: "stdout", Line: []byte("\n")}})
	w.WriteEntries([]logger.Entry{{Stream: "stderr", Line: []byte("err")}})
	pid := strconv.Itoa(os.Getpid())
	buf := make([]byte, 4096)
	for _, want := range []string{"<134>", "<131>"} {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		m := string(buf[:n])
		if m[:5] != want || m[len(m)-len("web["+pid+"]: out\n"):] != "web["+pid+"]: out\n" && want == "<134>" ||
			want == "<131>" && m[len(m)-len("web["+pid+"]: err\n"):] != "web["+pid+"]: err\n" {
			t.Errorf("message %q, want priority %s", m, want)
		}
	}
	pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _, err := pc.ReadFrom(buf); err == nil {
		t.Errorf("unexpected message %q", buf[:n])
	}

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Open(logger.SyslogConfig{Network: "tcp", Address: addr}); err == nil {
		t.Error("open of a closed TCP port succeeded")
	}
}
