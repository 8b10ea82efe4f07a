package tests

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dockerOK runs the docker CLI and fails the test unless it exits 0.
func (d *daemon) dockerOK(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.docker(args...)
	if code != 0 {
		d.t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// dockerFails runs the docker CLI, wants exit code and stderr containing msg.
func (d *daemon) dockerFails(code int, msg string, args ...string) {
	d.t.Helper()
	out, errOut, got := d.docker(args...)
	if got != code || !strings.Contains(errOut, msg) {
		d.t.Fatalf("docker %s: exit %d (want %d)\nstdout: %s\nstderr: %s\nwant stderr containing %q", strings.Join(args, " "), got, code, out, errOut, msg)
	}
}

// importStorageImage imports busybox plus /app (owned 1000:1001, 0750, with
// a 0640 file), a symlink /escape -> / and VOLUME /app as "stor".
func importStorageImage(t *testing.T, d *daemon) {
	t.Helper()
	src, err := os.Open(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(src)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(h)
		io.Copy(tw, tr)
	}
	mt := time.Unix(0, 0)
	tw.WriteHeader(&tar.Header{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1000, Gid: 1001, ModTime: mt})
	data := []byte("from the image\n")
	tw.WriteHeader(&tar.Header{Name: "app/conf", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1000, Gid: 1001, Size: int64(len(data)), ModTime: mt})
	tw.Write(data)
	tw.WriteHeader(&tar.Header{Name: "escape", Typeflag: tar.TypeSymlink, Linkname: "/", ModTime: mt})
	tw.Close()
	p := filepath.Join(d.root, "stor.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	d.dockerOK("import", "--change", "VOLUME /app", "--change", "CMD [\"sh\"]", p, "stor")
}

func volumeNames(d *daemon) []string {
	return strings.Fields(d.dockerOK("volume", "ls", "-q"))
}

func TestVolumes(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	importStorageImage(t, d)

	// create, ls with filter and format, inspect.
	d.dockerOK("volume", "create", "--label", "team=blue", "vol-a")
	d.dockerOK("volume", "create", "vol-b")
	if out := d.dockerOK("volume", "ls", "--filter", "label=team=blue", "--format", "{{.Name}} {{.Driver}}"); out != "vol-a local\n" {
		t.Fatalf("ls filtered: %q", out)
	}
	mp := strings.TrimSpace(d.dockerOK("volume", "inspect", "-f", "{{.Mountpoint}}", "vol-a"))
	if want := filepath.Join(d.root, "data", "volumes", "vol-a", "_data"); mp != want {
		t.Fatalf("mountpoint %q, want %q", mp, want)
	}
	if out := d.must("volume", "ls"); !strings.Contains(out, "DRIVER") || !strings.Contains(out, "vol-b") {
		t.Fatalf("skiff volume ls: %q", out)
	}

	// Data written through a volume survives the container and the engine.
	d.dockerOK("run", "--rm", "-v", "vol-a:/data", "busybox", "sh", "-c", "echo kept > /data/f")
	d.stop()
	d.start()
	if out := d.dockerOK("run", "--rm", "-v", "vol-a:/data:ro", "busybox", "cat", "/data/f"); out != "kept\n" {
		t.Fatalf("after restart: %q", out)
	}
	// :ro refuses writes.
	if _, errOut, code := d.docker("run", "--rm", "-v", "vol-a:/data:ro", "busybox", "touch", "/data/x"); code == 0 || !strings.Contains(errOut, "Read-only file system") {
		t.Fatalf("write to :ro volume: exit %d %s", code, errOut)
	}

	// In use: refused; nonexistent: not found.
	d.dockerOK("create", "--name", "user", "-v", "vol-a:/data", "busybox", "true")
	d.dockerFails(1, "volume is in use", "volume", "rm", "vol-a")
	d.dockerFails(1, "no such volume", "volume", "rm", "no-such-vol")
	if _, _, code := d.skiff("volume", "rm", "no-such-vol"); code != 1 {
		t.Fatalf("skiff volume rm missing: exit %d", code)
	}
	if out := d.dockerOK("volume", "ls", "-q", "--filter", "dangling=true"); strings.Contains(out, "vol-a") || !strings.Contains(out, "vol-b") {
		t.Fatalf("dangling: %q", out)
	}

	// --volumes-from NAME:ro
	if _, errOut, code := d.docker("run", "--rm", "--volumes-from", "user:ro", "busybox", "sh", "-c", "cat /data/f && touch /data/y"); code == 0 || !strings.Contains(errOut, "Read-only") {
		t.Fatalf("volumes-from ro: exit %d %s", code, errOut)
	}
	d.dockerOK("rm", "user")

	// Copy-up from the image's VOLUME into a new anonymous volume (owner and
	// modes kept), and into a new named one; rm -v and --rm remove the
	// anonymous ones only.
	before := len(volumeNames(d))
	d.dockerOK("create", "--name", "anon", "stor")
	mounts := d.dockerOK("inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}} {{len .Name}}{{end}}", "anon")
	if mounts != "volume /app true 64\n" {
		t.Fatalf("anonymous mount: %q", mounts)
	}
	src := strings.TrimSpace(d.dockerOK("inspect", "-f", "{{range .Mounts}}{{.Source}}{{end}}", "anon"))
	for p, want := range map[string]string{src: "drwxr-x--- 1000:1001", filepath.Join(src, "conf"): "-rw-r----- 1000:1001"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscallStat)
		if got := fi.Mode().String() + " " + itoa(st.Uid) + ":" + itoa(st.Gid); got != want {
			t.Fatalf("copy-up %s: %s, want %s", p, got, want)
		}
	}
	d.dockerOK("rm", "-v", "anon")
	if n := len(volumeNames(d)); n != before {
		t.Fatalf("rm -v left %d volumes, want %d", n, before)
	}
	if out := d.dockerOK("run", "--rm", "-v", "fresh:/app", "stor", "cat", "/app/conf"); out != "from the image\n" {
		t.Fatalf("copy-up into named volume: %q", out)
	}
	d.dockerOK("run", "--rm", "-v", "/anon2", "stor", "true")
	if names := volumeNames(d); len(names) != before+1 || !strings.Contains(strings.Join(names, " "), "fresh") {
		t.Fatalf("after --rm: %v", names)
	}

	// tmpfs-backed local volume.
	d.dockerOK("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=64m", "vol-t")
	if out := d.dockerOK("run", "--rm", "-v", "vol-t:/t", "busybox", "grep", " /t ", "/proc/mounts"); !strings.Contains(out, "tmpfs /t tmpfs") || !strings.Contains(out, "size=65536k") {
		t.Fatalf("tmpfs volume: %q", out)
	}

	// prune: anonymous only by default, all unused with -a.
	d.dockerOK("create", "--name", "keep", "-v", "/anon3", "busybox", "true")
	d.dockerOK("volume", "create", "--label", "com.docker.volume.anonymous=", "anon-lone")
	out := d.dockerOK("volume", "prune", "-f")
	if !strings.Contains(out, "anon-lone") || strings.Contains(out, "vol-b") {
		t.Fatalf("prune: %q", out)
	}
	d.dockerOK("volume", "prune", "-af")
	if names := volumeNames(d); len(names) != 1 {
		t.Fatalf("after prune -a: %v (want only keep's anonymous volume)", names)
	}
	d.dockerOK("rm", "-v", "keep")

	// Events.
	ev := d.dockerOK("events", "--since", "0", "--until", itoa(uint32(time.Now().Unix()+1)), "--filter", "type=volume", "--format", "{{.Action}} {{.Actor.ID}}")
	for _, want := range []string{"create fresh", "mount vol-a", "destroy vol-b"} {
		if !strings.Contains(ev, want) {
			t.Fatalf("events lack %q:\n%s", want, ev)
		}
	}
}

func TestMounts(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	importStorageImage(t, d)
	host := filepath.Join(d.root, "hostdir")

	// -v creates a missing host directory; :ro is enforced.
	d.dockerOK("run", "--rm", "-v", host+":/h", "busybox", "sh", "-c", "echo from-ctr > /h/f")
	if b, _ := os.ReadFile(filepath.Join(host, "f")); string(b) != "from-ctr\n" {
		t.Fatalf("bind write: %q", b)
	}
	if _, errOut, code := d.docker("run", "--rm", "-v", host+":/h:ro", "busybox", "touch", "/h/g"); code == 0 || !strings.Contains(errOut, "Read-only") {
		t.Fatalf(":ro bind: exit %d %s", code, errOut)
	}

	// --mount: bind with readonly and propagation, tmpfs with size and mode,
	// volume with volume-opt; inspect shows Docker's Mounts.
	d.dockerOK("create", "--name", "mm",
		"--mount", "type=bind,source="+host+",target=/b,readonly,bind-propagation=rslave",
		"--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770",
		"--mount", "type=volume,source=mv,target=/v,volume-opt=type=tmpfs,volume-opt=device=tmpfs",
		"busybox", "sh", "-c", "grep -E ' /(t|v|b) ' /proc/mounts; stat -c %a /t")
	want := "bind " + host + " /b false rslave|tmpfs  /t true |volume " + filepath.Join(d.root, "data", "volumes", "mv", "_data") + " /v true |"
	if got := d.dockerOK("inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Source}} {{.Destination}} {{.RW}} {{.Propagation}}|{{end}}", "mm"); strings.TrimSpace(got) != want {
		t.Fatalf("Mounts:\n got %q\nwant %q", got, want)
	}
	out := d.dockerOK("start", "-a", "mm")
	if !strings.Contains(out, "/t tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=1770") || !strings.Contains(out, "tmpfs /v tmpfs") || !strings.Contains(out, " /b ") || !strings.HasSuffix(out, "1770\n") {
		t.Fatalf("--mount in the container:\n%s", out)
	}
	d.dockerOK("rm", "mm")
	d.dockerOK("volume", "rm", "mv")

	// --read-only root with writable volumes and tmpfs.
	out = d.dockerOK("run", "--rm", "--read-only", "-v", "/data", "--tmpfs", "/run:size=1m", "busybox", "sh", "-c", "touch /data/a && touch /run/b && echo ok; touch /c 2>&1; true")
	if !strings.Contains(out, "ok") || !strings.Contains(out, "Read-only file system") {
		t.Fatalf("--read-only: %q", out)
	}

	// Refused: malformed --mount, missing --mount bind source, /proc
	// destinations, relative destinations, duplicates.
	d.dockerFails(125, "bind source path does not exist", "run", "--rm", "--mount", "type=bind,source=/no/such/dir,target=/x", "busybox", "true")
	d.dockerFails(125, "invalid argument", "run", "--rm", "--mount", "type=bind,source", "busybox", "true")
	d.dockerFails(125, "inside /proc", "run", "--rm", "-v", host+":/proc/evil", "busybox", "true")
	d.dockerFails(125, "Duplicate mount point", "run", "--rm", "-v", host+":/x", "-v", "vv:/x", "busybox", "true")
	d.dockerFails(125, "mount path must be absolute", "run", "--rm", "--mount", "type=volume,target=rel", "busybox", "true")
	if _, _, code := d.skiff("run", "--rm", "--mount", "type=bind,source=/no/such/dir,target=/x", "busybox", "true"); code != 125 {
		t.Fatalf("skiff run with missing bind source: exit %d", code)
	}

	// A destination through a symlink in the image (/escape -> /) lands
	// inside the container's root, never on the host.
	marker := "skiff-e2e-escape-" + filepath.Base(d.root)
	d.dockerOK("run", "--rm", "-v", host+":/escape/"+marker, "stor", "sh", "-c", "test -f /"+marker+"/f")
	if _, err := os.Stat("/" + marker); err == nil {
		os.RemoveAll("/" + marker)
		t.Fatalf("a mount destination through a symlink created /%s on the host", marker)
	}
}

func TestCp(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	src := filepath.Join(d.root, "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "a"), []byte("alpha\n"), 0o640)
	os.WriteFile(filepath.Join(src, "sub", "b"), []byte("beta\n"), 0o600)
	os.Symlink("a", filepath.Join(src, "lnk"))
	os.Chown(filepath.Join(src, "a"), 1234, 4321)
	secret := filepath.Join(d.root, "secret")
	os.MkdirAll(secret, 0o755)
	os.WriteFile(filepath.Join(secret, "s"), []byte("HOST SECRET\n"), 0o644)

	d.dockerOK("run", "-d", "--name", "cc", "-v", "cpvol:/vol", "busybox", "sleep", "300")
	// Into a running container: modes kept, owner root without -a, kept with -a.
	d.dockerOK("cp", src, "cc:/tmp/")
	out := d.dockerOK("exec", "cc", "sh", "-c", "stat -c '%n %a %u:%g' /tmp/src/a /tmp/src/sub/b; readlink /tmp/src/lnk; cat /tmp/src/sub/b")
	if out != "/tmp/src/a 640 0:0\n/tmp/src/sub/b 600 0:0\na\nbeta\n" {
		t.Fatalf("cp in: %q", out)
	}
	d.dockerOK("cp", "-a", filepath.Join(src, "a"), "cc:/tmp/a2")
	if out := d.dockerOK("exec", "cc", "stat", "-c", "%u:%g", "/tmp/a2"); out != "1234:4321\n" {
		t.Fatalf("cp -a owner: %q", out)
	}
	// Out of a running container, to a file and to stdout; -L follows.
	dst := filepath.Join(d.root, "out")
	d.dockerOK("cp", "cc:/tmp/src", dst)
	if b, _ := os.ReadFile(filepath.Join(dst, "sub", "b")); string(b) != "beta\n" {
		t.Fatalf("cp out: %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "lnk")); l != "a" {
		t.Fatalf("cp out symlink: %q", l)
	}
	d.dockerOK("cp", "-L", "cc:/tmp/src/lnk", filepath.Join(d.root, "followed"))
	if b, _ := os.ReadFile(filepath.Join(d.root, "followed")); string(b) != "alpha\n" {
		t.Fatalf("cp -L: %q", b)
	}
	tarOut := d.dockerOK("cp", "cc:/tmp/src/sub", "-")
	names := tarNames(t, tarOut)
	if names != "sub/ sub/b" {
		t.Fatalf("cp to stdout: %q", names)
	}
	// From stdin.
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "fromstdin", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("in\n"))
	tw.Close()
	if _, errOut, code := d.run(&tb, "docker", "cp", "-", "cc:/tmp"); code != 0 {
		t.Fatalf("cp from stdin: %s", errOut)
	}
	if out := d.dockerOK("exec", "cc", "cat", "/tmp/fromstdin"); out != "in\n" {
		t.Fatalf("cp stdin: %q", out)
	}

	// Links in the container that point at host paths resolve inside it.
	d.dockerOK("exec", "cc", "sh", "-c", "ln -s "+secret+" /abs; ln -s ../../../../../../.."+secret+" /rel; ln -s / /root-link")
	for _, p := range []string{"cc:/abs/s", "cc:/rel/s", "cc:/root-link" + secret + "/s"} {
		d.dockerFails(1, "Could not find the file", "cp", p, filepath.Join(d.root, "leak"))
	}
	// (Docker follows the link inside the container, where its target's
	// parent does not exist: an error, and nothing written anywhere.)
	d.docker("cp", filepath.Join(src, "a"), "cc:/abs/")
	d.docker("cp", filepath.Join(src, "a"), "cc:/root-link"+secret+"/")
	if entries, _ := os.ReadDir(secret); len(entries) != 1 {
		t.Fatalf("cp through a link wrote into the host: %v", entries)
	}
	// Errors.
	d.dockerFails(1, "Could not find the file /nope", "cp", "cc:/nope", filepath.Join(d.root, "x"))
	d.dockerFails(1, "Could not find the file /no/such", "cp", filepath.Join(src, "a"), "cc:/no/such/file")

	// Stopped container: both ways, including into its volume.
	d.dockerOK("stop", "-t", "0", "cc")
	d.dockerOK("cp", filepath.Join(src, "sub"), "cc:/tmp/stopped")
	d.dockerOK("cp", filepath.Join(src, "a"), "cc:/vol/a")
	d.dockerOK("cp", "cc:/tmp/stopped/b", filepath.Join(d.root, "b-from-stopped"))
	if b, _ := os.ReadFile(filepath.Join(d.root, "b-from-stopped")); string(b) != "beta\n" {
		t.Fatalf("cp out of stopped: %q", b)
	}
	d.dockerFails(1, "Could not find the file", "cp", "cc:/abs/s", filepath.Join(d.root, "leak"))
	d.dockerOK("start", "cc")
	if out := d.dockerOK("exec", "cc", "cat", "/tmp/stopped/b", "/vol/a"); out != "beta\nalpha\n" {
		t.Fatalf("after cp into stopped: %q", out)
	}
	// skiff's own cp.
	d.must("cp", "cc:/tmp/src/a", filepath.Join(d.root, "skiff-a"))
	if b, _ := os.ReadFile(filepath.Join(d.root, "skiff-a")); string(b) != "alpha\n" {
		t.Fatalf("skiff cp out: %q", b)
	}
	d.must("cp", src, "cc:/skiffsrc")
	if out := d.dockerOK("exec", "cc", "cat", "/skiffsrc/sub/b"); out != "beta\n" {
		t.Fatalf("skiff cp in: %q", out)
	}
	if _, _, code := d.skiff("cp", "cc:/nope", filepath.Join(d.root, "x")); code != 1 {
		t.Fatalf("skiff cp missing: exit %d", code)
	}
	d.dockerOK("rm", "-f", "-v", "cc")
	d.dockerOK("volume", "rm", "cpvol")
}

func tarNames(t *testing.T, s string) string {
	t.Helper()
	tr := tar.NewReader(strings.NewReader(s))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	return strings.Join(names, " ")
}
