// Package seccomp compiles an OCI seccomp profile (specs.LinuxSeccomp) into
// a classic BPF program for seccomp(2), in pure Go: no cgo, no libseccomp.
//
// The engine compiles (once per distinct profile) and hands the program to
// the runtime encoded (Encode); the shim only installs it, so the syscall
// tables and this compiler are not linked into skiff-shim.
//
// Semantics follow runc with libseccomp where Docker's profiles depend on
// them:
//   - architectures: the listed ones (the native one when none is), only
//     x86_64, x32 and i386 are known; a syscall of any other architecture
//     gets the default action;
//   - syscall names unknown on an architecture are skipped;
//   - rules whose action is the default action are dropped (runc does),
//     then the first rule of a syscall whose conditions match decides;
//   - conditions of a rule are ANDed, except that a rule with two
//     conditions on the same argument has each condition as a rule of its
//     own (ORed), as runc does;
//   - SCMP_ACT_ERRNO without errnoRet is EPERM.
//
// The syscall tables come from github.com/elastic/go-seccomp-bpf/arch. Its
// own policy compiler is not used: it supports one architecture per filter,
// one errno for every ERRNO action, and no masked comparison with a
// non-zero value, all of which Docker's profiles need.
package seccomp

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	goruntime "runtime"
	"slices"
	"sync"

	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Offsets in struct seccomp_data: nr, arch, instruction_pointer, args[6].
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

const x32Bit = 0x40000000 // __X32_SYSCALL_BIT

// x32Kernel reports whether this kernel runs x32 syscalls (a getpid with
// the x32 bit succeeds).
var x32Kernel = sync.OnceValue(func() bool {
	_, _, e := unix.RawSyscall(x32Bit|unix.SYS_GETPID, 0, 0, 0)
	return e == 0
})

// maxInsns is the kernel's BPF_MAXINSNS.
const maxInsns = 4096

// Error is a profile the compiler cannot turn into a filter (an unknown
// action, operator or architecture).
type Error struct{ Msg string }

func (e *Error) Error() string { return "seccomp: " + e.Msg }

func errorf(format string, a ...any) error { return &Error{Msg: fmt.Sprintf(format, a...)} }

// table is one architecture section of the filter.
type table struct {
	audit  uint32         // AUDIT_ARCH_*
	names  map[string]int // syscall numbers
	mask   uint32         // or'ed into the numbers (x32)
	narrow bool           // 32-bit arguments: compare the low word only
}

var tables = map[specs.Arch]*table{
	specs.ArchX86_64: {audit: unix.AUDIT_ARCH_X86_64, names: arch.X86_64.SyscallNames},
	specs.ArchX32:    {audit: unix.AUDIT_ARCH_X86_64, names: arch.X32.SyscallNames, mask: x32Bit},
	specs.ArchX86:    {audit: unix.AUDIT_ARCH_I386, names: arch.I386.SyscallNames, narrow: true},
}

var nativeArch = map[string]specs.Arch{"amd64": specs.ArchX86_64, "386": specs.ArchX86}

// rule is one alternative for a syscall: all conditions must hold.
type rule struct {
	conds  []specs.LinuxSeccompArg
	action uint32
}

