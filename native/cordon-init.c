/*
 * cordon-init - the first program inside the sandbox.
 *
 *   cordon-init [--ro PATH]... [--rw PATH]... [--keep-fd N]... [--started-fd N]
 *               [--take-terminal] [--require-landlock] -- CMD [ARGS]...
 *
 * bubblewrap execs this (with the seccomp filter already loaded); it adds a
 * Landlock ruleset as a second, independent filesystem wall, then execvp()s
 * CMD. It replaces itself: no extra process stays around.
 *
 * Why a second wall when bwrap already decides what is mounted: Landlock is
 * attached to the process, not to the mount namespace, so it still holds if a
 * mount is exposed by mistake (a bind of a parent dir, a writable /proc entry)
 * and it survives nothing short of a kernel bug. It can only remove access.
 *
 *   --ro PATH   read files, list directories, execute, beneath PATH
 *   --rw PATH   every filesystem right Landlock knows, beneath PATH
 *               (writes, create/remove, rename/link across dirs, truncate,
 *               device ioctls). Give `--rw /dev` for /dev/null, /dev/tty...
 *   Rights beneath a path are the union of every rule above it: an --ro inside
 *   an --rw tree does not narrow it. Paths that do not exist are skipped (so a
 *   policy can name optional paths); anything else that stops a rule from
 *   being added is fatal, because a skipped rule would only deny more but a
 *   silent surprise is worse.
 *   --take-terminal  make the command the foreground process group of its
 *               controlling terminal (the sandbox's own pty; see below).
 *   --started-fd N  write one byte to N just before exec (N is then closed by
 *               the exec): the set-up of the sandbox is complete.
 *   --keep-fd N keep inherited descriptor N (>= 3) open across the exec. All
 *               other inherited descriptors above 2 are closed: a stray
 *               descriptor of a host directory is a classic container escape
 *               (openat relative to it ignores the mount namespace and
 *               Landlock, which only checks opens made after it is applied).
 *   --require-landlock   exit 125 if the kernel has no usable Landlock.
 *               Without it cordon-init continues without the second wall.
 *
 * Landlock ABI versions (kernel release that added it) and what we use:
 *   1 (5.13) the 13 base filesystem rights      2 (5.19) REFER
 *   3 (6.2)  TRUNCATE                            4 (6.7)  TCP bind/connect (unused:
 *   5 (6.10) IOCTL_DEV                                    the network namespace does that)
 *   6 (6.12) scopes: abstract unix sockets, signals
 *   7 (6.15) audit-log flags only (left at their defaults)
 * We ask the kernel for its ABI, handle every filesystem right of that ABI
 * (up to 6; later ABIs are used as 6 until this file learns them) and, from 6
 * on, scope abstract unix sockets and signals to the sandbox.
 * Debian 12's linux-libc-dev (6.1) only defines ABI 2, so the constants for
 * 3..6 are spelled out below; they are kernel ABI and never change.
 *
 * With a controlling terminal (cordon-launch --pty), the command is also made
 * the terminal's foreground process group, so ^C reaches it rather than bwrap
 * (see take_terminal_foreground).
 *
 * Exit status, like a shell: 127 CMD not found, 126 CMD found but not
 * executable (including a Landlock denial of execute), 125 cordon-init's own
 * failure (bad arguments, Landlock required but missing, a rule failed).
 * On success the status is CMD's, since CMD replaces this process.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <termios.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXIT_CORDON 125
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127

/* ------------------------------------------------------ Landlock constants */

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif

/* The highest ABI whose rights this file knows. */
#define KNOWN_ABI 6

/* struct landlock_ruleset_attr as of ABI 6. The kernel accepts a shorter
 * size from older callers, and we pass the size matching the running ABI so
 * an older kernel never sees fields it does not know. */
struct ruleset_attr {
	uint64_t handled_access_fs;  /* ABI 1 */
	uint64_t handled_access_net; /* ABI 4 (left 0: not handled) */
	uint64_t scoped;             /* ABI 6 */
};

/* Rights that make sense on a regular file (the kernel rejects the
 * directory-only ones in a rule whose path is not a directory). */
#define ACCESS_FILE                                                                              \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | \
	 LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)

#define ACCESS_RO (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)

/* Every filesystem right the running ABI has. */
static uint64_t fs_rights_for_abi(int abi) {
	uint64_t rights = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */
	if (abi >= 2)
		rights |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		rights |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		rights |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return rights;
}

/* ------------------------------------------------------------------ errors */

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
	va_list ap;
	fputs("cordon-init: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_CORDON);
}

/* ----------------------------------------------------------------- options */

struct path_rule {
	const char *path;
	bool writable;
};

