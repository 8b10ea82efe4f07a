package tests

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criClients dials the daemon's CRI socket as the kubelet does.
func (d *daemon) criClients() (runtimeapi.RuntimeServiceClient, runtimeapi.ImageServiceClient) {
	d.t.Helper()
	conn, err := grpc.NewClient("unix://"+d.criSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { conn.Close() })
	return runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
}

// The CRI socket answers Version, Status and RuntimeConfig, refuses what it
// does not implement, and serves images from the engine's own store: a pull
// with the request's credentials shows up in `skiff images`, and RemoveImage
// is idempotent.
func TestCRIEndpointAndImages(t *testing.T) {
	reg := startRegistry(t, "criuser", "cri-pass")
	d := startDaemon(t)
	rt, img := d.criClients()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if st, err := os.Stat(d.criSock); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("CRI socket: %v, mode %v; want 0600 (the CRI has no authentication)", err, st.Mode())
	}
	v, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil || v.RuntimeName != "skiff" || v.RuntimeApiVersion != "v1" {
		t.Fatalf("Version = %v, %v", v, err)
	}
	st, err := rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil || len(st.Status.Conditions) != 2 || !st.Status.Conditions[0].Status {
		t.Fatalf("Status = %v, %v", st, err)
	}
	if rc, err := rt.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{}); err != nil || rc.Linux.CgroupDriver != runtimeapi.CgroupDriver_CGROUPFS {
		t.Fatalf("RuntimeConfig = %v, %v", rc, err)
	}
	if _, err := rt.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("CheckpointContainer: %v, want Unimplemented", err)
	}

	// A private image whose USER is a uid, pushed with the CLI's login.
	ref := reg.host + "/cri/busybox:v1"
	d.must("import", "--change", "USER 1000:1000", busyboxTar, ref)
	if out, errOut, code := d.skiffIn(strings.NewReader("cri-pass\n"), "login", "-u", "criuser", "--password-stdin", reg.host); code != 0 {
		t.Fatalf("login: exit %d\n%s\n%s", code, out, errOut)
	}
	d.must("push", ref)
	d.must("logout", reg.host)
	d.must("rmi", ref)

	spec := &runtimeapi.ImageSpec{Image: ref}
	if _, err := img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec}); err == nil {
		t.Fatal("PullImage without credentials succeeded")
	}
	pull, err := img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec,
		Auth: &runtimeapi.AuthConfig{Username: "criuser", Password: "cri-pass", ServerAddress: reg.host}})
	if err != nil || !strings.HasPrefix(pull.ImageRef, "sha256:") {
		t.Fatalf("PullImage with credentials = %v, %v", pull, err)
	}
	is, err := img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec})
	if err != nil || is.Image == nil {
		t.Fatalf("ImageStatus = %v, %v", is, err)
	}
	if i := is.Image; i.Id != pull.ImageRef || len(i.RepoTags) != 1 || i.RepoTags[0] != ref || len(i.RepoDigests) != 1 ||
		!strings.HasPrefix(i.RepoDigests[0], reg.host+"/cri/busybox@sha256:") || i.Size == 0 || i.Uid.GetValue() != 1000 {
		t.Fatalf("ImageStatus image = %v", i)
	}
	// The Docker side sees the same image.
	if out := d.must("images", "-q", "--no-trunc"); !strings.Contains(out, pull.ImageRef) {
		t.Fatalf("skiff images lacks the CRI-pulled image:\n%s", out)
	}
	list, err := img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil || len(list.Images) != 1 || list.Images[0].Id != pull.ImageRef {
		t.Fatalf("ListImages = %v, %v", list, err)
	}
	fs, err := img.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil || len(fs.ImageFilesystems) != 1 || fs.ImageFilesystems[0].UsedBytes.GetValue() < uint64(is.Image.Size)/2 {
		t.Fatalf("ImageFsInfo = %v, %v (image size %d)", fs, err, is.Image.Size)
	}
	// The same image by a name whose registry does not exist, through the
	// daemon's registry hosts configuration, with the request's credentials.
	hostsDir := filepath.Join(d.certsD(), "private.invalid")
	if err := os.MkdirAll(hostsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostsDir, "hosts.toml"), []byte(`server = "http://`+reg.host+`"`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mirrored := &runtimeapi.ImageSpec{Image: "private.invalid/cri/busybox:v1"}
	if _, err := img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: mirrored}); err == nil {
		t.Fatal("PullImage through hosts.toml without credentials succeeded")
	}
	mp, err := img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: mirrored,
		Auth: &runtimeapi.AuthConfig{Username: "criuser", Password: "cri-pass"}})
	if err != nil || mp.ImageRef != pull.ImageRef {
		t.Fatalf("PullImage through hosts.toml = %v, %v; want %s", mp, err, pull.ImageRef)
	}

	for range 2 { // the second time it is gone: still success
		if _, err := img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: spec}); err != nil {
			t.Fatalf("RemoveImage: %v", err)
		}
	}
	if is, err := img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec}); err != nil || is.Image != nil {
		t.Fatalf("ImageStatus after RemoveImage = %v, %v", is, err)
	}
	if out := d.must("images", "-q", "--no-trunc"); strings.Contains(out, pull.ImageRef) {
		t.Fatalf("image left after RemoveImage:\n%s", out)
	}
}

