package tests

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cli runs either front end: "docker" (the real docker CLI) or "skiff".
func (d *daemon) front(front string, args ...string) (string, string, int) {
	d.t.Helper()
	if front == "docker" {
		return d.docker(args...)
	}
	return d.skiff(args...)
}

func (d *daemon) cliMust(front string, args ...string) string {
	d.t.Helper()
	out, errOut, code := d.front(front, args...)
	if code != 0 {
		d.t.Fatalf("%s %s: exit %d\nstdout: %s\nstderr: %s", front, strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// syslogListener receives syslog messages on a loopback or unix socket.
type syslogListener struct {
	url  string // for syslog-address
	msgs chan string
}

func listenSyslog(t *testing.T, network string) *syslogListener {
	t.Helper()
	l := &syslogListener{msgs: make(chan string, 100)}
	dir := t.TempDir()
	switch network {
	case "udp", "unixgram":
		addr := "127.0.0.1:0"
		if network == "unixgram" {
			addr = filepath.Join(dir, "log.sock")
		}
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		if network == "udp" {
			l.url = "udp://" + pc.LocalAddr().String()
		} else {
			l.url = "unixgram://" + addr
		}
		go func() {
			buf := make([]byte, 64<<10)
			for {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				l.msgs <- string(buf[:n])
			}
		}()
	case "tcp", "unix":
		addr := "127.0.0.1:0"
		if network == "unix" {
			addr = filepath.Join(dir, "log.sock")
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		if network == "tcp" {
			l.url = "tcp://" + ln.Addr().String()
		} else {
			l.url = "unix://" + addr
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					// Stream transports carry one message per line.
					br := bufio.NewReader(c)
					for {
						s, err := br.ReadString('\n')
						if err != nil {
							return
						}
						l.msgs <- s
					}
				}()
			}
		}()
	}
	return l
}

// next returns the next n messages, sorted so that stdout's (priority ending
// in 6) come before stderr's: the two streams race.
func (l *syslogListener) next(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		select {
		case m := <-l.msgs:
			got = append(got, m)
		case <-time.After(10 * time.Second):
			t.Fatalf("syslog: got %d messages of %d: %q", len(got), n, got)
		}
	}
	return got
}

// TestLogDriverSyslog sends a container's stdout and stderr to a syslog
// listener over every transport, in every format, through both CLIs, and
// reads them back with `logs` from the local cache (dual logging).
func TestLogDriverSyslog(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	host, _ := os.Hostname()
	stamp := `[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d`
	rfc3339 := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d`
	zone := `(Z|[+-]\d\d:\d\d)`
	cases := []struct {
		front, network, format, facility string
		pri                              int // of stdout; stderr's is pri-3
		want                             string
	}{
		{"docker", "udp", "", "", 3<<3 | 6, `^<PRI>` + stamp + ` TAG\[(\d+)\]: MSG\n$`},
		{"skiff", "tcp", "rfc3164", "local3", 19<<3 | 6, `^<PRI>` + stamp + ` ` + regexp.QuoteMeta(host) + ` TAG\[(\d+)\]: MSG\n$`},
		{"docker", "unix", "rfc5424", "user", 1<<3 | 6, `^<PRI>1 ` + rfc3339 + zone + ` ` + regexp.QuoteMeta(host) + ` TAG (\d+) TAG - MSG\n$`},
		{"skiff", "unixgram", "rfc5424micro", "17", 17<<3 | 6, `^<PRI>1 ` + rfc3339 + `\.\d{6}` + zone + ` ` + regexp.QuoteMeta(host) + ` TAG (\d+) TAG - MSG\n$`},
		{"docker", "tcp", "rfc5424micro", "daemon", 3<<3 | 6, `^<PRI>1 ` + rfc3339 + `\.\d{6}` + zone + ` ` + regexp.QuoteMeta(host) + ` TAG (\d+) TAG - MSG\n$`},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%s-%s-%s", c.front, c.network, c.format), func(t *testing.T) {
			l := listenSyslog(t, c.network)
			name := fmt.Sprintf("sl%d", i)
			args := []string{"run", "-d", "--name", name, "--log-driver", "syslog", "--log-opt", "syslog-address=" + l.url}
			if c.format != "" {
				args = append(args, "--log-opt", "syslog-format="+c.format)
			}
			if c.facility != "" {
				args = append(args, "--log-opt", "syslog-facility="+c.facility)
			}
			tag := ""
			if i%2 == 0 {
				tag = "app-{{.Name}}"
				args = append(args, "--log-opt", "tag="+tag)
			}
			args = append(args, "busybox", "sh", "-c", "echo out; sleep 0.2; echo err >&2; echo; sleep 30")
			id := strings.TrimSpace(d.cliMust(c.front, args...))
			wantTag := id[:12] // the default tag
			if tag != "" {
				wantTag = "app-" + name
			}
			msgs := l.next(t, 2)
			var pid string
			for j, m := range msgs {
				pri, msg := c.pri, "out"
				if j == 1 {
					pri, msg = c.pri-3, "err"
				}
				re := strings.NewReplacer("PRI", strconv.Itoa(pri), "TAG", regexp.QuoteMeta(wantTag), "MSG", msg).Replace(c.want)
				sm := regexp.MustCompile(re).FindStringSubmatch(m)
				if sm == nil {
					t.Errorf("message %q does not match %s", m, re)
					continue
				}
				pid = sm[len(sm)-1]
			}
			// The PID is the container's monitor's, as dockerd's own is Docker's.
			if cmd, _ := os.ReadFile("/proc/" + pid + "/cmdline"); !bytes.Contains(cmd, []byte("monitor")) {
				t.Errorf("pid %s in the message is not the monitor: %q", pid, cmd)
			}
			// The empty line is not sent.
			select {
			case m := <-l.msgs:
				t.Errorf("unexpected message %q", m)
			case <-time.After(200 * time.Millisecond):
			}
			// Dual logging: logs reads the local cache.
			out, errOut, code := d.front(c.front, "logs", name)
			if code != 0 || out != "out\n\n" || errOut != "err\n" {
				t.Errorf("logs: exit %d stdout %q stderr %q", code, out, errOut)
			}
			d.cliMust(c.front, "rm", "-f", name)
		})
	}

	t.Run("cache", func(t *testing.T) {
		l := listenSyslog(t, "udp")
		// The cache rotates and compresses as its cache-* options say.
		d.cliMust("docker", "run", "--name", "cached", "--log-driver", "syslog", "--log-opt", "syslog-address="+l.url,
			"--log-opt", "cache-max-size=1k", "--log-opt", "cache-max-file=3", "--log-opt", "labels=team", "--label", "team=blue",
			"busybox", "sh", "-c", "for i in $(seq 1 100); do echo line$i; done")
		id := strings.TrimSpace(d.must("inspect", "-f", "{{.Id}}", "cached"))
		dir := filepath.Join(d.root, "data", "containers", id)
		for _, f := range []string{"container-cached.log", "container-cached.log.1.gz", "container-cached.log.2.gz"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("cache file: %v", err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "container-cached.log.3.gz")); err == nil {
			t.Errorf("cache-max-file=3 kept a fourth file")
		}
		out := d.cliMust("docker", "logs", "--tail", "2", "cached")
		if out != "line99\nline100\n" {
			t.Errorf("logs --tail 2: %q", out)
		}
		out = d.cliMust("docker", "logs", "--details", "--tail", "1", "cached")
		if out != "team=blue line100\n" {
			t.Errorf("logs --details: %q", out)
		}
		// cache-disabled: nothing to read, Docker's error.
		d.cliMust("docker", "run", "--name", "nocache", "--log-driver", "syslog", "--log-opt", "syslog-address="+l.url,
			"--log-opt", "cache-disabled=true", "busybox", "echo", "hi")
		_, errOut, code := d.docker("logs", "nocache")
		if code == 0 || !strings.Contains(errOut, "configured logging driver does not support reading") {
			t.Errorf("logs without cache: exit %d %q", code, errOut)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		// A TCP server that is not there fails the start, as Docker's dial does.
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		for _, front := range []string{"docker", "skiff"} {
			_, errOut, code := d.front(front, "run", "--rm", "--log-driver", "syslog", "--log-opt", "syslog-address=tcp://"+addr, "busybox", "true")
			if code != 125 || !strings.Contains(errOut, "failed to initialize logging driver: dial tcp "+addr+": connect: connection refused") {
				t.Errorf("%s: exit %d %q", front, code, errOut)
			}
		}
	})
}

// journalFields parses one native-protocol datagram.
func journalFields(t *testing.T, b []byte) map[string]string {
	t.Helper()
	f := map[string]string{}
	for len(b) > 0 {
		i := bytes.IndexAny(b, "=\n")
		if i < 0 {
			t.Fatalf("bad datagram rest %q", b)
		}
		name := string(b[:i])
		if b[i] == '=' {
			j := bytes.IndexByte(b[i:], '\n')
			f[name] = string(b[i+1 : i+j])
			b = b[i+j+1:]
			continue
		}
		n := binary.LittleEndian.Uint64(b[i+1:])
		f[name] = string(b[i+9 : i+9+int(n)])
		b = b[i+9+int(n)+1:]
	}
	return f
}

// TestLogDriverJournald runs containers with the journald driver against a
// datagram socket the test binds, seen by the daemon (and its monitors) at
// /run/systemd/journal/socket in a mount namespace of its own; and, on the
// host where no journal listens, checks Docker's error.
func TestLogDriverJournald(t *testing.T) {
	t.Parallel()
	t.Run("sends", func(t *testing.T) {
		var sock string
		// On a pure cgroup v2 view (the other log tests run on the host's v1).
		d := startDaemonSetup(t, true, func(d *daemon) {
			sd := filepath.Join(d.root, "run-systemd")
			os.MkdirAll(filepath.Join(sd, "journal"), 0o755)
			sock = filepath.Join(sd, "journal", "socket")
			d.nsSetup = "mount --bind " + sd + " /run/systemd"
		})
		pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		d.importBusybox()
		for _, front := range []string{"docker", "skiff"} {
			name := "jd-" + front
			d.cliMust(front, "run", "--name", name, "--log-driver", "journald", "--log-opt", "tag={{.ImageName}}/{{.Name}}",
				"--log-opt", "labels=com.example.team", "--label", "com.example.team=blue",
				"--log-opt", "env=MULTI", "-e", "MULTI=a\nb",
				"busybox", "sh", "-c", "echo out; sleep 0.2; echo err >&2")
			id := strings.TrimSpace(d.must("inspect", "-f", "{{.Id}}", name))
			buf := make([]byte, 1<<16)
			for i, want := range []struct{ pri, msg string }{{"6", "out"}, {"3", "err"}} {
				pc.SetReadDeadline(time.Now().Add(10 * time.Second))
				n, err := pc.Read(buf)
				if err != nil {
					t.Fatalf("%s: journal datagram %d: %v", front, i, err)
				}
				f := journalFields(t, buf[:n])
				exp := map[string]string{
					"PRIORITY": want.pri, "MESSAGE": want.msg, "CONTAINER_ID": id[:12], "CONTAINER_ID_FULL": id,
					"CONTAINER_NAME": name, "CONTAINER_TAG": "busybox/" + name, "SYSLOG_IDENTIFIER": "busybox/" + name,
					"IMAGE_NAME": "busybox", "COM_EXAMPLE_TEAM": "blue", "MULTI": "a\nb", "CONTAINER_LOG_ORDINAL": strconv.Itoa(i + 1),
				}
				for k, v := range exp {
					if f[k] != v {
						t.Errorf("%s: %s=%q, want %q (all: %q)", front, k, f[k], v, f)
					}
				}
				if _, err := time.Parse(time.RFC3339Nano, f["SYSLOG_TIMESTAMP"]); err != nil || len(f["CONTAINER_LOG_EPOCH"]) != 64 {
					t.Errorf("%s: SYSLOG_TIMESTAMP %q CONTAINER_LOG_EPOCH %q", front, f["SYSLOG_TIMESTAMP"], f["CONTAINER_LOG_EPOCH"])
				}
			}
			// Read back from the local cache.
			out, errOut, code := d.front(front, "logs", name)
			if code != 0 || out != "out\n" || errOut != "err\n" {
				t.Errorf("%s logs: exit %d %q %q", front, code, out, errOut)
			}
		}
	})
	t.Run("no journal", func(t *testing.T) {
		d := startDaemon(t)
		d.importBusybox()
		for _, front := range []string{"docker", "skiff"} {
			_, errOut, code := d.front(front, "run", "--rm", "--log-driver", "journald", "busybox", "true")
			if code != 125 || !strings.Contains(errOut, "failed to initialize logging driver: journald is not enabled on this host") {
				t.Errorf("%s: exit %d %q", front, code, errOut)
			}
		}
	})
}

// readJSONRecords reads a json-file log file, gzipped or not.
func readJSONRecords(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var x struct{ LastTime time.Time }
		if err := json.Unmarshal(zr.Header.Extra, &x); err != nil || x.LastTime.IsZero() {
			t.Errorf("%s: gzip header extra %q: want Docker's lastTime", path, zr.Header.Extra)
		}
		r = zr
	}
	var recs []map[string]any
	dec := json.NewDecoder(r)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		recs = append(recs, m)
	}
	return recs
}

// TestLogDriverJSONFileOptions: compress, labels, env, env-regex, tag, and
// mode=non-blocking take effect; logs reads rotated compressed files.
func TestLogDriverJSONFileOptions(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	for _, front := range []string{"docker", "skiff"} {
		name := "jf-" + front
		d.cliMust(front, "run", "--name", name, "--label", "team=blue", "--label", "tier=web", "-e", "STAGE=prod", "-e", "APP_X=1",
			"--log-opt", "max-size=2k", "--log-opt", "max-file=3", "--log-opt", "compress=true",
			"--log-opt", "labels=team", "--log-opt", "env=STAGE", "--log-opt", "env-regex=^APP_", "--log-opt", "tag={{.Name}}@{{.ImageName}}",
			"--log-opt", "mode=non-blocking", "--log-opt", "max-buffer-size=4m",
			"busybox", "sh", "-c", "for i in $(seq 1 200); do echo line$i; done")
		logPath := strings.TrimSpace(d.must("inspect", "-f", "{{.LogPath}}", name))
		for _, f := range []string{logPath, logPath + ".1.gz", logPath + ".2.gz"} {
			recs := readJSONRecords(t, f)
			if len(recs) == 0 {
				t.Fatalf("%s: empty", f)
			}
			attrs, _ := json.Marshal(recs[0]["attrs"])
			if want := `{"APP_X":"1","STAGE":"prod","tag":"` + name + `@busybox","team":"blue"}`; string(attrs) != want {
				t.Errorf("%s attrs %s, want %s", filepath.Base(f), attrs, want)
			}
		}
		for _, f := range []string{logPath + ".1", logPath + ".3.gz"} {
			if _, err := os.Stat(f); err == nil {
				t.Errorf("%s exists", f)
			}
		}
		// The attrs sit between stream and time, as Docker writes them.
		raw, _ := os.ReadFile(logPath)
		if !regexp.MustCompile(`^\{"log":"line\d+\\n","stream":"stdout","attrs":\{"APP_X":"1","STAGE":"prod","tag":"` + name + `@busybox","team":"blue"\},"time":"[^"]+"\}\n`).Match(raw) {
			t.Errorf("record layout: %.200s", raw)
		}
		// logs reads through the compressed files: the newest lines, in order.
		out := d.cliMust(front, "logs", name)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) < 25 || lines[len(lines)-1] != "line200" { // two full files of ~15 records and the live one
			t.Fatalf("logs: %d lines, last %q", len(lines), lines[len(lines)-1])
		}
		first, _ := strconv.Atoi(strings.TrimPrefix(lines[0], "line"))
		for i, l := range lines {
			if l != "line"+strconv.Itoa(first+i) {
				t.Fatalf("logs line %d: %q after line%d", i, l, first)
			}
		}
		if out := d.cliMust(front, "logs", "--details", "--tail", "1", name); out != "APP_X=1,STAGE=prod,tag="+name+"%40busybox,team=blue line200\n" {
			t.Errorf("logs --details: %q", out)
		}
	}
}