struct options {
	struct path_rule *paths;
	size_t npaths;
	int *keep_fds;
	size_t nkeep;
	bool require_landlock;
	bool take_terminal;
	int started_fd;
	char **command;
};

static int parse_fd(const char *s) {
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 3 || v > 1048576)
		die("--keep-fd wants a descriptor number >= 3, got '%s'", s);
	return (int)v;
}

static struct options parse_options(int argc, char **argv) {
	struct options o = { 0 };
	o.started_fd = -1;
	/* argc bounds every array: each option takes at least one argv slot. */
	o.paths = calloc((size_t)argc, sizeof *o.paths);
	o.keep_fds = calloc((size_t)argc, sizeof *o.keep_fds);
	if (!o.paths || !o.keep_fds)
		die("out of memory");

	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(a, "--require-landlock") == 0) {
			o.require_landlock = true;
			continue;
		}
		if (strcmp(a, "--take-terminal") == 0) {
			o.take_terminal = true;
			continue;
		}
		bool ro = strcmp(a, "--ro") == 0, rw = strcmp(a, "--rw") == 0;
		bool keep = strcmp(a, "--keep-fd") == 0;
		bool started = strcmp(a, "--started-fd") == 0;
		if (!ro && !rw && !keep && !started)
			die("unknown option '%s' (usage: cordon-init [--ro PATH]... [--rw PATH]... "
			    "[--keep-fd N]... [--started-fd N] [--take-terminal] [--require-landlock] -- CMD [ARGS]...)",
			    a);
		if (i + 1 >= argc)
			die("%s needs a value", a);
		const char *value = argv[++i];
		if (keep) {
			o.keep_fds[o.nkeep++] = parse_fd(value);
		} else if (started) {
			o.started_fd = parse_fd(value);
		} else {
			if (value[0] != '/')
				die("%s wants an absolute path, got '%s'", a, value);
			o.paths[o.npaths++] = (struct path_rule){ .path = value, .writable = rw };
		}
	}
	if (i >= argc)
		die("no command given after '--'");
	o.command = &argv[i];
	return o;
}

/* ---------------------------------------------------------------- Landlock */

static int landlock_abi(void) {
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return abi < 0 ? -errno : (int)abi;
}

/* Applies the ruleset. Returns 0, or a negative errno saying why Landlock is
 * unavailable (the caller decides whether that is fatal). Failures after the
 * kernel said yes are always fatal: they would mean a half-built wall. */
static int apply_landlock(const struct options *o) {
	int abi = landlock_abi();
	if (abi < 0)
		return abi; /* ENOSYS: not built in; EOPNOTSUPP: disabled at boot */
	if (abi > KNOWN_ABI)
		abi = KNOWN_ABI;

	uint64_t all = fs_rights_for_abi(abi);
	struct ruleset_attr attr = { .handled_access_fs = all };
	size_t attr_size = sizeof attr.handled_access_fs;
	if (abi >= 6) {
		attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
		attr_size = sizeof attr;
	}

	int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
	if (ruleset < 0)
		die("landlock_create_ruleset (ABI %d): %s", abi, strerror(errno));

	for (size_t i = 0; i < o->npaths; i++) {
		const struct path_rule *r = &o->paths[i];
		int fd = open(r->path, O_PATH | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue; /* missing path: nothing to allow */
			die("%s: %s", r->path, strerror(errno));
		}
		struct stat st;
		if (fstat(fd, &st) < 0)
			die("%s: %s", r->path, strerror(errno));

		uint64_t allowed = (r->writable ? all : ACCESS_RO) & all;
		if (!S_ISDIR(st.st_mode))
			allowed &= ACCESS_FILE;

		struct landlock_path_beneath_attr beneath = { .allowed_access = allowed, .parent_fd = fd };
		if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &beneath, 0) < 0)
			die("landlock_add_rule %s: %s", r->path, strerror(errno));
		close(fd);
	}

	/* restrict_self needs no_new_privs (or CAP_SYS_ADMIN). bwrap already set
	 * it; setting it again is free and keeps this program correct alone. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
		die("landlock_restrict_self: %s", strerror(errno));
	close(ruleset);
	return 0;
}

/* ----------------------------------------------------------- descriptors */

static bool kept(const struct options *o, int fd) {
	for (size_t i = 0; i < o->nkeep; i++) {
		if (o->keep_fds[i] == fd)
			return true;
	}
	return false;
}

/* Mark every descriptor >= 3 close-on-exec except the kept ones, so CMD
 * starts with 0, 1, 2 and exactly what the caller asked for. close-on-exec
 * rather than close: if exec fails we still report on stderr, and nothing we
 * opened ourselves can slip through either. */
