// The constructor of `skiff-shim exec`; see nsenter.go.
//
// Environment:
//   _SKIFF_NSENTER       host pid of a process of the container
//   _SKIFF_CGROUP_PROCS  colon-separated cgroup.procs files to write our pid to
//   _SKIFF_EXEC_STATUS   a descriptor on which a failure to start the process
//                        is reported as "CODE MESSAGE" instead of on stderr;
//                        it closes with nothing written once the program runs
// fd 3: the process to run, as runtime.encodeExec writes it.
//
// Steps: read the process, join the cgroups (while the host's /sys/fs/cgroup
// is still reachable), open a pidfd on the target, setns(pidfd, every
// namespace the target does not share with us) in one call, then fork: a
// process does not enter a pid namespace itself, its children do. The child
// applies rlimits, the seccomp filter, user, capabilities, cwd, umask and
// no_new_privs and execs (the same sequence as the init's, finalize.go's
// execProcess, in Go); the
// parent forwards signals to it and exits with its status. The Go runtime
// never starts.

#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static volatile pid_t skiff_child = -1;

// status_fd is _SKIFF_EXEC_STATUS's descriptor, -1 without one: the engine
// reads from it whether the program started (runtime.ExecCmd.Started).
static int status_fd = -1;

__attribute__((noreturn)) static void fail(const char *what, const char *arg) {
	int e = errno;
	dprintf(status_fd >= 0 ? status_fd : 2, "%s%s: %s%s%s: %s\n", status_fd >= 0 ? "cannotinvoke " : "",
		"skiff-shim exec", what, arg ? " " : "", arg ? arg : "", strerror(e));
	_exit(126);
}

static void join_cgroups(const char *list) {
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%d", (int)getpid());
	const char *p = list;
	while (*p) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > 0) {
			char path[4096];
			if (len >= sizeof path) {
				errno = ENAMETOOLONG;
				fail("join cgroup", NULL);
			}
			memcpy(path, p, len);
			path[len] = 0;
			int fd = open(path, O_WRONLY | O_CLOEXEC);
			if (fd < 0)
				fail("join cgroup", path);
			if (write(fd, buf, n) != n)
				fail("join cgroup", path);
			close(fd);
		}
		if (!end)
			break;
		p = end + 1;
	}
}

// ns_flags returns the namespaces of pid that differ from ours.
static int ns_flags(pid_t pid) {
	static const struct {
		const char *name;
		int flag;
	} nss[] = {
		{"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
		{"net", CLONE_NEWNET},       {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS},
		{"time", CLONE_NEWTIME},
	};
	int flags = 0;
	for (size_t i = 0; i < sizeof nss / sizeof nss[0]; i++) {
		char path[64];
		struct stat self, target;
		snprintf(path, sizeof path, "/proc/self/ns/%s", nss[i].name);
		if (stat(path, &self) < 0)
			continue; // namespace type not supported by this kernel
		snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)pid, nss[i].name);
		if (stat(path, &target) < 0)
			fail("inspect namespace", path);
		if (self.st_ino != target.st_ino || self.st_dev != target.st_dev)
			flags |= nss[i].flag;
	}
	return flags;
}

// The process to run (runtime.encodeExec).
struct rlim {
	const char *name;
	int resource;
	unsigned long long soft, hard;
};
struct proc {
	const char *failure; // print it and exit 126 instead of running argv
	char **argv, **envp;
	const char *cwd;
	mode_t umask;
	int no_new_privs;
	uid_t uid;
	gid_t gid;
	size_t ngroups;
	gid_t *groups;
	int has_caps, last_cap;
	uint64_t bounding, effective, permitted, inheritable, ambient;
	size_t nrlimits;
	struct rlim *rlimits;
	struct sock_fprog filter; // len 0: none
};

// Fields are NUL-terminated strings; next_field fails on a short blob.
struct reader {
	char *p, *end;
};

static char *next_field(struct reader *r) {
	char *s = r->p;
	char *nul = memchr(s, 0, (size_t)(r->end - s));
	if (!nul) {
		errno = EINVAL;
		fail("read the exec's process", "(truncated)");
	}
	r->p = nul + 1;
	return s;
}

static unsigned long long next_num(struct reader *r) {
	char *s = next_field(r), *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || !*s) {
		errno = EINVAL;
		fail("read the exec's process: bad number", s);
	}
	return v;
}

