package seccomp

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	profiles "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// call is one syscall as the filter sees it.
type call struct {
	arch uint32
	nr   uint32
	args [6]uint64
}

// data is struct seccomp_data for x/net/bpf's VM, which loads words in
// network byte order: each 32-bit word is stored big-endian at the offset
// the kernel's (little-endian) layout gives it.
func (c call) data() []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], c.nr)
	binary.BigEndian.PutUint32(b[4:], c.arch)
	for i, a := range c.args {
		binary.BigEndian.PutUint32(b[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[16+8*i+4:], uint32(a>>32))
	}
	return b
}

func nr(t *testing.T, info *arch.Info, name string) uint32 {
	t.Helper()
	n, ok := info.SyscallNames[name]
	if !ok {
		t.Fatalf("no syscall %s on %s", name, info.Name)
	}
	return uint32(n)
}

func run(t *testing.T, raw []bpf.RawInstruction, c call) uint32 {
	t.Helper()
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("program does not disassemble")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("vm: %v", err)
	}
	v, err := vm.Run(c.data())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return uint32(v)
}

const (
	allow = unix.SECCOMP_RET_ALLOW
	eperm = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	enosy = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	x8664 = unix.AUDIT_ARCH_X86_64
	i386  = unix.AUDIT_ARCH_I386
)

// dockerCaps is Docker's default capability set.
var dockerCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

// Docker's default profile, for Docker's default capabilities.
func TestDefaultProfile(t *testing.T) {
	prof, err := profiles.GetDefaultProfile(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: dockerCaps}}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := Compile(prof)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d instructions", len(raw))
	x, x32, i := arch.X86_64, arch.X32, arch.I386
	newUser := uint64(unix.CLONE_NEWUSER | unix.SIGCHLD)
	for _, tc := range []struct {
		name string
		c    call
		want uint32
	}{
		{"read", call{arch: x8664, nr: nr(t, x, "read")}, allow},
		{"execve", call{arch: x8664, nr: nr(t, x, "execve")}, allow},
		{"capset", call{arch: x8664, nr: nr(t, x, "capset")}, allow},
		{"setresuid", call{arch: x8664, nr: nr(t, x, "setresuid")}, allow},
		{"unshare", call{arch: x8664, nr: nr(t, x, "unshare")}, eperm},
		{"keyctl", call{arch: x8664, nr: nr(t, x, "keyctl")}, eperm},
		{"mount", call{arch: x8664, nr: nr(t, x, "mount")}, eperm},
		{"clone3 ENOSYS", call{arch: x8664, nr: nr(t, x, "clone3")}, enosy},
		{"clone fork", call{arch: x8664, nr: nr(t, x, "clone"), args: [6]uint64{uint64(unix.SIGCHLD)}}, allow},
		{"clone newuser", call{arch: x8664, nr: nr(t, x, "clone"), args: [6]uint64{newUser}}, eperm},
		{"clone high bits", call{arch: x8664, nr: nr(t, x, "clone"), args: [6]uint64{1 << 40}}, allow},
		{"personality 0", call{arch: x8664, nr: nr(t, x, "personality"), args: [6]uint64{0}}, allow},
		{"personality query", call{arch: x8664, nr: nr(t, x, "personality"), args: [6]uint64{0xffffffff}}, allow},
		{"personality other", call{arch: x8664, nr: nr(t, x, "personality"), args: [6]uint64{1}}, eperm},
		{"socket inet", call{arch: x8664, nr: nr(t, x, "socket"), args: [6]uint64{unix.AF_INET}}, allow},
		{"socket netlink", call{arch: x8664, nr: nr(t, x, "socket"), args: [6]uint64{unix.AF_NETLINK}}, allow},
		{"socket vsock", call{arch: x8664, nr: nr(t, x, "socket"), args: [6]uint64{unix.AF_VSOCK}}, eperm},
		{"socket alg", call{arch: x8664, nr: nr(t, x, "socket"), args: [6]uint64{unix.AF_ALG}}, eperm},
		{"unknown number", call{arch: x8664, nr: 4000}, eperm},
		{"x32 read", call{arch: x8664, nr: nr(t, x32, "read") | x32Bit}, x32Allow()},
		{"x32 unshare", call{arch: x8664, nr: nr(t, x32, "unshare") | x32Bit}, eperm},
		{"i386 read", call{arch: i386, nr: nr(t, i, "read")}, allow},
		{"i386 unshare", call{arch: i386, nr: nr(t, i, "unshare")}, eperm},
		{"i386 personality 8", call{arch: i386, nr: nr(t, i, "personality"), args: [6]uint64{8}}, allow},
		{"aarch64", call{arch: unix.AUDIT_ARCH_AARCH64, nr: 63}, eperm},
	} {
		if got := run(t, raw, tc.c); got != tc.want {
			t.Errorf("%s: got %#x, want %#x", tc.name, got, tc.want)
		}
	}

	// With CAP_SYS_ADMIN the profile allows what the capability guards.
	prof, err = profiles.GetDefaultProfile(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: append(slices.Clone(dockerCaps), "CAP_SYS_ADMIN")}}})
	if err != nil {
		t.Fatal(err)
	}
	if raw, err = Compile(prof); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"unshare", "mount", "clone3"} {
		if got := run(t, raw, call{arch: x8664, nr: nr(t, x, name)}); got != allow {
			t.Errorf("CAP_SYS_ADMIN %s: got %#x", name, got)
		}
	}
	if got := run(t, raw, call{arch: x8664, nr: nr(t, x, "clone"), args: [6]uint64{newUser}}); got != allow {
		t.Errorf("CAP_SYS_ADMIN clone newuser: got %#x", got)
	}
}