static void seal_descriptors(const struct options *o) {
	unsigned int lo = 3;
	for (;;) {
		/* Next kept fd at or above lo (the list is tiny; no sorting). */
		unsigned int next = ~0U;
		for (size_t i = 0; i < o->nkeep; i++) {
			unsigned int k = (unsigned int)o->keep_fds[i];
			if (k >= lo && k < next)
				next = k;
		}
		unsigned int hi = next == ~0U ? ~0U : next - 1;
		if (lo <= hi && syscall(SYS_close_range, lo, hi, CLOSE_RANGE_CLOEXEC) < 0) {
			if (errno != ENOSYS && errno != EINVAL)
				die("close_range: %s", strerror(errno));
			/* Kernel < 5.11 (cannot have Landlock anyway): walk /proc. */
			DIR *d = opendir("/proc/self/fd");
			if (!d)
				die("cannot list open descriptors: %s", strerror(errno));
			int self = dirfd(d);
			for (struct dirent *e; (e = readdir(d));) {
				int fd = atoi(e->d_name);
				if (fd >= 3 && fd != self && !kept(o, fd) && fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
					die("fd %d: %s", fd, strerror(errno));
			}
			closedir(d);
			return;
		}
		if (next == ~0U)
			return;
		/* A kept fd must really be open and must survive exec. */
		int flags = fcntl((int)next, F_GETFD);
		if (flags < 0)
			die("--keep-fd %u: %s", next, strerror(errno));
		if (fcntl((int)next, F_SETFD, flags & ~FD_CLOEXEC) < 0)
			die("--keep-fd %u: %s", next, strerror(errno));
		lo = next + 1;
	}
}

/* ---------------------------------------------------------------- terminal */

/* With a controlling terminal (cordon-launch --pty runs bwrap without
 * --new-session), bwrap's own processes share our process group. ^C on the
 * terminal would then SIGINT bwrap too, which dies and takes the sandbox with
 * it, even when the command wanted to handle ^C. So the command gets a process
 * group of its own and becomes the terminal's foreground: ^C and ^Z reach it
 * (and, for a shell, its jobs), not bwrap. Best effort: on failure the command
 * still runs, it is only harder to interrupt gracefully. */
static void take_terminal_foreground(void) {
	int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (tty < 0)
		return; /* no controlling terminal (bwrap --new-session): nothing to do */
	/* Only if our group has the foreground now (pgrp ids are relative to
	 * the pid namespace; both read 0 when bwrap's group is outside it). */
	if (tcgetpgrp(tty) == getpgrp()) {
		/* tcsetpgrp from what becomes a background group raises SIGTTOU. */
		sigset_t ttou, saved;
		sigemptyset(&ttou);
		sigaddset(&ttou, SIGTTOU);
		sigprocmask(SIG_BLOCK, &ttou, &saved);
		if (setpgid(0, 0) == 0)
			tcsetpgrp(tty, getpid());
		sigprocmask(SIG_SETMASK, &saved, NULL);
	}
	close(tty);
}

/* ------------------------------------------------------------------- main */

int main(int argc, char **argv) {
	struct options o = parse_options(argc, argv);

	/* Before Landlock, which may not grant /dev. Only when asked: run
	 * anywhere else (a probe from cordon doctor), grabbing the caller's
	 * terminal would leave it with a dead foreground group. */
	if (o.take_terminal)
		take_terminal_foreground();

	int rc = apply_landlock(&o);
	if (rc < 0 && o.require_landlock)
		die("Landlock is required but unavailable: %s", strerror(-rc));

	seal_descriptors(&o);

	/* Tell cordon the sandbox is set up: from here on, a failure is the
	 * command's (127, 126, its own status), not bwrap's. The descriptor is
	 * close-on-exec (not kept), so the command never sees it. */
	if (o.started_fd >= 0) {
		signal(SIGPIPE, SIG_IGN);
		ssize_t w = write(o.started_fd, "1", 1);
		(void)w;
		signal(SIGPIPE, SIG_DFL);
	}

	const char *cmd = o.command[0];
	execvp(cmd, o.command);

	/* Only reached on failure. Shell conventions: ENOENT -> 127, anything
	 * else (EACCES, ENOEXEC, EISDIR, a Landlock denial...) -> 126. */
	int err = errno;
	if (err == ENOENT) {
		if (strchr(cmd, '/'))
			fprintf(stderr, "cordon: %s: %s\n", cmd, strerror(err));
		else
			fprintf(stderr, "cordon: %s: command not found\n", cmd);
		return EXIT_NOT_FOUND;
	}
	fprintf(stderr, "cordon: %s: %s\n", cmd, strerror(err));
	return EXIT_CANNOT_EXEC;
}
