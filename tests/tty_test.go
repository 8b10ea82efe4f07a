package tests

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// term is a real terminal for the CLI under test: a tmux session on a
// private server, driven with send-keys and read with capture-pane.
type term struct {
	t      *testing.T
	server string
	name   string
}

func newTerm(t *testing.T, d *daemon, name string, width, height int, cmdline string) *term {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux not installed (%v): run hack/deps.sh", err)
	}
	if strings.HasPrefix(cmdline, "docker ") {
		needDockerCLI(t)
	}
	tm := &term{t: t, server: fmt.Sprintf("skiff-e2e-%d", os.Getpid()), name: name}
	// The command keeps the pane open after the CLI exits, so its exit code
	// can be read.
	script := fmt.Sprintf("export DOCKER_HOST=%s DOCKER_CONFIG=%s/dockercfg; %s; echo CLI-EXIT=$?; sleep 60", d.host, d.root, cmdline)
	tm.tmux("new-session", "-d", "-s", name, "-x", fmt.Sprint(width), "-y", fmt.Sprint(height), script)
	t.Cleanup(func() { tm.tmuxQuiet("kill-session", "-t", name) })
	return tm
}

func (tm *term) tmux(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", tm.server}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (tm *term) tmuxQuiet(args ...string) {
	exec.Command("tmux", append([]string{"-L", tm.server}, args...)...).Run()
	// The last session gone, the server exits by itself.
}

// send types keys (tmux key names: Enter, C-c, C-p ...).
func (tm *term) send(keys ...string) {
	tm.t.Helper()
	tm.tmux(append([]string{"send-keys", "-t", tm.name}, keys...)...)
}

// line types a line of text and Enter.
func (tm *term) line(s string) {
	tm.t.Helper()
	tm.tmux("send-keys", "-t", tm.name, "-l", s)
	tm.send("Enter")
}

func (tm *term) screen() string {
	return tm.tmux("capture-pane", "-p", "-t", tm.name)
}