static char **next_list(struct reader *r) {
	size_t n = (size_t)next_num(r);
	char **v = calloc(n + 1, sizeof *v);
	if (!v)
		fail("read the exec's process", NULL);
	for (size_t i = 0; i < n; i++)
		v[i] = next_field(r);
	return v;
}

static int hexval(char c) {
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

// read_filter decodes the seccomp filter: struct sock_filter array in host
// byte order, hex-encoded (runtime.AnnotationSeccomp); "" is none.
static void read_filter(const char *hex, struct sock_fprog *f) {
	size_t n = strlen(hex);
	f->len = 0;
	f->filter = NULL;
	if (n == 0)
		return;
	if (n % (2 * sizeof(struct sock_filter)) || n / (2 * sizeof(struct sock_filter)) > BPF_MAXINSNS) {
		errno = EINVAL;
		fail("read the exec's process", "(bad seccomp filter)");
	}
	unsigned char *b = malloc(n / 2);
	if (!b)
		fail("read the exec's process", NULL);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			errno = EINVAL;
			fail("read the exec's process", "(bad seccomp filter)");
		}
		b[i] = (unsigned char)(hi << 4 | lo);
	}
	f->len = (unsigned short)(n / (2 * sizeof(struct sock_filter)));
	f->filter = (struct sock_filter *)b;
}

static void read_proc(int fd, struct proc *p) {
	struct stat st;
	if (fstat(fd, &st) < 0)
		fail("read the exec's process", NULL);
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		fail("read the exec's process", NULL);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail("read the exec's process", NULL);
		got += (size_t)n;
	}
	close(fd);
	struct reader r = {buf, buf + got};
	p->failure = next_field(&r);
	p->argv = next_list(&r);
	p->envp = next_list(&r);
	p->cwd = next_field(&r);
	p->umask = (mode_t)next_num(&r);
	p->no_new_privs = (int)next_num(&r);
	p->uid = (uid_t)next_num(&r);
	p->gid = (gid_t)next_num(&r);
	p->ngroups = (size_t)next_num(&r);
	p->groups = calloc(p->ngroups + 1, sizeof *p->groups);
	if (!p->groups)
		fail("read the exec's process", NULL);
	for (size_t i = 0; i < p->ngroups; i++)
		p->groups[i] = (gid_t)next_num(&r);
	p->has_caps = (int)next_num(&r);
	p->last_cap = (int)next_num(&r);
	p->bounding = next_num(&r);
	p->effective = next_num(&r);
	p->permitted = next_num(&r);
	p->inheritable = next_num(&r);
	p->ambient = next_num(&r);
	p->nrlimits = (size_t)next_num(&r);
	p->rlimits = calloc(p->nrlimits + 1, sizeof *p->rlimits);
	if (!p->rlimits)
		fail("read the exec's process", NULL);
	for (size_t i = 0; i < p->nrlimits; i++) {
		p->rlimits[i].name = next_field(&r);
		p->rlimits[i].resource = (int)next_num(&r);
		p->rlimits[i].soft = next_num(&r);
		p->rlimits[i].hard = next_num(&r);
	}
	read_filter(next_field(&r), &p->filter);
	if (!p->argv[0]) {
		errno = EINVAL;
		fail("read the exec's process", "(no command)");
	}
}

// go_err is an errno as Go prints it: strerror, lower-cased first letter.
static const char *go_err(int e) {
	static char buf[128];
	snprintf(buf, sizeof buf, "%s", strerror(e));
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

// die prints Docker's message for a process that cannot run and exits with
// 127 (not found) or 126 (cannot invoke), the codes of errdefs.StartExitCode.
// On the status pipe the message follows the errdefs kind name (the Go side
// reads the kind by name, never by matching the message or the code).
__attribute__((noreturn, format(printf, 2, 3))) static void die(int code, const char *fmt, ...) {
	int fd = 2;
	if (status_fd >= 0) {
		fd = status_fd;
		dprintf(fd, "%s ", code == 127 ? "commandnotfound" : "cannotinvoke");
	}
	va_list ap;
	va_start(ap, fmt);
	vdprintf(fd, fmt, ap);
	va_end(ap);
	dprintf(fd, "\n");
	_exit(code);
}

// set_rlimits clamps a hard limit above ours to ours (setRlimits in Go).
static void set_rlimits(const struct proc *p) {
	for (size_t i = 0; i < p->nrlimits; i++) {
		const struct rlim *l = &p->rlimits[i];
		struct rlimit want = {l->soft, l->hard}, cur;
		if (want.rlim_cur > want.rlim_max)
			want.rlim_cur = want.rlim_max;
		if (setrlimit(l->resource, &want) == 0)
			continue;
		if (getrlimit(l->resource, &cur) < 0)
			die(126, "get %s: %s", l->name, go_err(errno));
		if (want.rlim_max > cur.rlim_max)
			want.rlim_max = cur.rlim_max;
		if (want.rlim_cur > want.rlim_max)
			want.rlim_cur = want.rlim_max;
		if (setrlimit(l->resource, &want) < 0)
			die(126, "set %s to %llu:%llu: %s", l->name, (unsigned long long)want.rlim_cur,
			    (unsigned long long)want.rlim_max, go_err(errno));
	}
}

static void set_caps(const struct proc *p) {
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2] = {
		{(uint32_t)p->effective, (uint32_t)p->permitted, (uint32_t)p->inheritable},
		{(uint32_t)(p->effective >> 32), (uint32_t)(p->permitted >> 32), (uint32_t)(p->inheritable >> 32)},
	};
	if (syscall(SYS_capset, &hdr, data) < 0)
		die(126, "set capabilities: %s", go_err(errno));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		die(126, "set capabilities: %s", go_err(errno));
	for (int c = 0; c <= p->last_cap; c++)
		if (p->ambient & (1ULL << c)) // refused unless permitted and inheritable, like runc
			prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
}