// TestLogDriverLocal: Docker's local format, its defaults and rotation, read
// back by logs (tail, timestamps, follow of a running container).
func TestLogDriverLocal(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	for _, front := range []string{"docker", "skiff"} {
		name := "lc-" + front
		d.cliMust(front, "run", "--name", name, "--log-driver", "local", "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
			"busybox", "sh", "-c", "for i in $(seq 1 100); do echo line$i; done; printf partial")
		id := strings.TrimSpace(d.must("inspect", "-f", "{{.Id}}", name))
		if lp := strings.TrimSpace(d.must("inspect", "-f", "{{.LogPath}}", name)); lp != "" {
			t.Errorf("LogPath %q: Docker does not expose the local driver's file", lp)
		}
		dir := filepath.Join(d.root, "data", "containers", id, "local-logs")
		// compress defaults to true for local.
		for _, f := range []string{"container.log", "container.log.1.gz", "container.log.2.gz"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%v", err)
			}
		}
		// Docker's framing: [size][protobuf LogEntry][size].
		raw, _ := os.ReadFile(filepath.Join(dir, "container.log"))
		if len(raw) < 8 {
			t.Fatalf("local log: %d bytes", len(raw))
		}
		n := binary.BigEndian.Uint32(raw)
		if int(n)+8 > len(raw) || binary.BigEndian.Uint32(raw[4+n:]) != n || raw[4] != 0x0a || string(raw[6:12]) != "stdout" {
			t.Errorf("first record % x", raw[:min(len(raw), 40)])
		}
		out := d.cliMust(front, "logs", "--tail", "3", name)
		if out != "line99\nline100\npartial" {
			t.Errorf("logs --tail 3: %q", out)
		}
	}
	// Follow a running container through rotations, several of them at a
	// time (bursts of 60 records, about two files): the follower reads the
	// files rotated behind its back.
	d.must("run", "-d", "--name", "lf", "--log-driver", "local", "--log-opt", "max-size=1k",
		"busybox", "sh", "-c", "sleep 0.5; for i in $(seq 1 300); do echo line$i; [ $((i % 60)) = 0 ] && sleep 0.2; done; true")
	out := d.must("logs", "-f", "lf")
	if !strings.HasPrefix(out, "line1\n") || !strings.HasSuffix(out, "line300\n") || strings.Count(out, "\n") != 300 {
		t.Errorf("logs -f: %d lines, %.40q ... %.40q", strings.Count(out, "\n"), out, out[max(0, len(out)-40):])
	}
}