// Compile turns s into a seccomp BPF program. A nil profile is an error:
// callers decide not to filter.
func Compile(s *specs.LinuxSeccomp) ([]bpf.RawInstruction, error) {
	if s == nil {
		return nil, errorf("no profile")
	}
	def, err := action(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("default action: %w", err)
	}
	if len(s.ListenerPath) > 0 {
		return nil, errorf("listenerPath (SCMP_ACT_NOTIFY) is not supported")
	}
	for _, f := range s.Flags {
		// The flags tune how libseccomp loads a filter; none changes what
		// it decides, except these, which are not supported.
		if f == specs.LinuxSeccompFlagWaitKillableRecv {
			return nil, errorf("flag %s is not supported", f)
		}
	}
	// Syscall names in order of first appearance, with their rules in
	// profile order.
	var order []string
	rules := map[string][]rule{}
	for i, sc := range s.Syscalls {
		act, err := action(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("syscalls[%d]: %w", i, err)
		}
		for _, a := range sc.Args {
			if a.Index > 5 {
				return nil, errorf("syscalls[%d]: argument index %d out of range", i, a.Index)
			}
			if err := checkOp(a.Op); err != nil {
				return nil, fmt.Errorf("syscalls[%d]: %w", i, err)
			}
		}
		if act == def {
			continue
		}
		for _, name := range sc.Names {
			if _, ok := rules[name]; !ok {
				order = append(order, name)
			}
			rules[name] = append(rules[name], splitRule(sc.Args, act)...)
		}
	}

	arches := s.Architectures
	if len(arches) == 0 {
		a, ok := nativeArch[goruntime.GOARCH]
		if !ok {
			return nil, errorf("no seccomp support for %s", goruntime.GOARCH)
		}
		arches = []specs.Arch{a}
	}
	var x86_64, x32, i386 bool
	for _, a := range arches {
		switch a {
		case specs.ArchX86_64:
			x86_64 = true
		case specs.ArchX32:
			x32 = true
		case specs.ArchX86:
			i386 = true
		default:
			// Another machine's architecture (a profile lists many): its
			// syscalls never reach this kernel, they get the default.
		}
	}
	// A kernel without the x32 ABI fails those syscalls anyway: their
	// section would only lengthen the program (by a third for Docker's
	// profile), so they get the default action instead.
	x32 = x32 && x32Kernel()

	p := &prog{}
	ret := bpf.RetConstant{Val: def}
	p.emit(bpf.LoadAbsolute{Off: offArch, Size: 4})
	// Dispatch on the architecture; each section ends with the default.
	var secs []func()
	if x86_64 || x32 {
		j := p.jumpIfEq(unix.AUDIT_ARCH_X86_64)
		secs = append(secs, func() {
			p.target(j)
			p.emit(bpf.LoadAbsolute{Off: offNr, Size: 4})
			if !x32 {
				// x32 syscalls share the x86_64 audit arch.
				p.emit(bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32Bit, SkipTrue: 0, SkipFalse: 1}, ret)
			} else if !x86_64 {
				p.emit(bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32Bit, SkipTrue: 1, SkipFalse: 0}, ret)
			}
			if x86_64 {
				p.section(tables[specs.ArchX86_64], order, rules, ret)
			}
			if x32 {
				p.section(tables[specs.ArchX32], order, rules, ret)
			}
			p.emit(ret)
		})
	}
	if i386 {
		j := p.jumpIfEq(unix.AUDIT_ARCH_I386)
		secs = append(secs, func() {
			p.target(j)
			p.emit(bpf.LoadAbsolute{Off: offNr, Size: 4})
			p.section(tables[specs.ArchX86], order, rules, ret)
			p.emit(ret)
		})
	}
	p.emit(ret) // an architecture not listed
	for _, sec := range secs {
		sec()
	}
	if p.err != nil {
		return nil, p.err
	}
	if len(p.insns) > maxInsns {
		return nil, errorf("profile needs %d BPF instructions, more than the kernel's %d", len(p.insns), maxInsns)
	}
	raw, err := bpf.Assemble(p.insns)
	if err != nil {
		return nil, errorf("assemble: %v", err)
	}
	return raw, nil
}

// splitRule turns a profile entry's conditions into rules: one rule with
// all of them, or (when an argument is compared twice) one per condition.
func splitRule(args []specs.LinuxSeccompArg, act uint32) []rule {
	seen := map[uint]bool{}
	for _, a := range args {
		if seen[a.Index] {
			var rs []rule
			for _, a := range args {
				rs = append(rs, rule{conds: []specs.LinuxSeccompArg{a}, action: act})
			}
			return rs
		}
		seen[a.Index] = true
	}
	return []rule{{conds: args, action: act}}
}

