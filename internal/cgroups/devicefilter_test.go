package cgroups

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func devRule(allow bool, typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	r := specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Access: access}
	if major >= 0 {
		r.Major = ptr(major)
	}
	if minor >= 0 {
		r.Minor = ptr(minor)
	}
	return r
}

// The device program on a real cgroup2: a process born in the cgroup can
// open and mknod exactly what the rules allow, per access bit, the last
// matching rule winning; Update swaps the program without stacking them.
func TestV2DeviceRules(t *testing.T) {
	requireRoot(t)
	mnt := cgroup2Root(t)
	path := "/" + t.Name() + "/c"
	t.Cleanup(func() { os.Remove(filepath.Join(mnt, filepath.Dir(path))) })
	docker := []specs.LinuxDeviceCgroup{
		devRule(false, "a", -1, -1, "rwm"),
		devRule(true, "c", -1, -1, "m"), devRule(true, "b", -1, -1, "m"),
		devRule(true, "c", 1, 3, "rwm"),                                 // null
		devRule(true, "c", 1, 5, "r"),                                   // zero: read only
		devRule(true, "c", 1, 7, "rwm"), devRule(false, "c", 1, 7, "w"), // full: the later deny of w wins
		devRule(true, "c", 1, 8, "r"), devRule(true, "c", 1, 8, "w"), // random: r and w from two rules
	}
	m, err := NewV2(mnt, path, &specs.LinuxResources{Devices: docker})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Destroy() })
	dir := m.Dirs()[""]
	tmp := t.TempDir()
	// run reports whether sh -c script succeeds inside the cgroup.
	run := func(script string) bool {
		d, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = tmp
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(d.Fd())}
		return cmd.Run() == nil
	}
	for _, tc := range []struct {
		script string
		ok     bool
	}{
		{"echo x > /dev/null && cat /dev/null", true},
		{"head -c1 /dev/zero >/dev/null", true},
		{"echo x > /dev/zero", false},
		{"exec 3<>/dev/zero", false}, // read and write at once: w is denied
		{"head -c1 /dev/full >/dev/null", true},
		{"echo x > /dev/full", false},
		{"exec 3<>/dev/random", true},
		{"head -c1 /dev/urandom >/dev/null", false}, // 1:9 is not in the list
		{"mknod n9 c 1 9 && ! head -c1 n9", true},   // mknod any c, not open
		{"mknod b7 b 7 0", true},
	} {
		if got := run(tc.script); got != tc.ok {
			t.Errorf("%q in the cgroup: success %v, want %v", tc.script, got, tc.ok)
		}
	}
	os.Remove(filepath.Join(tmp, "n9"))
	os.Remove(filepath.Join(tmp, "b7"))

	// Update: urandom allowed now, zero no longer; one program attached.
	if err := m.Update(&specs.LinuxResources{Devices: append(docker[:4:4], devRule(true, "c", 1, 9, "rw"))}); err != nil {
		t.Fatal(err)
	}
	if !run("head -c1 /dev/urandom >/dev/null") || run("head -c1 /dev/zero >/dev/null") {
		t.Error("Update did not replace the rules")
	}
	cg, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cg)
	if ids, err := attachedDevicePrograms(cg); err != nil || len(ids) != 1 {
		t.Errorf("attached programs after Update: %v %v, want one", ids, err)
	}
	// Allow all (privileged).
	if err := m.Update(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}}); err != nil {
		t.Fatal(err)
	}
	if !run("echo x > /dev/zero && exec 3<>/dev/urandom") {
		t.Error("allow-all rule denies")
	}
}

func TestDeviceProgramRejectsBadRules(t *testing.T) {
	for _, r := range []specs.LinuxDeviceCgroup{
		{Allow: true, Type: "x", Access: "rwm"},
		{Allow: true, Type: "c", Access: "rwx"},
	} {
		if _, err := deviceProgram([]specs.LinuxDeviceCgroup{r}); err == nil {
			t.Errorf("rule %+v accepted", r)
		}
	}
}

