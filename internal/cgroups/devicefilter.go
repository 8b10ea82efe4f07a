package cgroups

// The device cgroup of cgroup v2 is an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE)
// attached to the cgroup: the kernel runs it on every open and mknod of a
// device node by a process in the cgroup, and refuses the access when it
// returns 0. It is written here by hand, a few instructions per rule, and
// loaded with the bpf(2) syscall: this runs on every container start, in
// the small skiff-shim, so no eBPF library (cilium/ebpf would add a large
// package graph and its own start-up work for one short program).

import (
	"errors"
	"fmt"

	goruntime "runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// bpfInsn is struct bpf_insn.
type bpfInsn struct {
	code uint8
	regs uint8 // dst_reg in the low nibble, src_reg in the high one
	off  int16
	imm  int32
}

// Opcodes (BPF_CLASS | BPF_OP | BPF_SRC).
const (
	opLdxW    = 0x61 // BPF_LDX | BPF_MEM | BPF_W
	opMovImm  = 0xb7 // BPF_ALU64 | BPF_MOV | BPF_K
	opMovReg  = 0xbf // BPF_ALU64 | BPF_MOV | BPF_X
	opAndImm  = 0x57 // BPF_ALU64 | BPF_AND | BPF_K
	opRshImm  = 0x77 // BPF_ALU64 | BPF_RSH | BPF_K
	opJa      = 0x05 // BPF_JMP | BPF_JA
	opJneImm  = 0x55 // BPF_JMP | BPF_JNE | BPF_K
	opJsetImm = 0x45 // BPF_JMP | BPF_JSET | BPF_K
	opExit    = 0x95 // BPF_JMP | BPF_EXIT
)

// Registers of the program: r1 is the context (struct bpf_cgroup_dev_ctx:
// u32 access_type = access << 16 | type, u32 major, u32 minor).
const (
	r0, r1, rAccess, rType, rMajor, rMinor = 0, 1, 2, 3, 4, 5
)

func insn(code uint8, dst, src uint8, off int16, imm int32) bpfInsn {
	return bpfInsn{code: code, regs: dst | src<<4, off: off, imm: imm}
}

// deviceProgram compiles device cgroup rules into the program. Semantics,
// per access bit (read, write, mknod) of a request: the last rule in order
// that matches the device and names that bit decides it; a bit no rule
// names is denied; the request is allowed when all its bits are. This is
// cgroup v1's behaviour for the rules Docker writes (deny all, then
// allows) and for an allow-all rule; for a deny after an allow of the same
// device it denies, where v1 keeps exact-match bookkeeping.
//
// The rules are tested from the last to the first, with the undecided bits
// of the request in rAccess: a matching deny rule that names one of them
// denies; a matching allow rule clears the bits it names, and allows once
// none is left.
func deviceProgram(rules []specs.LinuxDeviceCgroup) ([]bpfInsn, error) {
	prog := []bpfInsn{
		insn(opLdxW, rAccess, r1, 0, 0),
		insn(opMovReg, rType, rAccess, 0, 0),
		insn(opAndImm, rType, 0, 0, 0xffff),
		insn(opRshImm, rAccess, 0, 0, 16),
		insn(opLdxW, rMajor, r1, 4, 0),
		insn(opLdxW, rMinor, r1, 8, 0),
	}
	for i := len(rules) - 1; i >= 0; i-- {
		block, err := ruleBlock(rules[i])
		if err != nil {
			return nil, err
		}
		prog = append(prog, block...)
	}
	return append(prog, insn(opMovImm, r0, 0, 0, 0), insn(opExit, 0, 0, 0, 0)), nil
}

// ruleBlock is one rule's test. skip marks jumps to the end of the block
// (the next rule); their offsets are filled in once its length is known.
func ruleBlock(r specs.LinuxDeviceCgroup) ([]bpfInsn, error) {
	const skip = int16(-32768)
	var b []bpfInsn
	switch r.Type {
	case "", "a":
	case "c":
		b = append(b, insn(opJneImm, rType, 0, skip, unix.BPF_DEVCG_DEV_CHAR))
	case "b":
		b = append(b, insn(opJneImm, rType, 0, skip, unix.BPF_DEVCG_DEV_BLOCK))
	default:
		return nil, errdefs.Invalid("cgroups: invalid device rule type %q", r.Type)
	}
	if r.Major != nil && *r.Major >= 0 {
		b = append(b, insn(opJneImm, rMajor, 0, skip, int32(*r.Major)))
	}
	if r.Minor != nil && *r.Minor >= 0 {
		b = append(b, insn(opJneImm, rMinor, 0, skip, int32(*r.Minor)))
	}
	access := r.Access
	if access == "" {
		access = "rwm"
	}
	var bits int32
	for _, c := range access {
		switch c {
		case 'r':
			bits |= unix.BPF_DEVCG_ACC_READ
		case 'w':
			bits |= unix.BPF_DEVCG_ACC_WRITE
		case 'm':
			bits |= unix.BPF_DEVCG_ACC_MKNOD
		default:
			return nil, errdefs.Invalid("cgroups: invalid device access %q", r.Access)
		}
	}
	// Go on with this rule only if it names an undecided bit.
	b = append(b, insn(opJsetImm, rAccess, 0, 1, bits), insn(opJa, 0, 0, skip, 0))
	if !r.Allow {
		b = append(b, insn(opMovImm, r0, 0, 0, 0), insn(opExit, 0, 0, 0, 0))
	} else {
		b = append(b,
			insn(opAndImm, rAccess, 0, 0, ^bits),
			insn(opJneImm, rAccess, 0, skip, 0),
			insn(opMovImm, r0, 0, 0, 1), insn(opExit, 0, 0, 0, 0))
	}
	for i := range b {
		if b[i].off == skip {
			b[i].off = int16(len(b) - i - 1)
		}
	}
	return b, nil
}

// bpf(2) attributes, as far as these commands read them.
type progLoadAttr struct {
	progType, insnCnt  uint32
	insns, license     uint64
	logLevel, logSize  uint32
	logBuf             uint64
	kernVersion, flags uint32
	name               [16]byte
	ifindex            uint32
	expectedAttachType uint32
}

type progAttachAttr struct {
	targetFd, attachBpfFd, attachType, attachFlags, replaceBpfFd uint32
}

type progQueryAttr struct {
	targetFd, attachType, queryFlags, attachFlags uint32
	progIDs                                       uint64
	progCnt, _                                    uint32
}

type progGetFdAttr struct {
	progID, nextID, openFlags uint32
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// loadDeviceProgram loads prog and returns its descriptor. On a verifier
// refusal the load is repeated with a log, for the error.
func loadDeviceProgram(prog []bpfInsn) (int, error) {
	license := []byte("Apache\x00")
	attr := progLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(prog)),
		insns:    uint64(uintptr(unsafe.Pointer(&prog[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	copy(attr.name[:], "skiff_devices")
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err == unix.EINVAL || err == unix.EACCES {
		log := make([]byte, 64<<10)
		attr.logLevel, attr.logSize = 1, uint32(len(log))
		attr.logBuf = uint64(uintptr(unsafe.Pointer(&log[0])))
		if _, err2 := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err2 != nil {
			n := 0
			for n < len(log) && log[n] != 0 {
				n++
			}
			err = fmt.Errorf("%w: %s", err, log[:n])
		}
		goruntime.KeepAlive(log)
	}
	goruntime.KeepAlive(prog)
	goruntime.KeepAlive(license)
	if err != nil {
		return -1, fmt.Errorf("load the device program: %w", err)
	}
	return fd, nil
}

// attachedDevicePrograms lists the ids of the device programs attached to
// the cgroup itself (not inherited ones).
func attachedDevicePrograms(cg int) ([]uint32, error) {
	ids := make([]uint32, 64)
	attr := progQueryAttr{
		targetFd: uint32(cg), attachType: unix.BPF_CGROUP_DEVICE,
		progIDs: uint64(uintptr(unsafe.Pointer(&ids[0]))), progCnt: uint32(len(ids)),
	}
	_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	goruntime.KeepAlive(ids)
	if err != nil {
		return nil, fmt.Errorf("query device programs: %w", err)
	}
	return ids[:attr.progCnt], nil
}

// setDeviceRules makes rules the device cgroup of the v2 cgroup at dir: the
// new program is attached first, then those attached before are detached,
// so there is no moment without one. (BPF_F_ALLOW_MULTI, as runc and
// systemd attach theirs: programs of parents keep applying too.)
func setDeviceRules(dir string, rules []specs.LinuxDeviceCgroup) error {
	prog, err := deviceProgram(rules)
	if err != nil {
		return err
	}
	pfd, err := loadDeviceProgram(prog)
	if err != nil {
		return deviceError(err)
	}
	defer unix.Close(pfd)
	cg, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cgroups: device rules: %w", err)
	}
	defer unix.Close(cg)
	old, err := attachedDevicePrograms(cg)
	if err != nil {
		return deviceError(err)
	}
	attach := progAttachAttr{targetFd: uint32(cg), attachBpfFd: uint32(pfd), attachType: unix.BPF_CGROUP_DEVICE, attachFlags: unix.BPF_F_ALLOW_MULTI}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attach), unsafe.Sizeof(attach)); err != nil {
		return deviceError(fmt.Errorf("attach the device program to %s: %w", dir, err))
	}
	for _, id := range old {
		get := progGetFdAttr{progID: id}
		ofd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&get), unsafe.Sizeof(get))
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return deviceError(fmt.Errorf("open device program %d: %w", id, err))
		}
		detach := progAttachAttr{targetFd: uint32(cg), attachBpfFd: uint32(ofd), attachType: unix.BPF_CGROUP_DEVICE}
		_, err = bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&detach), unsafe.Sizeof(detach))
		unix.Close(ofd)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return deviceError(fmt.Errorf("detach device program %d: %w", id, err))
		}
	}
	return nil
}

func deviceError(err error) error {
	return errdefs.System("cgroups: device rules: %v", err)
}