// criPod starts a pod sandbox for the test and returns its id.
func criPod(t *testing.T, ctx context.Context, rt runtimeapi.RuntimeServiceClient, cfg *runtimeapi.PodSandboxConfig) string {
	t.Helper()
	resp, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	return resp.PodSandboxId
}

// criStart creates and starts a container in a pod.
func criStart(t *testing.T, ctx context.Context, rt runtimeapi.RuntimeServiceClient, pod string, sbCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	cr, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: sbCfg})
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", cfg.Metadata.Name, err)
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId}); err != nil {
		t.Fatalf("StartContainer %s: %v", cfg.Metadata.Name, err)
	}
	return cr.ContainerId
}

// A pod of two containers: one serves on 127.0.0.1 with busybox httpd, the
// other fetches from it (they share the sandbox's network namespace), both
// see the pod's DNS config; ExecSync with its exit code and timeout; the
// pod's objects appear in `skiff ps -a` but Docker's containers never in
// the CRI's lists; stop and remove are idempotent and leave nothing.
func TestCRIPodSharesLocalhost(t *testing.T) {
	for _, cgroup2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("cgroup2=%v", cgroup2), func(t *testing.T) { testCRIPod(t, cgroup2) })
	}
}

func testCRIPod(t *testing.T, cgroup2 bool) {
	d := startDaemonWith(t, cgroup2)
	// The kubelet's pod cgroup: the kubelet removes it after the pod.
	podCgroup := d.cgParent + "/kubepods-pod-uid-1"
	var pod string
	t.Cleanup(func() {
		// Remove the pod first (a failed test leaves it), as the kubelet
		// does before it removes the pod's cgroup.
		if pod != "" {
			rt, _ := d.criClients()
			rt.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod})
		}
		removeCgroupDirs(podCgroup)
	})
	d.importBusybox()
	rt, _ := d.criClients()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d.must("run", "-d", "--name", "docker-side", "busybox", "sleep", "300")

	logDir := t.TempDir()
	sbCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "e2e", Uid: "uid-1"},
		LogDirectory: logDir,
		Hostname:     "webpod",
		Labels:       map[string]string{"app": "web", "io.kubernetes.pod.name": "web"},
		DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"e2e.svc.cluster.local"}, Options: []string{"ndots:5"}},
		Linux: &runtimeapi.LinuxPodSandboxConfig{CgroupParent: podCgroup, SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD}}},
	}
	pod = criPod(t, ctx, rt, sbCfg)
	st, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod, Verbose: true})
	if err != nil || st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.Status.Metadata.Name != "web" || st.Status.Labels["app"] != "web" {
		t.Fatalf("PodSandboxStatus = %v, %v", st, err)
	}
	// The pause process runs in the pod's cgroup, with the pod's hostname.
	pauseCg, err := os.ReadFile("/proc/" + st.Info["pid"] + "/cgroup")
	if err != nil || !strings.Contains(string(pauseCg), podCgroup+"/"+pod) {
		t.Errorf("pause process cgroup (pid %s): %v\n%s", st.Info["pid"], err, pauseCg)
	}
	if host, err := os.ReadFile("/proc/" + st.Info["pid"] + "/root/etc/hostname"); err != nil || string(host) != "webpod\n" {
		t.Errorf("pod hostname: %q, %v", host, err)
	}

	// The kubelet's evented PLEG: events of the pod's containers, each with
	// the pod's statuses.
	evCtx, evCancel := context.WithCancel(ctx)
	defer evCancel()
	evStream, err := rt.GetContainerEvents(evCtx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatalf("GetContainerEvents: %v", err)
	}
	evs := make(chan *runtimeapi.ContainerEventResponse, 64)
	go func() {
		for {
			ev, err := evStream.Recv()
			if err != nil {
				close(evs)
				return
			}
			evs <- ev
		}
	}()

	image := &runtimeapi.ImageSpec{Image: "busybox"}
	server := criStart(t, ctx, rt, pod, sbCfg, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "server"}, Image: image,
		Command: []string{"sh", "-c", "mkdir -p /srv && echo pod-hello > /srv/index.html && exec httpd -f -p 127.0.0.1:8080 -h /srv"},
		Labels:  map[string]string{"role": "server"},
		// Below the engine's own: clamped to it (no CAP_SYS_RESOURCE needed).
		Linux: &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{OomScoreAdj: -999}},
	})
	for _, want := range []runtimeapi.ContainerEventType{runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT} {
		select {
		case ev := <-evs:
			if ev == nil || ev.ContainerId != server || ev.ContainerEventType != want || ev.PodSandboxStatus.GetId() != pod || len(ev.ContainersStatuses) != 1 {
				t.Errorf("container event %v, want %v of %s with the pod's statuses", ev, want, server)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("no %v event", want)
		}
	}
	evCancel()
	client := criStart(t, ctx, rt, pod, sbCfg, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "client"}, Image: image,
		Command: []string{"sh", "-c"}, Args: []string{"echo client-up; printf 'no-newline' >&2; exec sleep 300"},
		Envs:    []*runtimeapi.KeyValue{{Key: "GREETING", Value: []byte("hi")}},
		LogPath: "client/0.log",
		Labels:  map[string]string{"role": "client"},
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}}},
	})

	exec := func(id string, timeout int64, cmd ...string) *runtimeapi.ExecSyncResponse {
		t.Helper()
		r, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: timeout})
		if err != nil {
			t.Fatalf("ExecSync %v: %v", cmd, err)
		}
		return r
	}
	var got *runtimeapi.ExecSyncResponse
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = exec(client, 5, "wget", "-q", "-O-", "http://127.0.0.1:8080/"); got.ExitCode == 0 {
			break
		}
	}
	if got.ExitCode != 0 || string(got.Stdout) != "pod-hello\n" {
		t.Fatalf("fetch from the other container over 127.0.0.1: exit %d, stdout %q, stderr %q", got.ExitCode, got.Stdout, got.Stderr)
	}
	// The shared PID namespace: the server's httpd is visible to the client.
	if r := exec(client, 5, "sh", "-c", "ps -o comm | grep -c httpd"); string(r.Stdout) != "1\n" {
		t.Errorf("httpd in the client's ps: %q %q", r.Stdout, r.Stderr)
	}
	own, _ := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", d.cmd.Process.Pid))
	if r := exec(server, 5, "cat", "/proc/self/oom_score_adj"); len(own) == 0 || string(r.Stdout) != string(own) {
		t.Errorf("server oom_score_adj %q, want the engine's own %q", r.Stdout, own)
	}
	// Seccomp: the runtime default filters the client; the server, with no
	// profile, is unconfined (as under containerd).
	if r := exec(client, 5, "grep", "^Seccomp:", "/proc/self/status"); !strings.HasSuffix(string(r.Stdout), "\t2\n") {
		t.Errorf("client seccomp: %q", r.Stdout)
	}
	if r := exec(server, 5, "grep", "^Seccomp:", "/proc/self/status"); !strings.HasSuffix(string(r.Stdout), "\t0\n") {
		t.Errorf("server seccomp: %q", r.Stdout)
	}
	// The pod's UTS namespace: its hostname, in uname and in $HOSTNAME.
	if r := exec(client, 5, "sh", "-c", "hostname; echo $HOSTNAME; cat /etc/hostname"); string(r.Stdout) != "webpod\nwebpod\nwebpod\n" {
		t.Errorf("hostname in a pod container: %q %q", r.Stdout, r.Stderr)
	}
	if r := exec(client, 5, "cat", "/etc/resolv.conf"); !strings.Contains(string(r.Stdout), "nameserver 10.96.0.10") || !strings.Contains(string(r.Stdout), "e2e.svc.cluster.local") {
		t.Errorf("client resolv.conf:\n%s", r.Stdout)
	}
	if r := exec(client, 5, "sh", "-c", "echo $GREETING >&2; exit 3"); r.ExitCode != 3 || string(r.Stderr) != "hi\n" {
		t.Errorf("ExecSync exit/stderr: %d %q", r.ExitCode, r.Stderr)
	}
	start := time.Now()
	if _, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: client, Cmd: []string{"sleep", "30"}, Timeout: 1}); status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 10*time.Second {
		t.Errorf("ExecSync past its timeout: %v after %v, want DeadlineExceeded", err, time.Since(start))
	}
	// Gone when ExecSync answers (killed and reaped, not a zombie of the
	// container's PID 1), as critest checks right away.
	if sleeps := strings.TrimSpace(string(exec(client, 5, "sh", "-c", "pidof sleep | wc -w").Stdout)); sleeps != "1" {
		t.Errorf("the timed-out exec's sleep is still there: %q sleeps", sleeps)
	}

	// Stats from the cgroups; resources updated in place. The simulated
	// pure v2 host may lack the memory controller: then stats have no
	// memory and a memory limit is refused clearly.
	ctrls, _ := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	haveMemory := !cgroup2 || strings.Contains(string(ctrls), "memory")
	sst, err := rt.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: server})
	if err != nil || haveMemory && sst.Stats.Memory.GetUsageBytes().GetValue() == 0 || sst.Stats.Cpu.GetUsageCoreNanoSeconds().GetValue() == 0 || sst.Stats.Attributes.Metadata.Name != "server" {
		t.Errorf("ContainerStats = %v, %v", sst, err)
	}
	if ls, err := rt.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{Filter: &runtimeapi.ContainerStatsFilter{PodSandboxId: pod}}); err != nil || len(ls.Stats) != 2 {
		t.Errorf("ListContainerStats of the pod = %v, %v", ls, err)
	}
	_, err = rt.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: client,
		Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, MemorySwapLimitInBytes: 64 << 20}})
	switch {
	case !haveMemory:
		if err == nil || !strings.Contains(err.Error(), "memory") {
			t.Errorf("UpdateContainerResources without a memory controller: %v, want a clear error", err)
		}
	case err != nil:
		t.Errorf("UpdateContainerResources: %v", err)
	default:
		if out := strings.TrimSpace(d.must("inspect", "--format", "{{.HostConfig.Memory}}", client)); out != "67108864" {
			t.Errorf("memory limit after UpdateContainerResources: %s", out)
		}
	}

	// An engine restart keeps the pod running and listed.
	d.stop()
	d.start()
	if pl, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{Id: pod}}); err != nil || len(pl.Items) != 1 || pl.Items[0].State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("ListPodSandbox after an engine restart = %v, %v", pl, err)
	}
	if r := exec(client, 5, "wget", "-q", "-O-", "http://127.0.0.1:8080/"); string(r.Stdout) != "pod-hello\n" {
		t.Fatalf("fetch after an engine restart: exit %d %q %q", r.ExitCode, r.Stdout, r.Stderr)
	}

	// The client's output in the CRI log format, at the kubelet's path.
	logFile := filepath.Join(logDir, "client", "0.log")
	cs, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: client})
	if err != nil || cs.Status.LogPath != logFile {
		t.Fatalf("ContainerStatus LogPath = %v, %v; want %s", cs, err, logFile)
	}
	// Lists: by sandbox, label and state; Docker's container is not there.
	cl, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: pod}})
	if err != nil || len(cl.Containers) != 2 {
		t.Fatalf("ListContainers of the pod = %v, %v", cl, err)
	}
	cl, err = rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: map[string]string{"role": "server"}}})
	if err != nil || len(cl.Containers) != 1 || cl.Containers[0].Id != server || cl.Containers[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("ListContainers role=server = %v, %v", cl, err)
	}
	pl, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "web"}}})
	if err != nil || len(pl.Items) != 1 || pl.Items[0].Id != pod {
		t.Fatalf("ListPodSandbox app=web = %v, %v", pl, err)
	}
	dockerID := strings.TrimSpace(d.must("inspect", "--format", "{{.Id}}", "docker-side"))
	if _, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: dockerID}); status.Code(err) != codes.NotFound {
		t.Errorf("ContainerStatus of a Docker container: %v, want NotFound", err)
	}
	if _, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: dockerID}); err != nil {
		t.Errorf("RemoveContainer of a Docker container: %v", err)
	}
	if out := d.must("ps", "-q", "--filter", "name=docker-side"); strings.TrimSpace(out) == "" {
		t.Fatal("RemoveContainer through the CRI removed a Docker container")
	}
	// skiff ps -a shows the pod, with Kubernetes' labels.
	ps := d.must("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Label \"io.kubernetes.pod.name\"}}")
	for _, want := range []string{pod + " k8s_POD_web_e2e_uid-1_0 web", server + " k8s_server_web_e2e_uid-1_0", client + " k8s_client_web_e2e_uid-1_0"} {
		if !strings.Contains(ps, want) {
			t.Errorf("skiff ps -a lacks %q:\n%s", want, ps)
		}
	}

	// The kubelet rotates the log: it renames the file, then asks for a
	// new one; the output after that lands in the new file.
	if err := os.Rename(logFile, logFile+".1"); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: client}); err != nil {
		t.Fatalf("ReopenContainerLog: %v", err)
	}
	exec(client, 5, "sh", "-c", "echo after-reopen > /proc/$(pidof sleep)/fd/1")

	// Stop with a timeout: sleep ignores nothing, so SIGTERM ends it fast.
	for range 2 {
		if _, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: client, Timeout: 5}); err != nil {
			t.Fatalf("StopContainer: %v", err)
		}
	}
	cs, err = rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: client})
	if err != nil || cs.Status.State != runtimeapi.ContainerState_CONTAINER_EXITED || cs.Status.FinishedAt == 0 || cs.Status.Metadata.Name != "client" {
		t.Fatalf("ContainerStatus after stop = %v, %v", cs, err)
	}
	// The unfinished stderr line is written when the stream ends: a
	// partial record (P) after the stop.
	const stamp = `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z `
	rotated, _ := os.ReadFile(logFile + ".1")
	if !regexp.MustCompile(stamp + "stdout F client-up\n$").Match(rotated) {
		t.Errorf("rotated CRI log:\n%s", rotated)
	}
	logs, _ := os.ReadFile(logFile)
	logRe := regexp.MustCompile(stamp + `(stdout F after-reopen|stderr P no-newline)$`)
	lines := strings.Split(strings.TrimSuffix(string(logs), "\n"), "\n")
	if len(lines) != 2 || !logRe.MatchString(lines[0]) || !logRe.MatchString(lines[1]) {
		t.Fatalf("CRI log %s:\n%s", logFile, logs)
	}

	for range 2 {
		if _, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: client}); err != nil {
			t.Fatalf("RemoveContainer: %v", err)
		}
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
			t.Fatalf("StopPodSandbox: %v", err)
		}
	}
	if st, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod}); err != nil || st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("PodSandboxStatus after stop = %v, %v", st, err)
	}
	for range 2 {
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
			t.Fatalf("RemovePodSandbox: %v", err)
		}
	}
	if _, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod}); status.Code(err) != codes.NotFound {
		t.Fatalf("PodSandboxStatus after remove: %v, want NotFound", err)
	}
	if out := d.must("ps", "-aq", "--filter", "label=io.skiff.cri.kind"); strings.TrimSpace(out) != "" {
		t.Fatalf("pod containers left after RemovePodSandbox:\n%s", out)
	}
}