// TestLogDriverNone: nothing is written, and logs gives Docker's error.
func TestLogDriverNone(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	for _, front := range []string{"docker", "skiff"} {
		name := "none-" + front
		d.cliMust(front, "run", "--name", name, "--log-driver", "none", "busybox", "echo", "hi")
		_, errOut, code := d.front(front, "logs", name)
		if code != 1 || !strings.Contains(errOut, "Error response from daemon: configured logging driver does not support reading") {
			t.Errorf("%s logs: exit %d %q", front, code, errOut)
		}
		id := strings.TrimSpace(d.must("inspect", "-f", "{{.Id}}", name))
		if m, _ := filepath.Glob(filepath.Join(d.root, "data", "containers", id, "*.log")); len(m) != 0 {
			t.Errorf("log files for none: %v", m)
		}
	}
}

// TestLogDriverErrors: unknown drivers and bad options fail with Docker's
// messages and exit 125 through run, with both CLIs.
func TestLogDriverErrors(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--log-driver", "fluentbit"}, "logger: no log driver named 'fluentbit' is registered"},
		{[]string{"--log-opt", "colour=red"}, "unknown log opt 'colour' for json-file log driver"},
		{[]string{"--log-driver", "local", "--log-opt", "syslog-address=udp://x"}, "unknown log opt 'syslog-address' for log driver local"},
		{[]string{"--log-driver", "syslog", "--log-opt", "max-size=1m"}, "unknown log opt 'max-size' for syslog log driver"},
		{[]string{"--log-driver", "journald", "--log-opt", "max-file=2"}, "unknown log opt 'max-file' for journald log driver"},
		{[]string{"--log-driver", "syslog", "--log-opt", "syslog-address=http://x"}, "unsupported scheme: 'http'"},
		// (The docker CLI makes this one exit 127: "no such file or directory".)
		{[]string{"--log-driver", "syslog", "--log-opt", "syslog-address=unix:///nonexistent/sock"}, "stat /nonexistent/sock: no such file or directory"},
		{[]string{"--log-driver", "syslog", "--log-opt", "syslog-facility=local9"}, "invalid syslog facility"},
		// Refused, not ignored: TLS would cost every monitor ~270 KiB.
		{[]string{"--log-driver", "syslog", "--log-opt", "syslog-address=tcp+tls://127.0.0.1:6514"}, "syslog-address tcp+tls is not supported by skiff"},
		{[]string{"--log-driver", "syslog", "--log-opt", "syslog-tls-skip-verify=true"}, "log opt 'syslog-tls-skip-verify' is not supported by skiff"},
		{[]string{"--log-driver", "syslog", "--log-opt", "syslog-format=rfc9999"}, "Invalid syslog format"},
		{[]string{"--log-opt", "mode=sometimes"}, "logger: logging mode not supported: sometimes"},
		{[]string{"--log-opt", "max-buffer-size=1m"}, "logger: max-buffer-size option is only supported with 'mode=non-blocking'"},
		{[]string{"--log-driver", "syslog", "--log-opt", "cache-disabled=maybe"}, "invalid value for option cache-disabled: maybe"},
		{[]string{"--log-opt", "compress=true"}, "compress cannot be true when max-file is less than 2 or max-size is not set"},
		{[]string{"--log-opt", "max-size=lots"}, "invalid size: 'lots'"},
		{[]string{"--log-opt", "max-file=0"}, "max-file cannot be less than 1"},
		{[]string{"--log-driver", "local", "--log-opt", "max-file=1"}, "compression cannot be enabled when max file count is 1"},
		{[]string{"--log-opt", "labels-regex=("}, "error parsing regexp: missing closing ): `(`"},
		{[]string{"--log-opt", "tag={{.Nope"}, "template: log-tag:1: unclosed action"},
	}
	for _, c := range cases {
		for _, front := range []string{"docker", "skiff"} {
			args := append(append([]string{"run", "--rm"}, c.args...), "busybox", "true")
			_, errOut, code := d.front(front, args...)
			want := 125
			if strings.Contains(c.want, "no such file or directory") {
				want = 127
			}
			if code != want || !strings.Contains(errOut, c.want) {
				t.Errorf("%s %v: exit %d %q, want %d and %q", front, c.args, code, errOut, want, c.want)
			}
		}
	}
	// A template that parses but fails on the container fails the start.
	_, errOut, code := d.docker("run", "--rm", "--log-opt", "tag={{.Nope}}", "busybox", "true")
	if code != 125 || !strings.Contains(errOut, "failed to initialize logging driver") || !strings.Contains(errOut, "can't evaluate field Nope") {
		t.Errorf("bad tag field: exit %d %q", code, errOut)
	}
}