// waitFor waits until the screen shows want and returns the screen.
func (tm *term) waitFor(want string) string {
	tm.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := tm.screen()
		if strings.Contains(s, want) {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("terminal %s never showed %q; screen:\n%s", tm.name, want, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTerminalRunAttachDetach(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()

	tm := newTerm(t, d, "run", 100, 30, "docker run -it --name tty1 busybox sh")
	tm.waitFor("/ #")
	// A pty of the container's own devpts, sized like the client's terminal.
	tm.line("tty; stty size")
	tm.waitFor("/dev/pts/0")
	tm.waitFor("30 100")
	// Window size follows the terminal (SIGWINCH → docker → resize).
	tm.tmux("resize-window", "-t", "run", "-x", "120", "-y", "40")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(tm.screen(), "40 120") {
		if time.Now().After(deadline) {
			t.Fatalf("size never followed the terminal:\n%s", tm.screen())
		}
		tm.line("stty size")
		time.Sleep(200 * time.Millisecond)
	}
	// Ctrl-C goes to the container's foreground process, not to the CLI.
	tm.line("sleep 100")
	time.Sleep(200 * time.Millisecond)
	tm.send("C-c")
	tm.line("echo rc=$((100+$?))")
	tm.waitFor("rc=230")
	// Ctrl-P Ctrl-Q detaches; the container runs on.
	tm.send("C-p", "C-q")
	tm.waitFor("CLI-EXIT=0")
	if out, _, _ := d.docker("inspect", "-f", "{{.State.Status}}", "tty1"); strings.TrimSpace(out) != "running" {
		t.Fatalf("after detach: status %q", out)
	}

	// attach to the running container; custom detach keys.
	at := newTerm(t, d, "attach", 80, 24, "docker attach --detach-keys ctrl-x,x tty1")
	time.Sleep(300 * time.Millisecond)
	at.line("echo again-$((40+2))")
	at.waitFor("again-42")
	at.send("C-x", "x")
	at.waitFor("CLI-EXIT=") // docker attach exits 1 after "read escape sequence"
	if out, _, _ := d.docker("inspect", "-f", "{{.State.Status}}", "tty1"); strings.TrimSpace(out) != "running" {
		t.Fatalf("after detach from attach: status %q", out)
	}

	// skiff's own CLI: attach, then exit the shell (the container stops).
	sk := newTerm(t, d, "skiff", 80, 24, binDir+"/skiff attach tty1")
	time.Sleep(300 * time.Millisecond)
	sk.line("echo skiff-$((1+2))")
	sk.waitFor("skiff-3")
	sk.line("exit 7")
	sk.waitFor("CLI-EXIT=7")
	if out, _, _ := d.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "tty1"); strings.TrimSpace(out) != "exited 7" {
		t.Fatalf("after exit: %q", out)
	}
	// Attaching to a stopped container is an error.
	if _, errOut, code := d.docker("attach", "tty1"); code == 0 || !strings.Contains(errOut, "cannot attach to a stopped container") {
		t.Fatalf("attach to stopped: exit %d: %s", code, errOut)
	}
	// start -ai gives the terminal back.
	st := newTerm(t, d, "startai", 80, 24, "docker start -ai tty1")
	st.waitFor("/ #")
	st.line("echo started-$((2*3))")
	st.waitFor("started-6")
	st.line("exit")
	st.waitFor("CLI-EXIT=0")
	d.must("rm", "tty1")
}

func TestTerminalExec(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	d.must("run", "-d", "--name", "ex1", "busybox", "sleep", "1000")

	tm := newTerm(t, d, "exec", 90, 20, "docker exec -it ex1 sh")
	tm.waitFor("/ #")
	tm.line("tty | sed s/pts/PTS/; stty size")
	tm.waitFor("/dev/PTS/")
	tm.waitFor("20 90")
	tm.tmux("resize-window", "-t", "exec", "-x", "95", "-y", "21")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(tm.screen(), "21 95") {
		if time.Now().After(deadline) {
			t.Fatalf("exec size never followed the terminal:\n%s", tm.screen())
		}
		tm.line("stty size")
		time.Sleep(200 * time.Millisecond)
	}
	tm.line("sleep 100")
	time.Sleep(200 * time.Millisecond)
	tm.send("C-c")
	tm.line("echo rc=$((100+$?))")
	tm.waitFor("rc=230")
	tm.line("exit 3")
	tm.waitFor("CLI-EXIT=3")

	// skiff's own CLI: run -it and exec -it.
	sr := newTerm(t, d, "skiffrun", 70, 15, binDir+"/skiff run -it --rm busybox sh")
	sr.waitFor("/ #")
	sr.line("stty size; tty")
	sr.waitFor("15 70")
	sr.waitFor("/dev/pts/0")
	sr.line("exit 4")
	sr.waitFor("CLI-EXIT=4")
	se := newTerm(t, d, "skiffexec", 70, 15, binDir+"/skiff exec -it ex1 sh")
	se.waitFor("/ #")
	se.line("echo in-$((3*3))")
	se.waitFor("in-9")
	se.line("exit")
	se.waitFor("CLI-EXIT=0")

	// -i without -t streams stdin, through both CLIs.
	out, errOut, code := d.run(strings.NewReader("hi there\n"), "docker", "run", "-i", "--rm", "busybox", "cat")
	if code != 0 || out != "hi there\n" {
		t.Fatalf("docker run -i: exit %d %q %s", code, out, errOut)
	}
	out, errOut, code = d.skiffIn(strings.NewReader("from skiff\n"), "exec", "-i", "ex1", "cat")
	if code != 0 || out != "from skiff\n" {
		t.Fatalf("skiff exec -i: exit %d %q %s", code, out, errOut)
	}
	d.must("rm", "-f", "ex1")
}