// A pod on a CNI network (Debian's bridge, host-local, portmap and loopback
// plugins, with the test's own bridge, subnet and IPAM dir): it gets an IP
// that the host reaches, portmap publishes its port on the host's
// loopback, crictl port-forward reaches it through the pinned netns, an
// engine restart keeps it (IP, port, teardown state), and StopPodSandbox
// tears it all down (no pinned netns, no veth on the bridge, no IP
// allocation, no portmap rule); StopPodSandbox again is a no-op. Then a
// configuration whose second plugin fails: RunPodSandbox fails and leaves
// no pause container, netns, veth or allocation behind. A sandbox removed
// through the Docker API has its network freed by the next RunPodSandbox.
func TestCRIPodNetworkCNI(t *testing.T) {
	root := t.TempDir()
	confDir, ipamDir := filepath.Join(root, "net.d"), filepath.Join(root, "ipam")
	os.MkdirAll(confDir, 0o755)
	bridge := fmt.Sprintf("skcri%d", os.Getpid()%100000)
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	// The bridge plugin turns on the host's ip_forward for a gateway
	// bridge (the host reaches the pod through its address): the test
	// gives the host back the value it had.
	const fwd = "/proc/sys/net/ipv4/ip_forward"
	if was, err := os.ReadFile(fwd); err == nil {
		t.Cleanup(func() { os.WriteFile(fwd, was, 0o644) })
	}
	conf := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "skiff-e2e-cri", "plugins": [
  {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.213.78.0/24"}]], "dataDir": %q}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "loopback"}]}`, bridge, ipamDir)
	if err := os.WriteFile(filepath.Join(confDir, "10-e2e.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemonSetup(t, false, func(d *daemon) {
		d.extraConfig = fmt.Sprintf(`"cni-conf-dir": %q, "cni-bin-dir": "/usr/lib/cni"`, confDir)
	})
	d.importBusybox()
	rt, _ := d.criClients()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	st, err := rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil || len(st.Status.Conditions) != 2 || !st.Status.Conditions[1].Status {
		t.Fatalf("Status with a CNI config = %v, %v; want NetworkReady", st, err)
	}
	hostPort := freePort(t)
	sbCfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "net", Namespace: "e2e", Uid: "uid-net"},
		PortMappings: []*runtimeapi.PortMapping{{ContainerPort: 8080, HostPort: int32(hostPort), HostIp: "127.0.0.1"}}}
	pod := criPod(t, ctx, rt, sbCfg)
	t.Cleanup(func() {
		rt.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod})
	})
	ps, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod})
	if err != nil || !strings.HasPrefix(ps.Status.Network.GetIp(), "10.213.78.") {
		t.Fatalf("PodSandboxStatus = %v, %v; want an IP in 10.213.78.0/24", ps, err)
	}
	ip := ps.Status.Network.Ip
	criStart(t, ctx, rt, pod, sbCfg, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "web"}, Image: &runtimeapi.ImageSpec{Image: "busybox"},
		Command: []string{"sh", "-c", "mkdir -p /srv && echo cni-hello > /srv/index.html && exec httpd -f -p 8080 -h /srv"},
	})
	get := func(url string) string {
		t.Helper()
		var body string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if resp, err := http.Get(url); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if body = string(b); body == "cni-hello\n" {
					break
				}
			}
		}
		return body
	}
	if body := get("http://" + ip + ":8080/"); body != "cni-hello\n" {
		t.Fatalf("GET from the host to the pod at %s: %q", ip, body)
	}
	published := fmt.Sprintf("http://127.0.0.1:%d/", hostPort)
	if body := get(published); body != "cni-hello\n" {
		t.Fatalf("GET of the port portmap published, %s: %q", published, body)
	}
	// crictl port-forward: a connection made in the pod's pinned netns.
	c := newCrictl(t, d)
	pf := c.cmd("port-forward", pod, fmt.Sprintf("%d:8080", freePort(t)))
	pfOut, _ := pf.StdoutPipe()
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { pf.Process.Kill(); pf.Wait() }()
	line, _ := bufio.NewReader(pfOut).ReadString('\n')
	if m := regexp.MustCompile(`127\.0\.0\.1:(\d+) -> 8080`).FindStringSubmatch(line); m == nil {
		t.Errorf("crictl port-forward: %q", line)
	} else if body := get("http://127.0.0.1:" + m[1] + "/"); body != "cni-hello\n" {
		t.Errorf("GET through crictl port-forward: %q", body)
	}
	pf.Process.Kill()
	pf.Wait()

	// An engine restart keeps the pod, its network and its teardown state.
	d.stop()
	d.start()
	rt, _ = d.criClients()
	if ps, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod}); err != nil ||
		ps.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || ps.Status.Network.GetIp() != ip {
		t.Fatalf("PodSandboxStatus after an engine restart = %v, %v; want ready with %s", ps, err, ip)
	}
	if cl, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: pod,
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}}); err != nil || len(cl.Containers) != 1 {
		t.Fatalf("running containers of the pod after an engine restart = %v, %v", cl, err)
	}
	if body := get(published); body != "cni-hello\n" {
		t.Fatalf("GET of the published port after an engine restart: %q", body)
	}
	// Pod stats: the pod's network from its namespace, its container.
	pst, err := rt.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: pod})
	if err != nil || pst.Stats.Linux.GetNetwork().GetDefaultInterface().GetRxBytes().GetValue() == 0 ||
		len(pst.Stats.Linux.Containers) != 1 || pst.Stats.Linux.Cpu.GetUsageCoreNanoSeconds().GetValue() == 0 {
		t.Errorf("PodSandboxStats = %v, %v", pst, err)
	}
	if ls, err := rt.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{}); err != nil || len(ls.Stats) != 1 || ls.Stats[0].Attributes.Id != pod {
		t.Errorf("ListPodSandboxStats = %v, %v", ls, err)
	}
	netns := filepath.Join(d.root, "exec", "cri", "netns", pod)
	if _, err := os.Stat(netns); err != nil {
		t.Fatalf("pinned netns: %v", err)
	}

	for range 2 {
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
			t.Fatalf("StopPodSandbox: %v", err)
		}
	}
	if ps, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod}); err != nil || ps.Status.Network.GetIp() != "" {
		t.Errorf("PodSandboxStatus after stop = %v, %v; want no IP", ps, err)
	}
	if _, err := os.Stat(netns); !os.IsNotExist(err) {
		t.Errorf("pinned netns left after StopPodSandbox: %v", err)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), netns) {
		t.Errorf("netns mount left:\n%s", mi)
	}
	if out, _ := exec.Command("ip", "-o", "link", "show", "master", bridge).CombinedOutput(); strings.TrimSpace(string(out)) != "" {
		t.Errorf("veth left on %s:\n%s", bridge, out)
	}
	allocs, _ := filepath.Glob(filepath.Join(ipamDir, "skiff-e2e-cri", "10.*"))
	if len(allocs) != 0 {
		t.Errorf("host-local allocations left: %v", allocs)
	}
	if nat := natRules(t); strings.Contains(nat, fmt.Sprintf("dport %d ", hostPort)) {
		t.Errorf("portmap rule for port %d left:\n%s", hostPort, nat)
	}
	if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}

	// A configuration that fails in its second plugin (the bridge and
	// host-local have already done their part): nothing is left.
	broken := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "skiff-e2e-cri", "plugins": [
  {"type": "bridge", "bridge": %q, "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.213.78.0/24"}]], "dataDir": %q}},
  {"type": "no-such-plugin"}]}`, bridge, ipamDir)
	if err := os.WriteFile(filepath.Join(confDir, "05-broken.conflist"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	failCfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "broken", Namespace: "e2e", Uid: "uid-broken"}}
	if r, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: failCfg}); err == nil || !strings.Contains(err.Error(), "no-such-plugin") {
		t.Fatalf("RunPodSandbox with a broken CNI config = %v, %v; want the plugin's error", r, err)
	}
	if out := d.must("ps", "-aq", "--filter", "label=io.skiff.cri.kind"); strings.TrimSpace(out) != "" {
		t.Errorf("pause container left after a failed network setup:\n%s", out)
	}
	if pins, _ := os.ReadDir(filepath.Join(d.root, "exec", "cri", "netns")); len(pins) != 0 {
		t.Errorf("pinned netns left after a failed network setup: %v", pins)
	}
	if out, _ := exec.Command("ip", "-o", "link", "show", "master", bridge).CombinedOutput(); strings.TrimSpace(string(out)) != "" {
		t.Errorf("veth left after a failed network setup:\n%s", out)
	}
	if allocs, _ := filepath.Glob(filepath.Join(ipamDir, "skiff-e2e-cri", "10.*")); len(allocs) != 0 {
		t.Errorf("host-local allocations left after a failed network setup: %v", allocs)
	}
	if states, _ := os.ReadDir(filepath.Join(d.root, "data", "cri", "podnet")); len(states) != 0 {
		t.Errorf("pod network state left after a failed network setup: %v", states)
	}

	// A sandbox removed behind the CRI's back (through the Docker API):
	// the next RunPodSandbox frees what its network held.
	os.Remove(filepath.Join(confDir, "05-broken.conflist"))
	orphan := criPod(t, ctx, rt, &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "orphan", Namespace: "e2e", Uid: "uid-orphan"}})
	d.must("rm", "-f", orphan)
	next := criPod(t, ctx, rt, &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "next", Namespace: "e2e", Uid: "uid-next"}})
	if _, err := os.Stat(filepath.Join(d.root, "exec", "cri", "netns", orphan)); !os.IsNotExist(err) {
		t.Errorf("pinned netns of a sandbox removed through the Docker API: %v", err)
	}
	if allocs, _ := filepath.Glob(filepath.Join(ipamDir, "skiff-e2e-cri", "10.*")); len(allocs) != 1 {
		t.Errorf("host-local allocations with one pod left: %v", allocs)
	}
	if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: next}); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
}

// natRules is the host's ip nat table, where portmap (iptables) puts its
// CNI-HOSTPORT-* rules.
func natRules(t *testing.T) string {
	out, _ := exec.Command("nft", "list", "table", "ip", "nat").CombinedOutput()
	return string(out)
}

// crictl builds (once, cached) and returns crictl of cri-tools.
func crictl(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("../hack/cri-tools.sh").Output()
	if err != nil {
		t.Fatalf("hack/cri-tools.sh: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "crictl")
}

// The real client, crictl, drives a pod end to end: pull, runp, create,
// start, exec, logs, ps/pods, stop, rm.
func TestCRICrictl(t *testing.T) {
	bin := crictl(t)
	d := startDaemon(t)
	d.importBusybox()
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--runtime-endpoint", "unix://" + d.criSock, "--image-endpoint", "unix://" + d.criSock, "--timeout", "60s"}, args...)...)
		cmd.Env = append(os.Environ(), "CRI_CONFIG_FILE="+filepath.Join(dir, "crictl.yaml"))
		out, err := cmd.Output()
		if err != nil {
			stderr := ""
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("crictl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return strings.TrimSpace(string(out))
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	os.WriteFile(filepath.Join(dir, "crictl.yaml"), nil, 0o644)
	podJSON := write("pod.json", fmt.Sprintf(`{"metadata": {"name": "cli", "namespace": "e2e", "uid": "uid-cli"},
  "hostname": "clipod", "log_directory": %q, "linux": {}}`, filepath.Join(dir, "logs")))
	ctrJSON := write("ctr.json", `{"metadata": {"name": "hello"}, "image": {"image": "busybox"},
  "command": ["sh", "-c", "echo hello from crictl; exec sleep 300"], "log_path": "hello/0.log", "linux": {}}`)

	if out := run("version"); !strings.Contains(out, "RuntimeName:  skiff") {
		t.Fatalf("crictl version:\n%s", out)
	}
	if out := run("images", "-q"); !strings.Contains(out, "sha256:") {
		t.Fatalf("crictl images -q: %q", out)
	}
	pod := run("runp", podJSON)
	ctr := run("create", pod, ctrJSON, podJSON)
	run("start", ctr)
	if out := run("exec", "-s", ctr, "hostname"); out != "clipod" {
		t.Errorf("crictl exec -s hostname: %q", out)
	}
	var logs string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if logs = run("logs", ctr); logs == "hello from crictl" {
			break
		}
	}
	if logs != "hello from crictl" {
		t.Errorf("crictl logs: %q", logs)
	}
	if out := run("ps", "-q", "--pod", pod); out != ctr {
		t.Errorf("crictl ps -q --pod: %q, want %s", out, ctr)
	}
	if out := run("pods", "-q", "--label", "io.kubernetes.pod.name=nope"); out != "" {
		t.Errorf("crictl pods with a label no pod has: %q", out)
	}
	if out := run("inspectp", "-o", "go-template", "--template", "{{.status.state}}", pod); out != "SANDBOX_READY" {
		t.Errorf("crictl inspectp state: %q", out)
	}
	run("stop", ctr)
	run("rm", ctr)
	run("stopp", pod)
	run("rmp", pod)
	if out := run("pods", "-q"); out != "" {
		t.Errorf("pods left: %q", out)
	}
}
