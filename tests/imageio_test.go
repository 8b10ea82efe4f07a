package tests

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tarFiles lists an archive: regular files with their content, other
// entries with nil.
func tarFiles(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		var body []byte
		if h.Typeflag == tar.TypeReg {
			body, _ = io.ReadAll(tr)
			if body == nil {
				body = []byte{}
			}
		}
		out[strings.TrimPrefix(h.Name, "./")] = body
	}
}

func (d *daemon) dockerMust(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.docker(args...)
	if code != 0 {
		d.t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// dockerIn runs the docker CLI with stdin.
func (d *daemon) dockerIn(stdin io.Reader, args ...string) (string, string, int) {
	d.t.Helper()
	needDockerCLI(d.t)
	return d.run(stdin, "docker", args...)
}

// TestSaveLoad: docker save to stdout and skiff save -o, both checked
// against the layout; rmi; load back from stdin (docker) and -i (skiff);
// the image runs.
func TestSaveLoad(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	d.must("tag", "busybox", "example.com/sl/extra:v1")

	archive := d.dockerMust("save", "busybox", "example.com/sl/extra:v1")
	files := tarFiles(t, []byte(archive))
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %q", files["oci-layout"])
	}
	for name, b := range files {
		if h, ok := strings.CutPrefix(name, "blobs/sha256/"); ok && b != nil {
			sum := sha256.Sum256(b)
			if hex.EncodeToString(sum[:]) != h {
				t.Errorf("%s does not hash to its name", name)
			}
		}
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatalf("manifest.json: %v\n%s", err, files["manifest.json"])
	}
	if len(manifest) != 1 || strings.Join(manifest[0].RepoTags, ",") != "busybox:latest,example.com/sl/extra:v1" ||
		len(manifest[0].Layers) != 1 || files[manifest[0].Layers[0]] == nil || files[manifest[0].Config] == nil {
		t.Fatalf("manifest.json = %s", files["manifest.json"])
	}
	if _, ok := files["bin/busybox"]; ok {
		t.Fatal("save wrote a filesystem, not an image archive")
	}
	id := strings.TrimSpace(d.must("image", "inspect", "-f", "{{.Id}}", "busybox"))

	// GET /images/{name}/get is the same archive for one name; a missing
	// name is a 404 before any byte.
	one, err := d.cli.ImageSave(context.Background(), []string{"example.com/sl/extra:v1"})
	if err != nil {
		t.Fatal(err)
	}
	viaGet, _ := io.ReadAll(one)
	one.Close()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", d.sock)
	}}}
	resp, err := hc.Get("http://skiff/v1.47/images/example.com/sl/extra:v1/get")
	if err != nil {
		t.Fatal(err)
	}
	viaName, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-tar" || !bytes.Equal(viaName, viaGet) {
		t.Errorf("GET /images/NAME/get: %d %s, %d bytes (want %d)", resp.StatusCode, resp.Header.Get("Content-Type"), len(viaName), len(viaGet))
	}
	resp, err = hc.Get("http://skiff/images/get?names=busybox&names=nosuch")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("save of a missing image: %d", resp.StatusCode)
	}

	// skiff save -o, then remove everything and load it back with docker.
	file := filepath.Join(d.root, "images.tar")
	d.must("save", "-o", file, "busybox", "example.com/sl/extra:v1")
	if b, _ := os.ReadFile(file); !bytes.Equal(b, []byte(archive)) {
		t.Error("skiff save and docker save (same daemon) gave different archives")
	}
	d.must("rmi", "busybox", "example.com/sl/extra:v1")
	f, _ := os.Open(file)
	out, errOut, code := d.dockerIn(f, "load")
	f.Close()
	if code != 0 || !strings.Contains(out, "Loaded image: busybox:latest") || !strings.Contains(out, "Loaded image: example.com/sl/extra:v1") {
		t.Fatalf("docker load: %d %q %q", code, out, errOut)
	}
	if got := strings.TrimSpace(d.must("image", "inspect", "-f", "{{.Id}}", "example.com/sl/extra:v1")); got != id {
		t.Errorf("loaded id %s, saved %s", got, id)
	}
	// A loaded image has no registry digest (as with dockerd's own store).
	if out := d.dockerMust("images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}}", "busybox"); out != "busybox:latest <none>\n" {
		t.Errorf("images --digests: %q", out)
	}
	if out := d.must("run", "--rm", "busybox", "echo", "loaded"); out != "loaded\n" {
		t.Errorf("run loaded image: %q", out)
	}

	// skiff load -i of docker's archive after rmi by id; -q prints only the names.
	d.must("rmi", "-f", id)
	os.WriteFile(file, []byte(archive), 0o644)
	out = d.must("load", "-q", "-i", file)
	if !strings.Contains(out, "Loaded image: busybox:latest") {
		t.Errorf("skiff load: %q", out)
	}
	if out := d.must("run", "--rm", "example.com/sl/extra:v1", "cat", "/etc/group"); !strings.Contains(out, "root:x:0:") {
		t.Errorf("run loaded image: %q", out)
	}
	// Not an archive: a clear error.
	_, errOut, code = d.skiffIn(strings.NewReader("no archive here"), "load")
	if code == 0 || !strings.Contains(errOut, "archive") {
		t.Errorf("load of garbage: exit %d, %q", code, errOut)
	}
}

