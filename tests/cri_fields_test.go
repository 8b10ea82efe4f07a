package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// What a pod container's request asks for takes effect inside it: masked
// and read-only paths, bind mounts with each propagation mode (seen in
// /proc/self/mountinfo and by mounting on either side), a device, the
// image's user; the pause process's oom_score_adj is clamped to the
// engine's; the pause image stays out of Docker API image lists.
func TestCRIContainerFields(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	d.must("import", "--change", "USER 1000:1000", busyboxTar, "busybox-user")
	rt, _ := d.criClients()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Host dirs for the three propagation modes: each a mount of its own,
	// shared (as the kubelet's pod volume dirs are), with a dir to mount
	// on from the host once the container runs.
	host := t.TempDir()
	modes := []struct {
		name string
		prop runtimeapi.MountPropagation
	}{
		{"private", runtimeapi.MountPropagation_PROPAGATION_PRIVATE},
		{"rslave", runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
		{"rshared", runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
	}
	src := filepath.Join(host, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "flag"), nil, 0o644)
	var mounts []*runtimeapi.Mount
	var unmount []string
	t.Cleanup(func() {
		for i := len(unmount) - 1; i >= 0; i-- {
			unix.Unmount(unmount[i], unix.MNT_DETACH)
		}
	})
	for _, m := range modes {
		dir := filepath.Join(host, m.name)
		os.MkdirAll(filepath.Join(dir, "from-host"), 0o755)
		os.MkdirAll(filepath.Join(dir, "from-ctr"), 0o755)
		if err := unix.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			t.Fatal(err)
		}
		unmount = append(unmount, dir)
		if err := unix.Mount("", dir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
			t.Fatal(err)
		}
		mounts = append(mounts, &runtimeapi.Mount{HostPath: dir, ContainerPath: "/mnt/" + m.name, Propagation: m.prop})
	}

	sbCfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "fields", Namespace: "e2e", Uid: "uid-fields"}}
	pod := criPod(t, ctx, rt, sbCfg)
	t.Cleanup(func() {
		rt.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod})
	})
	ctr := criStart(t, ctx, rt, pod, sbCfg, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "fields"}, Image: &runtimeapi.ImageSpec{Image: "busybox"},
		Command: []string{"sleep", "300"}, Mounts: mounts,
		Devices: []*runtimeapi.Device{{HostPath: "/dev/zero", ContainerPath: "/dev/xzero", Permissions: "r"}},
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			// mount(2) inside needs CAP_SYS_ADMIN; masked paths stay.
			Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"SYS_ADMIN"}},
			Seccomp:      &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined},
			// (The test image's applets are symlinks to /bin/busybox, which
			// a mask of one would follow, as under runc.)
			MaskedPaths:   []string{"/etc/group", "/home"},
			ReadonlyPaths: []string{"/tmp"},
		}},
	})
	exec := func(id string, cmd ...string) *runtimeapi.ExecSyncResponse {
		t.Helper()
		r, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 10})
		if err != nil {
			t.Fatalf("ExecSync %v: %v", cmd, err)
		}
		return r
	}

	if r := exec(ctr, "cat", "/etc/group"); r.ExitCode != 0 || len(r.Stdout) != 0 {
		t.Errorf("masked /etc/group: exit %d, stdout %q, stderr %q", r.ExitCode, r.Stdout, r.Stderr)
	}
	if r := exec(ctr, "touch", "/home/x"); r.ExitCode == 0 || !strings.Contains(string(r.Stderr), "Read-only file system") {
		t.Errorf("masked /home: exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	if r := exec(ctr, "touch", "/tmp/x"); r.ExitCode == 0 || string(r.Stderr) != "touch: /tmp/x: Read-only file system\n" {
		t.Errorf("read-only /tmp: exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	// The request's lists replace the defaults: /proc/kcore is not masked.
	if r := exec(ctr, "sh", "-c", "grep -c ' /proc/kcore ' /proc/self/mountinfo"); strings.TrimSpace(string(r.Stdout)) != "0" {
		t.Errorf("/proc/kcore masked although the request's list lacks it: %q", r.Stdout)
	}
	if r := exec(ctr, "sh", "-c", "head -c 4 /dev/xzero | od -An -tx1"); strings.TrimSpace(string(r.Stdout)) != "00 00 00 00" {
		t.Errorf("device /dev/xzero: exit %d %q %q", r.ExitCode, r.Stdout, r.Stderr)
	}

	// Propagation: mountinfo's optional fields, then real propagation.
	mi := string(exec(ctr, "cat", "/proc/self/mountinfo").Stdout)
	for _, m := range modes {
		var line string
		for _, l := range strings.Split(mi, "\n") {
			if f := strings.Fields(l); len(f) > 4 && f[4] == "/mnt/"+m.name {
				line = l
			}
		}
		shared, slave := strings.Contains(line, " shared:"), strings.Contains(line, " master:")
		if line == "" || shared != (m.name == "rshared") || slave != (m.name == "rslave") {
			t.Errorf("/mnt/%s in mountinfo: %q", m.name, line)
		}
	}
	for _, m := range modes {
		dst := filepath.Join(host, m.name, "from-host")
		if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		unmount = append(unmount, dst)
	}
	for _, m := range modes {
		got := strings.TrimSpace(string(exec(ctr, "ls", "/mnt/"+m.name+"/from-host").Stdout))
		if want := map[bool]string{true: "", false: "flag"}[m.name == "private"]; got != want {
			t.Errorf("a host mount seen in /mnt/%s: %q, want %q", m.name, got, want)
		}
		if r := exec(ctr, "mount", "--bind", "/etc", "/mnt/"+m.name+"/from-ctr"); r.ExitCode != 0 {
			t.Fatalf("mount in the container: %q", r.Stderr)
		}
		back := filepath.Join(host, m.name, "from-ctr")
		ents, _ := os.ReadDir(back)
		if (len(ents) > 0) != (m.name == "rshared") {
			t.Errorf("a container mount seen on the host in %s: %d entries", m.name, len(ents))
		}
		if len(ents) > 0 {
			unmount = append(unmount, back)
		}
	}

	// A propagation the host path's mount cannot give is refused, with
	// containerd's words.
	priv := filepath.Join(host, "private")
	for prop, kind := range map[runtimeapi.MountPropagation]string{
		runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:     "shared",
		runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER: "shared or slave",
	} {
		if err := unix.Mount("", priv, "", unix.MS_PRIVATE, ""); err != nil {
			t.Fatal(err)
		}
		_, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, SandboxConfig: sbCfg, Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "refused"}, Image: &runtimeapi.ImageSpec{Image: "busybox"}, Command: []string{"true"},
			Mounts: []*runtimeapi.Mount{{HostPath: priv, ContainerPath: "/mnt", Propagation: prop}}}})
		if want := fmt.Sprintf("path %q is mounted on %q but it is not a %s mount", priv, priv, kind); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), want) {
			t.Errorf("a %v mount of a private mount: %v, want InvalidArgument %q", prop, err, want)
		}
	}

	// The image's user, when the request names none.
	userCtr := criStart(t, ctx, rt, pod, sbCfg, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "user"}, Image: &runtimeapi.ImageSpec{Image: "busybox-user"},
		Command: []string{"sleep", "300"},
	})
	if r := exec(userCtr, "id", "-u"); string(r.Stdout) != "1000\n" {
		t.Errorf("the image's user: %q %q", r.Stdout, r.Stderr)
	}

	// The pause process: oom_score_adj -998 unless the engine's own is
	// higher (root here may lack CAP_SYS_RESOURCE to go below it).
	st, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	own, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", d.cmd.Process.Pid))
	ownAdj, aerr := strconv.Atoi(strings.TrimSpace(string(own)))
	if err != nil || aerr != nil {
		t.Fatalf("the engine's oom_score_adj: %v %v", err, aerr)
	}
	want := strconv.Itoa(max(-998, ownAdj))
	if adj, _ := os.ReadFile("/proc/" + st.Info["pid"] + "/oom_score_adj"); strings.TrimSpace(string(adj)) != want {
		t.Errorf("pause oom_score_adj %q, want %s (engine's own %q)", adj, want, own)
	}

	// The pause image: in the CRI's list, not in Docker's unless asked.
	if out := d.must("images", "--format", "{{.Repository}}"); strings.Contains(out, "skiff.local/pause") {
		t.Errorf("skiff images lists the pause image:\n%s", out)
	}
	if out := d.must("images", "--format", "{{.Repository}}", "skiff.local/pause"); !strings.Contains(out, "skiff.local/pause") {
		t.Errorf("skiff images skiff.local/pause: %q", out)
	}
}