// action is the SECCOMP_RET_* value of a profile action.
func action(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := func(def uint) uint32 {
		if errnoRet != nil {
			def = *errnoRet
		}
		return uint32(def) & unix.SECCOMP_RET_DATA
	}
	switch a {
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data(uint(unix.EPERM)), nil
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | data(0), nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return 0, errorf("action %s is not supported", a)
	default:
		return 0, errorf("unknown action %q", a)
	}
}

func checkOp(op specs.LinuxSeccompOperator) error {
	switch op {
	case specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
		specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual:
		return nil
	}
	return errorf("unknown operator %q", op)
}

// prog is a program being laid out. Conditional jumps reach 255
// instructions at most; far targets go through an unconditional jump.
type prog struct {
	insns []bpf.Instruction
	err   error
}

func (p *prog) emit(in ...bpf.Instruction) { p.insns = append(p.insns, in...) }

// jumpIfEq emits "if A == v goto (later target)" and returns a handle
// for target. It is a short conditional skip over a long jump.
func (p *prog) jumpIfEq(v uint32) int {
	p.emit(bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: v, SkipTrue: 1})
	p.emit(bpf.Jump{})
	return len(p.insns) - 1
}

// target makes the long jump at j land here.
func (p *prog) target(j int) {
	p.insns[j] = bpf.Jump{Skip: uint32(len(p.insns) - j - 1)}
}

// section emits the rules of every syscall known to t, for a syscall
// number in A. A syscall that matches returns; one whose rules all fail
// returns ret; others fall through.
//
// Most syscalls of a profile have one unconditional rule (Docker's allows
// about 350 that way): those are tested as ranges of consecutive numbers
// with the same action, a few dozen ranges instead of one test each. The
// kernel converts and compiles the whole program at every install (once
// per container start and exec), so its length is start-up time.
func (p *prog) section(t *table, order []string, rules map[string][]rule, ret bpf.RetConstant) {
	plain := map[uint32][]uint32{} // action → syscall numbers
	var actions []uint32
	var conditional []string
	for _, name := range order {
		n, ok := t.names[name]
		if !ok {
			continue
		}
		rs := rules[name]
		for i, r := range rs { // nothing after an unconditional rule is reached
			if len(r.conds) == 0 {
				rs = rs[:i+1]
				break
			}
		}
		rules[name] = rs
		if len(rs) == 1 && len(rs[0].conds) == 0 {
			act := rs[0].action
			if _, ok := plain[act]; !ok {
				actions = append(actions, act)
			}
			plain[act] = append(plain[act], uint32(n)|t.mask)
			continue
		}
		conditional = append(conditional, name)
	}
	for _, act := range actions {
		p.ranges(plain[act], act)
	}
	for _, name := range conditional {
		p.syscall(t, uint32(t.names[name])|t.mask, rules[name], ret)
	}
}

// ranges emits, for a syscall number in A: if it is one of nrs, return act;
// else fall through (A unchanged).
func (p *prog) ranges(nrs []uint32, act uint32) {
	spans := make([]span, len(nrs))
	for i, n := range nrs {
		spans[i] = span{n, n}
	}
	p.spans(spans, act)
}

// span is the values lo..hi, both included.
type span struct{ lo, hi uint32 }