// TestLogDriverDaemonDefaults: daemon.json log-driver and log-opts are the
// defaults of containers that name no driver; the default options apply
// only to the default driver, the cache options to all; info reports the
// default; bad defaults keep the daemon from starting.
func TestLogDriverDaemonDefaults(t *testing.T) {
	t.Parallel()
	d := startDaemonSetup(t, false, func(d *daemon) {
		d.extraConfig = `"log-driver": "local", "log-opts": {"max-size": "1k", "max-file": "2", "cache-disabled": "true"}`
	})
	d.importBusybox()
	if got := strings.TrimSpace(d.cliMust("docker", "info", "--format", "{{.LoggingDriver}} {{.Plugins.Log}}")); got != "local [journald json-file local syslog]" {
		t.Errorf("info LoggingDriver, Plugins.Log: %q", got)
	}
	d.cliMust("docker", "run", "--name", "def", "busybox", "sh", "-c", "for i in $(seq 1 100); do echo line$i; done")
	if got := strings.TrimSpace(d.must("inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}", "def")); got != `local {"cache-disabled":"true","max-file":"2","max-size":"1k"}` {
		t.Errorf("inspect LogConfig: %s", got)
	}
	id := strings.TrimSpace(d.must("inspect", "-f", "{{.Id}}", "def"))
	dir := filepath.Join(d.root, "data", "containers", id, "local-logs")
	if _, err := os.Stat(filepath.Join(dir, "container.log.1.gz")); err != nil {
		t.Errorf("rotation by the default max-size: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "container.log.2.gz")); err == nil {
		t.Errorf("default max-file=2 kept three files")
	}
	if out := d.cliMust("docker", "logs", "--tail", "1", "def"); out != "line100\n" {
		t.Errorf("logs: %q", out)
	}
	// Another driver: the defaults' max-size is not its own, the cache option is.
	d.cliMust("skiff", "run", "--name", "jf", "--log-driver", "json-file", "busybox", "echo", "hi")
	if got := strings.TrimSpace(d.must("inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}", "jf")); got != `json-file {"cache-disabled":"true"}` {
		t.Errorf("inspect LogConfig: %s", got)
	}

	// Defaults no container could use, from daemon.json or the flags: the
	// daemon refuses to start.
	cfg := filepath.Join(t.TempDir(), "daemon.json")
	os.WriteFile(cfg, []byte(`{"log-driver": "syslog", "log-opts": {"syslog-facility": "nope"}}`), 0o644)
	empty := filepath.Join(t.TempDir(), "empty.json")
	os.WriteFile(empty, []byte(`{}`), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--config-file", cfg}, "failed to set log opts: invalid syslog facility"},
		{[]string{"--config-file", empty, "--log-driver", "nope"}, "failed to set log opts: logger: no log driver named 'nope' is registered"},
		{[]string{"--config-file", empty, "--log-opt", "max-file=0"}, "failed to set log opts: max-file cannot be less than 1"},
	} {
		root := t.TempDir()
		args := append([]string{"daemon", "-H", "unix://" + filepath.Join(root, "s.sock"),
			"--data-root", filepath.Join(root, "data"), "--exec-root", filepath.Join(root, "exec")}, c.args...)
		out, err := exec.Command(filepath.Join(binDir, "skiff"), args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("daemon %v: %v %s", c.args, err, out)
		}
	}
}

// TestLogDriverCompose: compose's `logging:` with syslog works under both
// compose clients (docker compose v2 and Debian's docker-compose 1.29):
// the service's output reaches the listener, and `compose logs` reads it
// back from the cache.
func TestLogDriverCompose(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	clients := [][]string{{"docker", "compose"}, {"docker-compose"}}
	for i, client := range clients {
		t.Run(client[len(client)-1], func(t *testing.T) {
			if _, err := exec.LookPath(client[0]); err != nil {
				t.Fatalf("%s is not installed (hack/deps.sh installs it)", client[0])
			}
			useComposeClients(t, d)
			l := listenSyslog(t, "udp")
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(`services:
  app:
    image: busybox
    command: ["sh", "-c", "echo hello-compose; sleep 30"]
    network_mode: none
    logging:
      driver: syslog
      options:
        syslog-address: "`+l.url+`"
        syslog-format: rfc3164
        tag: "cmp-{{.Name}}"
`), 0o644)
			project := fmt.Sprintf("logcmp%d", i)
			compose := func(args ...string) (string, string, int) {
				all := append(append(append([]string{}, client[1:]...), "-p", project, "-f", filepath.Join(dir, "compose.yaml")), args...)
				return d.run(nil, client[0], all...)
			}
			defer compose("down", "-t", "0")
			if out, errOut, code := compose("up", "-d"); code != 0 {
				t.Fatalf("up: exit %d\n%s\n%s", code, out, errOut)
			}
			m := l.next(t, 1)[0]
			if !regexp.MustCompile(`^<30>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \S+ cmp-` + project + `[-_]app[-_]1\[\d+\]: hello-compose\n$`).MatchString(m) {
				t.Errorf("message %q", m)
			}
			out, errOut, code := compose("logs", "--no-color", "app")
			if code != 0 || !strings.Contains(out, "hello-compose") {
				t.Errorf("compose logs: exit %d %q %q", code, out, errOut)
			}
		})
	}
}