// runProgram interprets the few instructions deviceProgram emits.
func runProgram(t *testing.T, prog []bpfInsn, typ, access, major, minor uint32) uint64 {
	var reg [11]uint64
	ctx := [3]uint32{access<<16 | typ, major, minor}
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		dst, src, imm := in.regs&0xf, in.regs>>4, uint64(int64(in.imm))
		switch in.code {
		case opLdxW:
			if src != r1 {
				t.Fatalf("load from r%d", src)
			}
			reg[dst] = uint64(ctx[in.off/4])
		case opMovImm:
			reg[dst] = imm
		case opMovReg:
			reg[dst] = reg[src]
		case opAndImm:
			reg[dst] &= imm
		case opRshImm:
			reg[dst] >>= imm
		case opJa:
			pc += int(in.off)
		case opJneImm:
			if reg[dst] != imm {
				pc += int(in.off)
			}
		case opJsetImm:
			if reg[dst]&imm != 0 {
				pc += int(in.off)
			}
		case opExit:
			return reg[r0]
		default:
			t.Fatalf("opcode %#x", in.code)
		}
	}
	t.Fatal("fell off the program")
	return 0
}

// The program against the rule semantics read directly (per access bit,
// the last matching rule naming it decides; none denies), for every
// request on a few devices and many rule lists.
func TestDeviceProgramSemantics(t *testing.T) {
	kinds := []string{"a", "c", "b"}
	nums := []int64{-1, 1, 7}
	accs := []string{"r", "w", "m", "rw", "rwm", "wm"}
	var pool []specs.LinuxDeviceCgroup
	for _, allow := range []bool{true, false} {
		for _, k := range kinds {
			for _, maj := range nums {
				for _, acc := range accs {
					pool = append(pool, devRule(allow, k, maj, 3, acc), devRule(allow, k, maj, -1, acc))
				}
			}
		}
	}
	bitsOf := map[rune]uint32{'m': unix.BPF_DEVCG_ACC_MKNOD, 'r': unix.BPF_DEVCG_ACC_READ, 'w': unix.BPF_DEVCG_ACC_WRITE}
	want := func(rules []specs.LinuxDeviceCgroup, typ string, access uint32, major, minor int64) bool {
		for _, bit := range []uint32{1, 2, 4} {
			if access&bit == 0 {
				continue
			}
			ok := false
			for _, r := range rules {
				var rb uint32
				for _, c := range r.Access {
					rb |= bitsOf[c]
				}
				if rb&bit == 0 || (r.Type != "a" && r.Type != typ) ||
					(r.Major != nil && *r.Major >= 0 && *r.Major != major) ||
					(r.Minor != nil && *r.Minor >= 0 && *r.Minor != minor) {
					continue
				}
				ok = r.Allow
			}
			if !ok {
				return false
			}
		}
		return true
	}
	seed := uint32(1)
	next := func(n int) int { seed = seed*1103515245 + 12345; return int(seed>>8) % n }
	for i := 0; i < 500; i++ {
		rules := make([]specs.LinuxDeviceCgroup, 1+next(6))
		for j := range rules {
			rules[j] = pool[next(len(pool))]
		}
		prog, err := deviceProgram(rules)
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range []string{"c", "b"} {
			code := uint32(unix.BPF_DEVCG_DEV_CHAR)
			if typ == "b" {
				code = unix.BPF_DEVCG_DEV_BLOCK
			}
			for access := uint32(1); access < 8; access++ {
				for _, dev := range [][2]int64{{1, 3}, {7, 3}, {1, 5}, {9, 9}} {
					got := runProgram(t, prog, code, access, uint32(dev[0]), uint32(dev[1])) == 1
					if got != want(rules, typ, access, dev[0], dev[1]) {
						t.Fatalf("rules %+v: %s %d:%d access %d: program says %v", rules, typ, dev[0], dev[1], access, got)
					}
				}
			}
		}
	}
}