// spans emits, for a value in A: if it falls in one of the spans, return
// act; else fall through (A unchanged).
func (p *prog) spans(spans []span, act uint32) {
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
	var merged []span
	for _, sp := range spans {
		if n := len(merged); n > 0 && uint64(sp.lo) <= uint64(merged[n-1].hi)+1 {
			merged[n-1].hi = max(merged[n-1].hi, sp.hi)
			continue
		}
		merged = append(merged, sp)
	}
	// Ascending: past a span's end, try the next; inside it, return;
	// before its start, the value is in no span: leave.
	var leaves []int
	for i, sp := range merged {
		last := i == len(merged)-1
		skip := uint8(3)
		if last {
			skip = 2
		}
		p.emit(bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: sp.hi, SkipTrue: skip})
		p.emit(bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: sp.lo, SkipFalse: 1}, bpf.RetConstant{Val: act})
		if last {
			break
		}
		leaves = append(leaves, len(p.insns))
		p.emit(bpf.Jump{}) // to the end, set below
	}
	for _, j := range leaves {
		p.insns[j] = bpf.Jump{Skip: uint32(len(p.insns) - j - 1)}
	}
}

// syscall emits: if nr matches, the first rule whose conditions hold
// returns its action, else ret.
func (p *prog) syscall(t *table, nr uint32, rs []rule, ret bpf.RetConstant) {
	p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: nr, SkipTrue: 1})
	skip := len(p.insns)
	p.emit(bpf.Jump{}) // to the next syscall, set below
	if idx, hi, set, act, ok := valueSet(t, rs); ok {
		// "argument idx is in these ranges": tested as for syscall numbers
		// (Docker's socket rules list some 30 address families).
		if !t.narrow {
			p.emit(bpf.LoadAbsolute{Off: uint32(offArgs + 8*idx + 4), Size: 4})
			p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: hi, SkipTrue: 1}, ret)
		}
		p.emit(bpf.LoadAbsolute{Off: uint32(offArgs + 8*idx), Size: 4})
		p.spans(set, act)
		p.emit(ret)
		p.insns[skip] = bpf.Jump{Skip: uint32(len(p.insns) - skip - 1)}
		return
	}
	for _, r := range rs {
		// Each condition jumps to fail on failure; fail is the next rule,
		// patched once this rule is laid out.
		var fails []int
		for _, c := range r.conds {
			fails = append(fails, p.cond(t, c)...)
		}
		p.emit(bpf.RetConstant{Val: r.action})
		for _, f := range fails {
			p.patchFail(f, len(p.insns))
		}
	}
	p.emit(ret)
	p.insns[skip] = bpf.Jump{Skip: uint32(len(p.insns) - skip - 1)}
}

// valueSet reports whether rs is a set of ranges of one argument: every
// rule one condition on the same argument, EqualTo, LessThan or
// LessEqual, with the same action and the same high word (for 64-bit
// arguments; 0 for the two "less" ones, whose range then starts at 0). It
// returns the argument, the high word, the ranges of the low word and the
// action.
func valueSet(t *table, rs []rule) (idx uint, hi uint32, set []span, act uint32, ok bool) {
	if len(rs) < 2 {
		return 0, 0, nil, 0, false
	}
	for i, r := range rs {
		if len(r.conds) != 1 {
			return 0, 0, nil, 0, false
		}
		c := r.conds[0]
		v := c.Value
		if t.narrow {
			v = uint64(uint32(v))
		}
		var sp span
		switch c.Op {
		case specs.OpEqualTo:
			sp = span{uint32(v), uint32(v)}
		case specs.OpLessThan:
			if v>>32 != 0 || v == 0 {
				return 0, 0, nil, 0, false
			}
			sp = span{0, uint32(v - 1)}
		case specs.OpLessEqual:
			if v>>32 != 0 {
				return 0, 0, nil, 0, false
			}
			sp = span{0, uint32(v)}
		default:
			return 0, 0, nil, 0, false
		}
		if i == 0 {
			idx, hi, act = c.Index, uint32(v>>32), r.action
		} else if c.Index != idx || uint32(v>>32) != hi || r.action != act {
			return 0, 0, nil, 0, false
		}
		set = append(set, sp)
	}
	return idx, hi, set, act, true
}

