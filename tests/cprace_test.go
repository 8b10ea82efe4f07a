package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docker cp resolves paths inside the container's root even while the
// container keeps swapping a symlink in the path between a directory of its
// own and "/": no copy ever reads or writes the host's files.
func TestCpSymlinkSwapRace(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	// A host directory with a secret, at a path that also makes sense inside
	// the container once "/" is the container's root.
	hostDir, err := os.MkdirTemp("", "skiff-cprace-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(hostDir)
	if err := os.WriteFile(filepath.Join(hostDir, "secret"), []byte("HOST-SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inner := "/safe" + hostDir // the same path below /safe in the container
	d.must("run", "-d", "--name", "swapper", "busybox", "sh", "-c",
		"mkdir -p "+inner+" && echo container-file > "+inner+"/secret && mkdir -p /data && "+
			"while :; do ln -sfn / /data/link; ln -sfn /safe /data/link; done")
	waitFor(t, func() bool {
		out, _, _ := d.skiff("exec", "swapper", "cat", inner+"/secret")
		return out == "container-file\n"
	}, "container set-up")

	src := filepath.Join(d.root, "upload")
	os.WriteFile(src, []byte("from-host\n"), 0o644)
	outDir := filepath.Join(d.root, "out")
	os.MkdirAll(outDir, 0o755)
	outs, ins := 0, 0
	for i := 0; i < 40; i++ {
		// Out: through the link, hostDir/secret exists only under /safe in
		// the container; via "/" the container has no such file.
		dst := filepath.Join(outDir, "got")
		os.Remove(dst)
		if _, _, code := d.skiff("cp", "swapper:/data/link"+hostDir+"/secret", dst); code == 0 {
			b, _ := os.ReadFile(dst)
			if strings.Contains(string(b), "HOST-SECRET") {
				t.Fatalf("copy %d read the host's file", i)
			}
			if string(b) != "container-file\n" {
				t.Fatalf("copy %d got %q", i, b)
			}
			outs++
		}
		// In: the target directory exists on the host at hostDir; a copy
		// through "/" must land in the container, never on the host.
		if _, _, code := d.skiff("cp", src, "swapper:/data/link"+hostDir+"/uploaded"); code == 0 {
			ins++
		}
		if _, err := os.Stat(filepath.Join(hostDir, "uploaded")); err == nil {
			t.Fatalf("copy %d wrote into the host's directory", i)
		}
	}
	// Some copies went through the container's own directory, so the
	// checks above were exercised on successful copies too.
	if outs == 0 || ins == 0 {
		t.Errorf("no copy succeeded (out %d, in %d): the race was not exercised", outs, ins)
	}
	if out, _, _ := d.skiff("exec", "swapper", "cat", inner+"/uploaded"); ins > 0 && out != "from-host\n" {
		t.Errorf("uploaded file inside the container: %q", out)
	}
	if b, _ := os.ReadFile(filepath.Join(hostDir, "secret")); string(b) != "HOST-SECRET\n" {
		t.Errorf("host secret changed: %q", b)
	}
	d.must("rm", "-f", "swapper")
}