// path_env is the container's PATH, or the default Go's lookPath uses.
static const char *path_env(char **envp) {
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (char **e = envp; *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	return path;
}

// executable reports whether p is a file the current (container) user may
// execute: errno is set when it is not.
static int executable(const char *p, struct stat *st) {
	if (stat(p, st) < 0)
		return 0;
	if (S_ISDIR(st->st_mode)) {
		errno = EISDIR;
		return 0;
	}
	return faccessat(AT_FDCWD, p, X_OK, AT_EACCESS) == 0;
}

// look_path finds argv0 as runtime.lookPath does, with its messages.
static const char *look_path(const char *argv0, char **envp) {
	struct stat st;
	if (strchr(argv0, '/')) {
		if (executable(argv0, &st))
			return argv0;
		if (errno == ENOENT || errno == ENOTDIR)
			die(127, "exec: \"%s\": stat %s: no such file or directory", argv0, argv0);
		if (errno == EISDIR)
			die(126, "exec: \"%s\": is a directory", argv0);
		if (errno == EACCES && stat(argv0, &st) == 0)
			die(126, "exec: \"%s\": permission denied", argv0);
		die(126, "exec: \"%s\": stat %s: %s", argv0, argv0, go_err(errno));
	}
	const char *dirs = path_env(envp);
	size_t n = strlen(argv0);
	for (;;) {
		const char *end = strchr(dirs, ':');
		size_t len = end ? (size_t)(end - dirs) : strlen(dirs);
		char *cand = malloc(len + n + 3);
		if (!cand)
			die(126, "exec: \"%s\": out of memory", argv0);
		if (len == 0)
			sprintf(cand, "./%s", argv0);
		else
			sprintf(cand, "%.*s/%s", (int)len, dirs, argv0);
		if (executable(cand, &st))
			return cand;
		free(cand);
		if (!end)
			break;
		dirs = end + 1;
	}
	die(127, "exec: \"%s\": executable file not found in $PATH", argv0);
}

// cloexec_from3 marks every descriptor from 3 up close-on-exec, so the
// program starts with stdio only whatever the engine leaked to us
// (markCloseOnExecFrom in Go).
static void cloexec_from3(void) {
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	// Before 5.11: each open descriptor. /proc is the container's now, and
	// we are in its pid namespace, so /proc/self is us.
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		die(126, "close inherited descriptors: %s", go_err(errno));
	struct dirent *e;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);
		if (fd > 2 && fd != dirfd(d))
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	closedir(d);
}