// legacyDockerArchive is what `docker save` wrote before Docker 25, built
// by that format's spec: <v1id>/{VERSION,json,layer.tar}, <config>.json,
// manifest.json and repositories, the layers uncompressed.
func legacyDockerArchive(t *testing.T, rootfs []byte, tag string) []byte {
	t.Helper()
	extra := tarOf(t, map[string]string{"etc/legacy": "from the old format\n"})
	var diffs []string
	for _, l := range [][]byte{rootfs, extra} {
		s := sha256.Sum256(l)
		diffs = append(diffs, "sha256:"+hex.EncodeToString(s[:]))
	}
	cfg := []byte(`{"architecture":"amd64","os":"linux","created":"2020-01-01T00:00:00Z","config":{"Cmd":["cat","/etc/legacy"],"Env":["PATH=/bin"]},` +
		`"history":[{"created":"2020-01-01T00:00:00Z","created_by":"/bin/sh -c #(nop) ADD file:rootfs in / "},{"created":"2020-01-01T00:00:00Z","created_by":"/bin/sh -c echo legacy > /etc/legacy"}],` +
		`"rootfs":{"type":"layers","diff_ids":["` + strings.Join(diffs, `","`) + `"]}}`)
	cs := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(cs[:]) + ".json"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(1577836800, 0)})
		tw.Write(b)
	}
	var layers []string
	for i, l := range [][]byte{rootfs, extra} {
		v1 := strings.Repeat(string(rune('a'+i)), 64)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: v1 + "/", Mode: 0o755, ModTime: time.Unix(1577836800, 0)})
		add(v1+"/VERSION", []byte("1.0"))
		add(v1+"/json", []byte(`{"id":"`+v1+`"}`))
		add(v1+"/layer.tar", l)
		layers = append(layers, v1+"/layer.tar")
	}
	add(cfgName, cfg)
	mj, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{tag}, "Layers": layers}})
	add("manifest.json", mj)
	add("repositories", []byte(`{"`+strings.Split(tag, ":")[0]+`":{"`+strings.Split(tag, ":")[1]+`":"`+strings.Repeat("b", 64)+`"}}`))
	tw.Close()
	return buf.Bytes()
}

func tarOf(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755, ModTime: time.Unix(1577836800, 0)})
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1577836800, 0)})
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

