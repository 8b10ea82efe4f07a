// The constructor of `skiff-shim exec`; see nsenter.go.
//
// Environment:
//   _SKIFF_NSENTER       host pid of a process of the container
//   _SKIFF_CGROUP_PROCS  colon-separated cgroup.procs files to write our pid to
//
// Steps: join the cgroups (while the host's /sys/fs/cgroup is still
// reachable), open a pidfd on the target, setns(pidfd, every namespace the
// target does not share with us) in one call, then fork: a process does not
// enter a pid namespace itself, its children do. The child returns into the
// Go runtime; the parent forwards signals to it and exits with its status.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

static volatile pid_t skiff_child = -1;

__attribute__((noreturn)) static void fail(const char *what, const char *arg) {
	int e = errno;
	dprintf(2, "skiff-shim exec: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(e));
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
		return; // on into the Go runtime and runtime.ExecMain
	}
	skiff_child = child;

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