// run_proc is the child's last act: execProcess (finalize.go) in C.
__attribute__((noreturn)) static void run_proc(const struct proc *p) {
	if (*p->failure)
		die(126, "%s", p->failure);
	cloexec_from3();
	set_rlimits(p);
	// The seccomp filter first, while we still have CAP_SYS_ADMIN
	// (installFilter in Go): what follows is filtered too.
	if (p->filter.len && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p->filter, 0, 0) < 0)
		die(126, "install seccomp filter: %s", go_err(errno));
	if (p->has_caps) {
		for (int c = 0; c <= p->last_cap; c++)
			if (!(p->bounding & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
				die(126, "drop bounding capabilities: %s", go_err(errno));
		// Keep the permitted set across the switch to a non-root uid.
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			die(126, "set keepcaps: %s", go_err(errno));
	}
	if (syscall(SYS_setgroups, p->ngroups, p->groups) < 0)
		die(126, "setgroups: %s", go_err(errno));
	if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0)
		die(126, "setgid %u: %s", (unsigned)p->gid, go_err(errno));
	if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0)
		die(126, "setuid %u: %s", (unsigned)p->uid, go_err(errno));
	if (p->has_caps) {
		if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
			die(126, "clear keepcaps: %s", go_err(errno));
		set_caps(p);
	}
	// A missing cwd is dockerd's 127 (its "no such file or directory" and
	// "not a directory" rules), anything else its 126.
	if (chdir(p->cwd) < 0)
		die(errno == ENOENT || errno == ENOTDIR ? 127 : 126, "chdir to cwd (\"%s\") set in config.json failed: %s", p->cwd, go_err(errno));
	umask(p->umask);
	if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die(126, "set no_new_privs: %s", go_err(errno));
	const char *path = look_path(p->argv[0], p->envp);
	execve(path, p->argv, p->envp);
	int e = errno;
	switch (e) {
	case ENOENT: case ENOTDIR:
		die(127, "exec: \"%s\": %s", p->argv[0], go_err(e));
	default:
		die(126, "exec: \"%s\": %s", p->argv[0], go_err(e));
	}
}

static void forward(int sig, siginfo_t *info, void *ctx) {
	(void)ctx;
	// The terminal signals the whole foreground process group (SI_KERNEL),
	// which includes the child: forwarding those would deliver them twice.
	if (info && info->si_code == SI_KERNEL)
		return;
	if (skiff_child > 0)
		kill(skiff_child, sig);
}

__attribute__((constructor)) static void skiff_nsenter(void) {
	const char *target_s = getenv("_SKIFF_NSENTER");
	if (!target_s || !*target_s)
		return;
	char *end;
	long target = strtol(target_s, &end, 10);
	if (*end || target <= 0) {
		errno = EINVAL;
		fail("bad _SKIFF_NSENTER", target_s);
	}

	const char *status_s = getenv("_SKIFF_EXEC_STATUS");
	if (status_s && *status_s) {
		long fd = strtol(status_s, &end, 10);
		if (*end || fd < 3) {
			errno = EINVAL;
			fail("bad _SKIFF_EXEC_STATUS", status_s);
		}
		status_fd = (int)fd;
	}

	struct proc proc;
	read_proc(3, &proc);

	// The pidfd pins the process: the namespaces we compare and join are
	// those of this very process, even if its pid were reused meanwhile.
	int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)target, 0);
	if (pidfd < 0)
		fail("open container process", target_s);

	const char *procs = getenv("_SKIFF_CGROUP_PROCS");
	if (procs && *procs)
		join_cgroups(procs);

	int flags = ns_flags((pid_t)target);
	if (flags && setns(pidfd, flags) < 0)
		fail("join the container's namespaces", NULL);
	close(pidfd);

	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t parent = getpid();
	pid_t child = fork();
	if (child < 0)
		fail("fork", NULL);
	if (child == 0) {
		// Die with the waiting parent rather than linger in the container.
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		// Until execve our /proc/PID/exe is the host's skiff-shim binary;
		// processes of the container must not open it (CVE-2019-5736).
		// execve makes the program dumpable again.
		prctl(PR_SET_DUMPABLE, 0);
		// In another pid namespace our parent is invisible (ppid 0); if it
		// died before the prctl, we were reparented to a visible reaper.
		pid_t ppid = getppid();
		if (ppid != 0 && ppid != parent)
			_exit(137);
		sigprocmask(SIG_SETMASK, &old, NULL);
		run_proc(&proc);
	}
	skiff_child = child;
	// Only the child's execve (close-on-exec) or death may end the status.
	if (status_fd >= 0) {
		close(status_fd);
		status_fd = -1;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = forward;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigfillset(&sa.sa_mask);
	for (int sig = 1; sig < NSIG; sig++) {
		switch (sig) {
		case SIGKILL: case SIGSTOP: case SIGCHLD:
		case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL:
			continue;
		}
		sigaction(sig, &sa, NULL);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);

	int status;
	for (;;) {
		pid_t r = waitpid(child, &status, 0);
		if (r == child)
			break;
		if (r < 0 && errno != EINTR)
			fail("wait", NULL);
	}
	if (WIFSIGNALED(status))
		_exit(128 + WTERMSIG(status));
	_exit(WEXITSTATUS(status));
}
