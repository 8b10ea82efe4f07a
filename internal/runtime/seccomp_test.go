package runtime

import (
	"path/filepath"
	"strings"
	"testing"

	profiles "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/runtime/seccomp"
)

// withProfile gives spec the profile and its compiled filter, as the
// engine (ocispec) does.
func withProfile(t *testing.T, spec *specs.Spec, prof *specs.LinuxSeccomp) {
	t.Helper()
	prog, err := seccomp.Compile(prof)
	if err != nil {
		t.Fatal(err)
	}
	spec.Linux.Seccomp = prof
	spec.Annotations[AnnotationSeccomp] = seccomp.Encode(prog)
}

func defaultProfile(t *testing.T, spec *specs.Spec) *specs.LinuxSeccomp {
	t.Helper()
	prof, err := profiles.GetDefaultProfile(spec)
	if err != nil {
		t.Fatal(err)
	}
	return prof
}

// probe prints the seccomp mode and whether a user namespace, which the
// capabilities allow, could be made.
const probe = "grep '^Seccomp:' /proc/self/status; busybox unshare -U true && echo unshared || echo refused; mkdir /x && echo made"

var noMkdir = &specs.LinuxSeccomp{
	DefaultAction: specs.ActAllow,
	Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
}

func TestSeccomp(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	for _, tc := range []struct {
		name    string
		profile func(*specs.Spec) *specs.LinuxSeccomp
		want    string
	}{
		{"unconfined", nil, "Seccomp:\t0\nunshared\nmade\n"},
		{"default", func(s *specs.Spec) *specs.LinuxSeccomp { return defaultProfile(t, s) }, "Seccomp:\t2\nrefused\nmade\n"},
		{"custom", func(*specs.Spec) *specs.LinuxSeccomp { return noMkdir }, "Seccomp:\t2\nunshared\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := testSpec(t, busyboxRoot(t), "sh", "-c", probe)
			if tc.profile != nil {
				withProfile(t, spec, tc.profile(spec))
			}
			res := runContainer(t, spec)
			if res.startErr != nil {
				t.Fatal(res.startErr)
			}
			if res.stdout != tc.want {
				t.Errorf("stdout %q (stderr %q), want %q", res.stdout, res.stderr, tc.want)
			}
		})
	}
}

// An exec'd process gets the container's filter.
func TestExecSeccomp(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	spec := testSpec(t, busyboxRoot(t), "sleep", "30")
	withProfile(t, spec, defaultProfile(t, spec))
	c := startedContainer(t, spec)
	for _, tc := range []struct {
		name, user, want string
	}{
		{"root", "", "Seccomp:\t2\nrefused\nmade\n"},
		// The filter is installed before the switch to the user.
		{"nobody", "nobody", "Seccomp:\t2\nrefused\n"},
	} {
		stdout, stderr, _, code := runExecIn(t, c, spec, specs.Process{Args: []string{"sh", "-c", probe + "; rmdir /x"}, User: specs.User{Username: tc.user}})
		if stdout != tc.want || (code != 0) != (tc.user != "") {
			t.Errorf("%s: stdout %q stderr %q code %d, want %q", tc.name, stdout, stderr, code, tc.want)
		}
	}
}

func TestSeccompNeedsCompiledFilter(t *testing.T) {
	spec := testSpec(t, "/nonexistent", "true")
	spec.Linux.Seccomp = noMkdir
	if _, err := seccompOf(spec); err == nil || !strings.Contains(err.Error(), "no compiled filter") {
		t.Errorf("missing filter: %v", err)
	}
	spec.Annotations[AnnotationSeccomp] = "zz"
	if _, err := seccompOf(spec); err == nil {
		t.Error("bad filter accepted")
	}
}

// The filter handed over in a file of the bundle (as the engine does, to
// keep config.json small) reaches init and exec alike.
func TestSeccompFromFile(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	spec := testSpec(t, busyboxRoot(t), "sleep", "30")
	withProfile(t, spec, noMkdir)
	bundle := t.TempDir()
	if err := MoveSeccompToFile(spec, bundle); err != nil {
		t.Fatal(err)
	}
	if spec.Annotations[AnnotationSeccomp] != "" || spec.Annotations[AnnotationSeccompFile] != SeccompFile {
		t.Fatalf("annotations after the move: %v", spec.Annotations)
	}
	// Init finds it from its working directory, the bundle, as under the
	// monitor; here the test's: make the path absolute.
	spec.Annotations[AnnotationSeccompFile] = filepath.Join(bundle, SeccompFile)
	c := startedContainer(t, spec)
	if out := execOut(t, c, spec, bundle, "sh", "-c", "grep '^Seccomp:' /proc/1/status; mkdir /x && echo made"); out != "Seccomp:\t2\n" {
		t.Errorf("init with the filter from a file: %q", out)
	}
	// Exec resolves a relative name against the bundle it is given.
	spec.Annotations[AnnotationSeccompFile] = SeccompFile
	if out := execOut(t, c, spec, bundle, "sh", "-c", "grep '^Seccomp:' /proc/self/status; mkdir /y && echo made"); out != "Seccomp:\t2\n" {
		t.Errorf("exec with the filter from a file: %q", out)
	}
}

func execOut(t *testing.T, c *Container, spec *specs.Spec, bundle string, args ...string) string {
	t.Helper()
	cmd, err := ExecCommand(ExecOpts{ShimPath: shimPath, Bundle: bundle, ContainerPid: c.Pid(), Spec: spec, Process: specs.Process{Args: args, Env: spec.Process.Env}})
	if err != nil {
		t.Fatal(err)
	}
	defer cmd.Close()
	out, _ := cmd.Output()
	return string(out)
}