func u(v uint) *uint { return &v }

// Operators, actions and rule semantics on small profiles.
func TestCompile(t *testing.T) {
	x := arch.X86_64
	mkdir := nr(t, x, "mkdir")
	big := uint64(0x1_0000_0005)
	prof := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "nosuchcall"}, Action: specs.ActErrno, ErrnoRet: u(uint(unix.EACCES))},
			{Names: []string{"rmdir"}, Action: specs.ActErrno},
			{Names: []string{"getpid"}, Action: specs.ActAllow}, // the default: dropped
			{Names: []string{"kill"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 9, Op: specs.OpEqualTo}}},
			{Names: []string{"kill"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 15, Op: specs.OpNotEqual}, {Index: 0, Value: 1, Op: specs.OpEqualTo}}},
			{Names: []string{"dup"}, Action: specs.ActTrap, Args: []specs.LinuxSeccompArg{{Index: 0, Value: big, Op: specs.OpGreaterThan}}},
			{Names: []string{"dup2"}, Action: specs.ActLog, Args: []specs.LinuxSeccompArg{{Index: 0, Value: big, Op: specs.OpLessEqual}}},
			{Names: []string{"dup3"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 2, Value: 0xf0, ValueTwo: 0x30, Op: specs.OpMaskedEqual}}},
			// Two conditions on one argument: either one (runc's rule).
			{Names: []string{"close"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 3, Op: specs.OpEqualTo}, {Index: 0, Value: 100, Op: specs.OpGreaterEqual}}},
			{Names: []string{"lseek"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 10, Op: specs.OpLessThan}}},
		},
	}
	raw, err := Compile(prof)
	if err != nil {
		t.Fatal(err)
	}
	c := func(name string, args ...uint64) call {
		cl := call{arch: x8664, nr: nr(t, x, name)}
		copy(cl.args[:], args)
		return cl
	}
	for _, tc := range []struct {
		name string
		c    call
		want uint32
	}{
		{"mkdir errnoRet", call{arch: x8664, nr: mkdir}, unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)},
		{"rmdir EPERM", c("rmdir"), eperm},
		{"getpid", c("getpid"), allow},
		{"x32 not listed", call{arch: x8664, nr: mkdir | x32Bit}, allow},
		{"i386 not listed", call{arch: i386, nr: 39}, allow},
		{"kill 9", c("kill", 5, 9), unix.SECCOMP_RET_KILL_PROCESS},
		{"kill pid 1 sig 2", c("kill", 1, 2), eperm},
		{"kill pid 1 sig 15", c("kill", 1, 15), allow},
		{"kill pid 2 sig 2", c("kill", 2, 2), allow},
		{"kill sig hi word", c("kill", 5, 9|1<<32), allow},
		{"dup >", c("dup", big+1), unix.SECCOMP_RET_TRAP},
		{"dup = ", c("dup", big), allow},
		{"dup hi >", c("dup", 2<<32), unix.SECCOMP_RET_TRAP},
		{"dup lo only", c("dup", 0xffffffff), allow},
		{"dup2 <=", c("dup2", big), unix.SECCOMP_RET_LOG},
		{"dup2 small", c("dup2", 0xffffffff), unix.SECCOMP_RET_LOG},
		{"dup2 >", c("dup2", big+1), allow},
		{"dup3 masked", c("dup3", 0, 0, 0x3f), eperm},
		{"dup3 masked no", c("dup3", 0, 0, 0x4f), allow},
		{"close 3", c("close", 3), eperm},
		{"close 4", c("close", 4), allow},
		{"close 200", c("close", 200), eperm},
		{"lseek 9", c("lseek", 9), eperm},
		{"lseek 10", c("lseek", 10), allow},
		{"lseek 1<<32", c("lseek", 1<<32), allow},
	} {
		if got := run(t, raw, tc.c); got != tc.want {
			t.Errorf("%s: got %#x, want %#x", tc.name, got, tc.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		prof *specs.LinuxSeccomp
		want string
	}{
		{"nil", nil, "no profile"},
		{"bad default", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}, `unknown action "SCMP_ACT_BOGUS"`},
		{"notify", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActNotify}}}, "not supported"},
		{"bad op", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Op: "SCMP_CMP_XX"}}}}}, "unknown operator"},
		{"bad index", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, "out of range"},
	} {
		_, err := Compile(tc.prof)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func BenchmarkCompileDefault(b *testing.B) {
	prof, err := profiles.GetDefaultProfile(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Compile(prof); err != nil {
			b.Fatal(err)
		}
	}
}

// reference decides a call straight from the profile, with the semantics
// the package comment states, for comparison with the compiled program.
func reference(t *testing.T, s *specs.LinuxSeccomp, c call) uint32 {
	t.Helper()
	def, err := action(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[specs.Arch]bool{}
	for _, a := range s.Architectures {
		listed[a] = true
	}
	var tb *table
	nr := c.nr
	switch {
	case c.arch == unix.AUDIT_ARCH_X86_64 && nr&x32Bit != 0:
		if !listed[specs.ArchX32] || !x32Kernel() {
			return def
		}
		tb = tables[specs.ArchX32]
	case c.arch == unix.AUDIT_ARCH_X86_64:
		if !listed[specs.ArchX86_64] {
			return def
		}
		tb = tables[specs.ArchX86_64]
	case c.arch == unix.AUDIT_ARCH_I386:
		if !listed[specs.ArchX86] {
			return def
		}
		tb = tables[specs.ArchX86]
	default:
		return def
	}
	name := ""
	for n, num := range tb.names {
		if uint32(num)|tb.mask == nr && (name == "" || n < name) {
			name = n
		}
	}
	if name == "" {
		return def
	}
	holds := func(a specs.LinuxSeccompArg) bool {
		v, val, val2 := c.args[a.Index], a.Value, a.ValueTwo
		if tb.narrow {
			v, val, val2 = uint64(uint32(v)), uint64(uint32(val)), uint64(uint32(val2))
		}
		switch a.Op {
		case specs.OpEqualTo:
			return v == val
		case specs.OpNotEqual:
			return v != val
		case specs.OpLessThan:
			return v < val
		case specs.OpLessEqual:
			return v <= val
		case specs.OpGreaterThan:
			return v > val
		case specs.OpGreaterEqual:
			return v >= val
		case specs.OpMaskedEqual:
			return v&val == val2
		}
		t.Fatalf("op %s", a.Op)
		return false
	}
	for _, sc := range s.Syscalls {
		act, err := action(sc.Action, sc.ErrnoRet)
		if err != nil {
			t.Fatal(err)
		}
		if act == def || !slicesContains(sc.Names, name) {
			continue
		}
		for _, r := range splitRule(sc.Args, act) {
			ok := true
			for _, a := range r.conds {
				ok = ok && holds(a)
			}
			if ok {
				return act
			}
		}
	}
	return def
}

func slicesContains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Every syscall number of every architecture, with arguments that hit and
// miss the profile's conditions, decides as the profile says: Docker's
// default profile for a few capability sets, compiled and run on a BPF VM.
func TestCompiledMatchesProfile(t *testing.T) {
	for _, caps := range [][]string{
		nil,
		dockerCaps,
		{"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_NICE", "CAP_BPF", "CAP_PERFMON"},
	} {
		prof, err := profiles.GetDefaultProfile(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := Compile(prof)
		if err != nil {
			t.Fatal(err)
		}
		insns, ok := bpf.Disassemble(raw)
		if !ok {
			t.Fatal("program does not disassemble")
		}
		vm, err := bpf.NewVM(insns)
		if err != nil {
			t.Fatal(err)
		}
		values := map[uint64]bool{0: true, ^uint64(0): true}
		for _, sc := range prof.Syscalls {
			for _, a := range sc.Args {
				values[a.Value], values[a.ValueTwo], values[a.Value+1], values[a.Value-1] = true, true, true, true
			}
		}
		checked := 0
		for _, ar := range []uint32{unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_AARCH64} {
			for _, base := range []uint32{0, x32Bit} {
				if base != 0 && ar != unix.AUDIT_ARCH_X86_64 {
					continue
				}
				for n := uint32(0); n < 470; n++ {
					for v := range values {
						c := call{arch: ar, nr: base | n}
						for i := range c.args {
							c.args[i] = v
						}
						got, err := vm.Run(c.data())
						if err != nil {
							t.Fatal(err)
						}
						if want := reference(t, prof, c); uint32(got) != want {
							t.Fatalf("caps %v: arch %#x nr %#x args %#x: program %#x, profile %#x", caps, ar, c.nr, v, uint32(got), want)
						}
						checked++
					}
				}
			}
		}
		t.Logf("caps %v: %d instructions, %d calls checked", caps, len(raw), checked)
	}
}

// x32Allow is what an allowed x32 syscall gets: allowed on a kernel with
// the x32 ABI, the default (EPERM) on one without (its section is left out).
func x32Allow() uint32 {
	if x32Kernel() {
		return allow
	}
	return eperm
}