// TestLoadLegacyArchiveAndHistory loads a pre-25 docker save archive and
// checks history's rows (docker and skiff CLIs) against it.
func TestLoadLegacyArchiveAndHistory(t *testing.T) {
	d := startDaemon(t)
	rootfs, err := os.ReadFile(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	ar := legacyDockerArchive(t, rootfs, "legacy/app:1")
	d.must("import", busyboxTar, "legacy/app:1")
	old := strings.TrimSpace(d.must("image", "inspect", "-f", "{{.Id}}", "legacy/app:1"))
	out, errOut, code := d.skiffIn(bytes.NewReader(ar), "load")
	if code != 0 || out != "The image legacy/app:1 already exists, renaming the old one with ID "+old+" to empty string\nLoaded image: legacy/app:1\n" {
		t.Fatalf("load: %d %q %q", code, out, errOut)
	}
	if out := d.must("run", "--rm", "legacy/app:1"); out != "from the old format\n" {
		t.Errorf("run: %q", out)
	}
	rows := d.dockerMust("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}|{{.Comment}}", "legacy/app:1")
	lines := strings.Split(strings.TrimSpace(rows), "\n")
	if len(lines) != 2 || lines[0] != "/bin/sh -c echo legacy > /etc/legacy|20B|" || !strings.HasPrefix(lines[1], "/bin/sh -c #(nop) ADD file:rootfs in / |") {
		t.Errorf("docker history rows:\n%s", rows)
	}
	// skiff's table is docker's, to the byte.
	for _, args := range [][]string{{"history", "legacy/app:1"}, {"history", "--no-trunc", "legacy/app:1"}, {"history", "-H=false", "legacy/app:1"}} {
		if table, want := d.must(args...), d.dockerMust(args...); table != want {
			t.Errorf("skiff %v:\n%s\ndocker:\n%s", args, table, want)
		}
	}
	if q := d.must("history", "-q", "legacy/app:1"); len(strings.Fields(q)) != 2 {
		t.Errorf("history -q: %q", q)
	}
}

// TestCommitExport: a container creates and deletes files; commit (with
// -c, -m, -a) gives an image that shows both; export gives its flattened
// filesystem; history shows the new row.
func TestCommitExport(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	d.must("run", "--name", "ce-src", "busybox", "sh", "-c", "echo new > /etc/newfile && rm /etc/notexec && mkdir -p /var/x && echo y > /var/x/y")
	out := d.dockerMust("commit", "-c", "ENV COMMITTED=yes", "-m", "my change", "-a", "Ann <ann@example.com>", "ce-src", "example.com/ce:v1")
	if !strings.HasPrefix(out, "sha256:") {
		t.Fatalf("commit printed %q", out)
	}
	out = d.must("run", "--rm", "example.com/ce:v1", "sh", "-c", "cat /etc/newfile /var/x/y; test -e /etc/notexec && echo still there; echo $COMMITTED")
	if out != "new\ny\nyes\n" {
		t.Errorf("run committed image: %q", out)
	}
	if a := d.must("image", "inspect", "-f", "{{.Author}}|{{.Comment}}|{{len .RootFS.Layers}}", "example.com/ce:v1"); a != "Ann <ann@example.com>|my change|2\n" {
		t.Errorf("inspect: %q", a)
	}
	h := d.dockerMust("history", "--format", "{{.CreatedBy}}|{{.Comment}}", "example.com/ce:v1")
	if first := strings.Split(h, "\n")[0]; !strings.HasPrefix(first, "sh -c echo new > /etc/newfile") || !strings.HasSuffix(first, "|my change") {
		t.Errorf("history: %q", h)
	}
	// A commit of a container without changes adds no layer.
	d.must("create", "--name", "ce-empty", "busybox", "true")
	d.must("commit", "ce-empty", "example.com/ce:empty")
	if n := d.must("image", "inspect", "-f", "{{len .RootFS.Layers}}", "example.com/ce:empty"); n != "1\n" {
		t.Errorf("empty commit has %s layers", n)
	}

	// export: to stdout (docker) and -o (skiff).
	exp := d.dockerMust("export", "ce-src")
	files := tarFiles(t, []byte(exp))
	if string(files["etc/newfile"]) != "new\n" || files["bin/busybox"] == nil {
		t.Errorf("export lacks files: %d entries", len(files))
	}
	if _, ok := files["etc/notexec"]; ok {
		t.Error("export has the deleted file")
	}
	for name := range files {
		if strings.Contains(name, ".wh.") {
			t.Errorf("export has a whiteout: %s", name)
		}
	}
	file := filepath.Join(d.root, "exp.tar")
	d.must("export", "-o", file, "ce-src")
	b, _ := os.ReadFile(file)
	if f2 := tarFiles(t, b); string(f2["var/x/y"]) != "y\n" {
		t.Error("skiff export -o lacks /var/x/y")
	}
	// Round trip through import.
	d.must("import", file, "example.com/ce:imported")
	if out := d.must("run", "--rm", "example.com/ce:imported", "cat", "/etc/newfile"); out != "new\n" {
		t.Errorf("run imported export: %q", out)
	}
	if _, errOut, code := d.docker("export", "-o", file, "nosuch"); code == 0 || !strings.Contains(errOut, "No such container") {
		t.Errorf("export of a missing container: %d %q", code, errOut)
	}

	// A running container: commit (--pause is accepted) and export see
	// what it wrote so far; no mount is left behind (checked at cleanup).
	d.must("run", "-d", "--name", "ce-live", "busybox", "sh", "-c", "echo live > /live && exec sleep 60")
	for i := 0; ; i++ {
		if _, _, code := d.skiff("exec", "ce-live", "test", "-e", "/live"); code == 0 {
			break
		}
		if i > 100 {
			t.Fatal("container did not write /live")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if f := tarFiles(t, []byte(d.dockerMust("export", "ce-live"))); string(f["live"]) != "live\n" {
		t.Error("export of a running container lacks /live")
	}
	// --pause (the default) freezes it while the layer is read, as dockerd
	// does (pause and unpause events); --pause=false does not.
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	d.dockerMust("commit", "ce-live", "example.com/ce:live")
	d.dockerMust("commit", "--pause=false", "ce-live", "example.com/ce:live2")
	until := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
	ev := d.must("events", "--since", since, "--until", until, "--filter", "container=ce-live",
		"--filter", "event=pause", "--filter", "event=unpause", "--filter", "event=commit", "--format", "{{.Action}}")
	if got := strings.Fields(ev); !slices.Equal(got, []string{"pause", "commit", "unpause", "commit"}) {
		t.Errorf("events of two commits, the first paused: %q", got)
	}
	if st := d.must("inspect", "-f", "{{.State.Status}}", "ce-live"); st != "running\n" {
		t.Errorf("after commit the container is %q", st)
	}
	if out := d.must("run", "--rm", "example.com/ce:live", "cat", "/live"); out != "live\n" {
		t.Errorf("run commit of a running container: %q", out)
	}
}

// diskUse is the space the files under dir take.
func diskUse(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// TestImagePruneAndDF: prune removes dangling (then, with -a, unused)
// images and returns the disk to where it was; system df counts.
func TestImagePruneAndDF(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	data := filepath.Join(d.root, "data")
	before := diskUse(data)

	// A dangling image (a commit without a name) and a tagged one.
	d.must("run", "--name", "pr-src", "busybox", "sh", "-c", "head -c 300000 /bin/busybox > /big")
	d.must("commit", "pr-src")
	d.must("commit", "pr-src", "example.com/pr:keep")
	d.must("rm", "pr-src")

	df := d.dockerMust("system", "df")
	if !strings.HasPrefix(df, "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\nImages          3         0") ||
		!strings.Contains(df, "Local Volumes   0         0         0B        0B") || !strings.Contains(df, "Build Cache     0         0         0B        0B") {
		t.Errorf("system df:\n%s", df)
	}

	// Filters: nothing is older than an hour, nothing has the label.
	for _, f := range []string{"until=1h", "label=nosuch"} {
		if out := d.dockerMust("image", "prune", "-a", "-f", "--filter", f); out != "Total reclaimed space: 0B\n" {
			t.Errorf("prune --filter %s:\n%s", f, out)
		}
	}
	out := d.dockerMust("image", "prune", "-f")
	if !strings.Contains(out, "Deleted Images:\ndeleted: sha256:") || strings.Contains(out, "untagged") {
		t.Errorf("image prune:\n%s", out)
	}
	if imgs := d.must("images", "-q"); len(strings.Fields(imgs)) != 2 {
		t.Errorf("after prune: %q", imgs)
	}
	d.must("create", "--name", "pr-user", "busybox", "true")
	out = d.must("image", "prune", "-a", "-f")
	if !strings.Contains(out, "untagged: example.com/pr:keep") || !strings.Contains(out, "Total reclaimed space: 300") {
		t.Errorf("image prune -a:\n%s", out)
	}
	if imgs := d.must("images", "--format", "{{.Repository}}"); imgs != "busybox\n" {
		t.Errorf("after prune -a: %q", imgs)
	}
	d.must("rm", "pr-user")
	if after := diskUse(data); after > before+64<<10 {
		t.Errorf("data root grew from %d to %d bytes", before, after)
	}
	if out := d.must("system", "df", "--format", "{{.Type}}={{.TotalCount}}"); out != "Images=1\nContainers=0\nLocal Volumes=0\nBuild Cache=0\n" {
		t.Errorf("skiff system df: %q", out)
	}
	if mine, want := d.must("system", "df"), d.dockerMust("system", "df"); mine != want {
		t.Errorf("skiff system df:\n%s\ndocker:\n%s", mine, want)
	}
}

// An image imported from a tar whose root entry is 0700 (a tar of a mktemp
// -d directory, as hack/mkbusybox.sh makes) still has "/" at 0755 in its
// containers, as with Docker, so other users can work in it.
func TestImportedRootIsSearchable(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	if out := d.must("run", "--rm", "-u", "nobody", "busybox", "sh", "-c", "stat -c %a /; ls /bin/sh"); out != "755\n/bin/sh\n" {
		t.Fatalf("as nobody: %q", out)
	}
	// As dockerd, the primary group is among the supplementary ones.
	if out := d.must("run", "--rm", "-u", "nobody", "busybox", "id"); !strings.Contains(out, "groups=50(staff),65534(nogroup)") {
		t.Fatalf("id as nobody: %q", out)
	}
}
