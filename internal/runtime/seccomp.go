package runtime

import (
	"encoding/binary"
	"encoding/hex"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// AnnotationSeccomp carries the compiled seccomp filter of the container's
// profile: struct sock_filter array, host byte order, hex-encoded
// (internal/runtime/seccomp.Encode). The engine compiles a profile once for
// many containers; the shim only installs it, without linking a compiler
// and syscall tables.
const AnnotationSeccomp = "org.skiff.seccomp.bpf"

// seccompFilter returns the spec's compiled filter ("" for none), checked
// to decode. The engine's specs carry only the compiled filter; a spec
// with a profile (Linux.Seccomp) but no compiled filter is refused rather
// than run unfiltered.
func seccompFilter(spec *specs.Spec) (string, error) {
	enc := spec.Annotations[AnnotationSeccomp]
	if enc == "" {
		if spec.Linux.Seccomp != nil {
			return "", errdefs.Invalid("runtime: the spec has a seccomp profile but no compiled filter (annotation %s)", AnnotationSeccomp)
		}
		return "", nil
	}
	if _, err := decodeFilter(enc); err != nil {
		return "", err
	}
	return enc, nil
}

// decodeFilter turns AnnotationSeccomp's text into instructions.
func decodeFilter(enc string) ([]unix.SockFilter, error) {
	b, err := hex.DecodeString(enc)
	if err != nil || len(b) == 0 || len(b)%8 != 0 || len(b)/8 > 4096 {
		return nil, errdefs.Invalid("runtime: bad compiled seccomp filter in %s", AnnotationSeccomp)
	}
	f := make([]unix.SockFilter, len(b)/8)
	for i := range f {
		w := b[8*i:]
		f[i] = unix.SockFilter{Code: binary.NativeEndian.Uint16(w), Jt: w[2], Jf: w[3], K: binary.NativeEndian.Uint32(w[4:])}
	}
	return f, nil
}

// installFilter loads the filter on the calling thread (no TSYNC: only
// this thread execs). It needs CAP_SYS_ADMIN or no_new_privs: the init
// still has its capabilities, and the program's setgroups, setresuid,
// capset, prctl, chdir and execve that follow must be allowed by it
// (Docker's profiles do).
func installFilter(f []unix.SockFilter) error {
	if len(f) == 0 {
		return nil
	}
	prog := unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0); err != nil {
		return errdefs.System("install seccomp filter: %v", err)
	}
	return nil
}