// cond emits the test of one condition on the argument and returns the
// conditional jumps whose false branch (placeholder) must reach the next
// rule. A true outcome falls through.
func (p *prog) cond(t *table, c specs.LinuxSeccompArg) []int {
	lo := func() { p.emit(bpf.LoadAbsolute{Off: uint32(offArgs + 8*c.Index), Size: 4}) }
	hi := func() { p.emit(bpf.LoadAbsolute{Off: uint32(offArgs + 8*c.Index + 4), Size: 4}) }
	v, v2 := c.Value, c.ValueTwo
	if t.narrow {
		v, v2 = uint64(uint32(v)), uint64(uint32(v2))
	}
	vhi, vlo := uint32(v>>32), uint32(v)
	var fails []int
	// failIf emits a jump to the failure target when cond holds on A.
	failIf := func(cond bpf.JumpTest, val uint32) {
		fails = append(fails, len(p.insns))
		p.emit(bpf.JumpIf{Cond: cond, Val: val})
	}
	// The word comparisons follow libseccomp's for 64-bit arguments: the
	// high words decide unless they are equal.
	switch c.Op {
	case specs.OpEqualTo:
		if !t.narrow {
			hi()
			failIf(bpf.JumpNotEqual, vhi)
		}
		lo()
		failIf(bpf.JumpNotEqual, vlo)
	case specs.OpNotEqual:
		// Not equal: hi differs, or lo differs.
		if t.narrow {
			lo()
			failIf(bpf.JumpEqual, vlo)
			break
		}
		hi()
		// if hi != vhi: true (skip the low test: 2 instructions)
		p.emit(bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: vhi, SkipTrue: 2})
		lo()
		failIf(bpf.JumpEqual, vlo)
	case specs.OpMaskedEqual:
		// (arg & Value) == ValueTwo, per word.
		if !t.narrow {
			hi()
			p.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vhi})
			failIf(bpf.JumpNotEqual, uint32(v2>>32))
		}
		lo()
		p.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vlo})
		failIf(bpf.JumpNotEqual, uint32(v2))
	default: // ordered comparisons
		var loFail bpf.JumpTest // fail when this holds on the low word
		var hiTrue bpf.JumpTest // true when this holds on the high word
		switch c.Op {
		case specs.OpLessThan:
			loFail, hiTrue = bpf.JumpGreaterOrEqual, bpf.JumpLessThan
		case specs.OpLessEqual:
			loFail, hiTrue = bpf.JumpGreaterThan, bpf.JumpLessThan
		case specs.OpGreaterThan:
			loFail, hiTrue = bpf.JumpLessOrEqual, bpf.JumpGreaterThan
		case specs.OpGreaterEqual:
			loFail, hiTrue = bpf.JumpLessThan, bpf.JumpGreaterThan
		}
		if !t.narrow {
			hi()
			// hi decides when it differs: true → skip the rest (3 insns).
			p.emit(bpf.JumpIf{Cond: hiTrue, Val: vhi, SkipTrue: 3})
			failIf(bpf.JumpNotEqual, vhi)
		}
		lo()
		failIf(loFail, vlo)
	}
	return fails
}

// patchFail points the true branch of the failure jump at i to target.
func (p *prog) patchFail(i, target int) {
	d := target - i - 1
	if d > 255 {
		if p.err == nil {
			p.err = errorf("a syscall's rules are too long to compile")
		}
		return
	}
	j := p.insns[i].(bpf.JumpIf)
	j.SkipTrue = uint8(d)
	p.insns[i] = j
}

// Encode is the program as the runtime takes it (runtime's
// AnnotationSeccomp and the exec blob): the struct sock_filter array in
// host byte order, hex-encoded.
func Encode(prog []bpf.RawInstruction) string {
	b := make([]byte, 0, 8*len(prog))
	for _, in := range prog {
		b = binary.NativeEndian.AppendUint16(b, in.Op)
		b = append(b, in.Jt, in.Jf)
		b = binary.NativeEndian.AppendUint32(b, in.K)
	}
	return hex.EncodeToString(b)
}
