package runtime

import (
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
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

// AnnotationSeccompFile names, relative to the bundle, a file holding the
// compiled filter raw (the same struct sock_filter array). The engine puts
// the filter there rather than in config.json: a monitor stays resident per
// container, and its memory grows with the size of the spec it reads
// (about 0.45 MiB for 6 KB more, measured), which the filter's 8 KB of hex
// would otherwise add to every running container.
const AnnotationSeccompFile = "org.skiff.seccomp.file"

// SeccompFile is the name the engine gives that file in a bundle.
const SeccompFile = "seccomp.bpf"

// MoveSeccompToFile takes an inline compiled filter (AnnotationSeccomp)
// out of spec into bundle/SeccompFile and points AnnotationSeccompFile at it.
func MoveSeccompToFile(spec *specs.Spec, bundle string) error {
	enc := spec.Annotations[AnnotationSeccomp]
	if enc == "" {
		return nil
	}
	raw, err := hex.DecodeString(enc)
	if err != nil {
		return errdefs.Invalid("runtime: bad compiled seccomp filter in %s", AnnotationSeccomp)
	}
	if err := os.WriteFile(filepath.Join(bundle, SeccompFile), raw, 0o600); err != nil {
		return errdefs.System("write seccomp filter: %v", err)
	}
	delete(spec.Annotations, AnnotationSeccomp)
	spec.Annotations[AnnotationSeccompFile] = SeccompFile
	return nil
}

// seccompSource is where a spec's filter is: inline hex, or a file (the
// path relative to the bundle, or absolute).
type seccompSource struct {
	hex  string
	file string
}

// seccompOf reads where spec's filter is. A spec with a profile
// (Linux.Seccomp) but no compiled filter is refused rather than run
// unfiltered.
func seccompOf(spec *specs.Spec) (seccompSource, error) {
	src := seccompSource{hex: spec.Annotations[AnnotationSeccomp], file: spec.Annotations[AnnotationSeccompFile]}
	if src.hex == "" && src.file == "" && spec.Linux.Seccomp != nil {
		return src, errdefs.Invalid("runtime: the spec has a seccomp profile but no compiled filter (annotation %s)", AnnotationSeccomp)
	}
	if src.hex != "" {
		if _, err := decodeFilter(src.hex); err != nil {
			return src, err
		}
	}
	return src, nil
}

// readFilterFile reads a raw compiled filter.
func readFilterFile(path string) ([]unix.SockFilter, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, errdefs.System("read seccomp filter: %v", err)
	}
	return rawFilter(b)
}

// decodeFilter turns AnnotationSeccomp's text into instructions.
func decodeFilter(enc string) ([]unix.SockFilter, error) {
	b, err := hex.DecodeString(enc)
	if err != nil {
		return nil, errdefs.Invalid("runtime: bad compiled seccomp filter in %s", AnnotationSeccomp)
	}
	return rawFilter(b)
}

// rawFilter turns a struct sock_filter array into instructions.
func rawFilter(b []byte) ([]unix.SockFilter, error) {
	if len(b) == 0 || len(b)%8 != 0 || len(b)/8 > 4096 {
		return nil, errdefs.Invalid("runtime: bad compiled seccomp filter (%d bytes)", len(b))
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
