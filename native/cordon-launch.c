/*
 * cordon-launch - the host-side step between the cordon CLI (Node) and bwrap.
 *
 *   cordon-launch [--cgroup-procs FILE]... [--rlimit NAME=VALUE|NAME=SOFT:HARD]... [--pty] [--argv-fd N]
 *                 [--parent-pid PID] -- PROG [ARGS]...
 *
 * It does the few things Node cannot do between fork and exec:
 *
 *  - dies with its parent (PR_SET_PDEATHSIG), so a killed CLI never leaves a
 *    sandbox running. The signal is armed, then getppid() is compared with
 *    the parent seen at startup (or with --parent-pid, which also catches a
 *    parent that died before main() ran): if they differ the parent is already
 *    gone and we exit at once.
 *  - joins cgroups: writes its pid to every --cgroup-procs FILE, so PROG and
 *    all its descendants are accounted and limited there. Any failure: 125.
 *  - sets resource limits, soft = hard, for
 *      nproc as cpu(seconds) fsize nofile core   VALUE: a number or `unlimited`
 *    (as and fsize are in bytes). Any failure: 125.
 *
 * Without --pty it then execs PROG in place: no extra process, every
 * inherited descriptor stays open (Node passes bwrap its --seccomp and
 * --json-status-fd descriptors as 3, 4...), and the death signal is SIGKILL,
 * which survives the exec.
 *
 * With --pty, PROG runs in a new session whose controlling terminal is a
 * fresh pseudo-terminal. That is what bwrap's --new-session is for - a
 * sandboxed process must not push keystrokes (TIOCSTI) into the user's real
 * terminal - but interactive agents and shells keep a working terminal, job
 * control and Ctrl-C. Of fds 0/1/2, the ones that are terminals are replaced
 * by the pty slave in PROG; the others pass through untouched. cordon-launch
 * stays as the parent and:
 *   - puts the real terminal in raw mode (only if stdin is a terminal: then
 *     every key, ^C and ^Z included, goes to the pty, whose line discipline
 *     turns them into signals for the sandbox's foreground job);
 *   - relays bytes both ways through buffers, never dropping any (EAGAIN and
 *     EINTR are waited out with poll), and after PROG exits reads the pty
 *     until it reports EIO (every writer gone), or until it has been quiet for
 *     DRAIN_QUIET_MS (a leftover process keeps it open), at most DRAIN_MAX_MS;
 *   - copies the window size at start and on every SIGWINCH;
 *   - restores the terminal on every exit path it can see: PROG's exit, our
 *     own errors, SIGTERM/SIGINT/SIGHUP/SIGQUIT, and the death of our parent
 *     (here the death signal is SIGHUP, which we catch: kill PROG's process
 *     group, restore, exit). Only SIGKILL of this process itself cannot be
 *     handled; then the CLI should run `stty sane`.
 *   - forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT sent to it (while its parent
 *     lives) to PROG, and exits with PROG's status: its exit code, or 128+n
 *     when a signal n killed it.
 *   In this mode the cgroups and limits are applied in the child just before
 *   exec, so cordon-launch itself stays outside them: a cgroup.kill or a CPU
 *   limit cannot take it down before it has restored the terminal.
 *
 * Exit status: PROG's status; 125 for our own failures; 126 PROG cannot be
 * executed; 127 PROG not found (the conventions of env(1) and nice(1)).
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define EXIT_CORDON 125
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127

#define RELAY_BUF 16384
#define DRAIN_QUIET_MS 250
#define DRAIN_MAX_MS 5000

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41) /* Linux 4.13; open the slave without a path */
#endif

/* ------------------------------------------------------ terminal restore */

/* Process-wide on purpose: every exit path, including die(), must find it. */
static struct {
	bool active;
	int fd;
	struct termios saved;
} term_restore;

static void restore_terminal(void) {
	if (!term_restore.active)
		return;
	term_restore.active = false;
	/* TCSADRAIN: let our last output reach the screen first. SIGTTOU is
	 * blocked, so this works even if we were moved to the background. */
	while (tcsetattr(term_restore.fd, TCSADRAIN, &term_restore.saved) < 0 && errno == EINTR) {
	}
}

/* The child of --pty mode, killed on our fatal errors. 0 = none. */
static pid_t pty_child;

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
	if (pty_child > 0) {
		kill(-pty_child, SIGKILL);
		kill(pty_child, SIGKILL);
	}
	restore_terminal();
	va_list ap;
	fputs("cordon-launch: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_CORDON);
}

/* ----------------------------------------------------------------- options */

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
	{ "nproc", RLIMIT_NPROC }, { "as", RLIMIT_AS },         { "cpu", RLIMIT_CPU },
	{ "fsize", RLIMIT_FSIZE }, { "nofile", RLIMIT_NOFILE }, { "core", RLIMIT_CORE },
};

struct limit {
	const char *name;
	int resource;
	rlim_t value; /* soft */
	rlim_t hard;
};

struct options {
	const char **cgroup_files;
	size_t ncgroups;
	struct limit *limits;
	size_t nlimits;
	bool pty;
	pid_t parent_pid; /* 0: use the parent seen at startup */
	int argv_fd;      /* -1: the command follows "--" */
	char **command;
};

static bool parse_ull(const char *s, unsigned long long *out) {
	if (*s < '0' || *s > '9')
		return false; /* no sign, no space */
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

static bool parse_rlim(const char *s, rlim_t *out) {
	unsigned long long v;
	if (strcmp(s, "unlimited") == 0)
		*out = RLIM_INFINITY;
	else if (parse_ull(s, &v) && v < RLIM_INFINITY)
		*out = (rlim_t)v;
	else
		return false;
	return true;
}

/* NAME=VALUE sets soft and hard alike; NAME=SOFT:HARD sets them apart (for
 * cpu: SIGXCPU at the soft limit, so the hit is visible, SIGKILL at the hard). */
static struct limit parse_limit(const char *spec) {
	const char *eq = strchr(spec, '=');
	if (!eq)
		die("--rlimit wants NAME=VALUE, got '%s'", spec);
	size_t len = (size_t)(eq - spec);
	for (size_t i = 0; i < sizeof rlimit_names / sizeof rlimit_names[0]; i++) {
		if (strlen(rlimit_names[i].name) != len || strncmp(spec, rlimit_names[i].name, len) != 0)
			continue;
		struct limit l = { .name = rlimit_names[i].name, .resource = rlimit_names[i].resource };
		char value[64];
		if (strlen(eq + 1) >= sizeof value)
			die("--rlimit %s: value too long", l.name);
		strcpy(value, eq + 1);
		char *colon = strchr(value, ':');
		if (colon)
			*colon = '\0';
		if (!parse_rlim(value, &l.value) || (colon && !parse_rlim(colon + 1, &l.hard)))
			die("--rlimit %s: VALUE must be a number, 'unlimited' or SOFT:HARD, got '%s'", l.name, eq + 1);
		if (!colon)
			l.hard = l.value;
		if (l.hard < l.value)
			die("--rlimit %s: the soft limit is above the hard limit", l.name);
		return l;
	}
	die("--rlimit: unknown limit '%.*s' (nproc, as, cpu, fsize, nofile, core)", (int)len, spec);
}

static struct options parse_options(int argc, char **argv) {
	struct options o = { 0 };
	o.argv_fd = -1;
	o.cgroup_files = calloc((size_t)argc, sizeof *o.cgroup_files);
	o.limits = calloc((size_t)argc, sizeof *o.limits);
	if (!o.cgroup_files || !o.limits)
		die("out of memory");

	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(a, "--pty") == 0) {
			o.pty = true;
			continue;
		}
		if (strcmp(a, "--cgroup-procs") != 0 && strcmp(a, "--rlimit") != 0 && strcmp(a, "--parent-pid") != 0 &&
		    strcmp(a, "--argv-fd") != 0)
			die("unknown option '%s' (usage: cordon-launch [--cgroup-procs FILE]... "
			    "[--rlimit NAME=VALUE]... [--pty] [--parent-pid PID] [--argv-fd N] -- PROG [ARGS]...)",
			    a);
		if (i + 1 >= argc)
			die("%s needs a value", a);
		const char *value = argv[++i];
		if (strcmp(a, "--cgroup-procs") == 0) {
			o.cgroup_files[o.ncgroups++] = value;
		} else if (strcmp(a, "--rlimit") == 0) {
			o.limits[o.nlimits++] = parse_limit(value);
		} else if (strcmp(a, "--argv-fd") == 0) {
			unsigned long long v;
			if (!parse_ull(value, &v) || v < 3 || v > 1024)
				die("--argv-fd wants a descriptor number >= 3, got '%s'", value);
			o.argv_fd = (int)v;
		} else {
			unsigned long long v;
			if (!parse_ull(value, &v) || v < 1 || v > INT32_MAX)
				die("--parent-pid wants a pid, got '%s'", value);
			o.parent_pid = (pid_t)v;
		}
	}
	if (i >= argc && o.argv_fd < 0)
		die("no program given after '--'");
	o.command = i < argc ? &argv[i] : NULL;
	return o;
}

/* ------------------------------------------------------- limits, cgroups */

static void join_cgroups(const struct options *o) {
	char pid[32];
	int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
	for (size_t i = 0; i < o->ncgroups; i++) {
		const char *file = o->cgroup_files[i];
		int fd = open(file, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			die("cannot join cgroup %s: %s", file, strerror(errno));
		/* The kernel takes a cgroup.procs write whole or not at all. */
		ssize_t n = write(fd, pid, (size_t)len);
		if (n != len)
			die("cannot join cgroup %s: %s", file, n < 0 ? strerror(errno) : "short write");
		if (close(fd) < 0)
			die("cannot join cgroup %s: %s", file, strerror(errno));
	}
}

static void set_limits(const struct options *o) {
	for (size_t i = 0; i < o->nlimits; i++) {
		const struct limit *l = &o->limits[i];
		struct rlimit rl = { .rlim_cur = l->value, .rlim_max = l->hard };
		if (setrlimit(l->resource, &rl) < 0)
			die("cannot set rlimit %s: %s%s", l->name, strerror(errno),
			    errno == EPERM ? " (raising a hard limit needs CAP_SYS_RESOURCE)" : "");
	}
}

/* cgroups first: a low nofile or nproc limit must not stop the join. */
static void apply_limits(const struct options *o) {
	join_cgroups(o);
	set_limits(o);
}

/* --argv-fd N: the command arrives later, NUL-terminated arguments on fd N
 * until EOF. The caller starts us early so that joining the cgroups (which
 * waits for an RCU grace period on cgroup v1) overlaps its own preparation;
 * we block here until it has decided what to run. An empty read means the
 * caller gave up: exit quietly. */
static char **read_command(int fd) {
	size_t cap = 64 * 1024, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		die("out of memory");
	for (;;) {
		if (len == cap) {
			if (cap >= 64 * 1024 * 1024)
				die("--argv-fd: command line too long");
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				die("out of memory");
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("--argv-fd: %s", strerror(errno));
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len == 0)
		exit(EXIT_CORDON);
	if (buf[len - 1] != '\0')
		die("--argv-fd: arguments must be NUL-terminated");
	size_t count = 0;
	for (size_t k = 0; k < len; k++)
		count += buf[k] == '\0';
	char **argv = calloc(count + 1, sizeof *argv);
	if (!argv)
		die("out of memory");
	size_t at = 0;
	for (size_t k = 0; k < count; k++) {
		argv[k] = buf + at;
		at += strlen(buf + at) + 1;
	}
	return argv;
}

static char **command_of(const struct options *o) {
	return o->argv_fd >= 0 ? read_command(o->argv_fd) : o->command;
}

static void __attribute__((noreturn)) exec_command(char **command) {
	execvp(command[0], command);
	int err = errno;
	restore_terminal();
	if (err == ENOENT && !strchr(command[0], '/')) {
		fprintf(stderr, "cordon-launch: %s: command not found\n", command[0]);
		_exit(EXIT_NOT_FOUND);
	}
	fprintf(stderr, "cordon-launch: %s: %s\n", command[0], strerror(err));
	_exit(err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC);
}

/* Arms the death signal, then checks it did not arrive too late. */
static void die_with_parent(int sig, pid_t expected_parent) {
	if (prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) < 0)
		die("PR_SET_PDEATHSIG: %s", strerror(errno));
	if (getppid() != expected_parent)
		_exit(EXIT_CORDON); /* parent already gone: nobody to report to */
}

/* ------------------------------------------------------------- pty relay */

static long long now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Close every descriptor >= 3 but `a` and `b`: the relay needs none of what
 * it inherited, and holding e.g. bwrap's --json-status-fd would keep the CLI
 * from seeing EOF on it. */
static void close_inherited(int a, int b) {
	int lo = a < b ? a : b, hi = a < b ? b : a;
	struct {
		unsigned first, last;
	} ranges[] = { { 3, (unsigned)lo - 1 }, { (unsigned)lo + 1, (unsigned)hi - 1 }, { (unsigned)hi + 1, ~0U } };
	for (size_t i = 0; i < 3; i++) {
		if (ranges[i].first < 3)
			ranges[i].first = 3;
		if (ranges[i].first > ranges[i].last)
			continue;
		if (syscall(SYS_close_range, ranges[i].first, ranges[i].last, 0) == 0)
			continue;
		/* Kernel < 5.9: walk /proc/self/fd instead. */
		DIR *d = opendir("/proc/self/fd");
		if (!d)
			die("cannot list open descriptors: %s", strerror(errno));
		int self = dirfd(d);
		for (struct dirent *e; (e = readdir(d));) {
			int fd = atoi(e->d_name);
			if (fd >= 3 && fd != a && fd != b && fd != self)
				close(fd);
		}
		closedir(d);
		return;
	}
}

/* A one-way byte pipe through a buffer. A source is read only when the
 * buffer is empty, so a slow destination slows the source down instead of
 * losing bytes. */
struct relay {
	int from, to; /* -1 when closed */
	char buf[RELAY_BUF];
	size_t len, off;
};

enum io { IO_OK, IO_WAIT, IO_END };

static enum io relay_read(struct relay *r) {
	ssize_t n = read(r->from, r->buf, sizeof r->buf);
	if (n > 0) {
		r->len = (size_t)n;
		r->off = 0;
		return IO_OK;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return IO_WAIT;
	return IO_END; /* 0 = EOF; EIO on a pty master = no slave left */
}

static enum io relay_write(struct relay *r) {
	while (r->off < r->len) {
		ssize_t n = write(r->to, r->buf + r->off, r->len - r->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return IO_WAIT;
		if (n <= 0)
			return IO_END;
		r->off += (size_t)n;
	}
	r->len = r->off = 0;
	return IO_OK;
}

static void copy_window_size(int term_fd, int master) {
	struct winsize ws;
	if (term_fd >= 0 && ioctl(term_fd, TIOCGWINSZ, &ws) == 0)
		ioctl(master, TIOCSWINSZ, &ws); /* the kernel sends SIGWINCH inside */
}

static int open_pty(int *slave_out) {
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		die("cannot open a pty: %s", strerror(errno));
	if (grantpt(master) < 0 || unlockpt(master) < 0)
		die("cannot unlock the pty: %s", strerror(errno));
	int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0) {
		char name[128];
		if (ptsname_r(master, name, sizeof name) != 0)
			die("ptsname: %s", strerror(errno));
		slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (slave < 0)
			die("cannot open %s: %s", name, strerror(errno));
	}
	*slave_out = slave;
	return master;
}

static int run_with_pty(const struct options *o, pid_t parent, const sigset_t *handled) {
	/* A closed 0, 1 or 2 would be reused by the pty and confuse everything
	 * below: give it /dev/null. */
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			die("cannot open /dev/null as fd %d", fd);
	}

	bool is_tty[3];
	int term_fd = -1;
	for (int fd = 0; fd < 3; fd++) {
		is_tty[fd] = isatty(fd);
		if (is_tty[fd] && term_fd < 0)
			term_fd = fd;
	}

	int slave;
	int master = open_pty(&slave);
	struct termios tio;
	bool raw_stdin = false;
	if (term_fd >= 0 && tcgetattr(term_fd, &tio) == 0) {
		/* The sandbox's terminal starts with the user's settings (erase
		 * key, IUTF8, ...), taken before we switch ours to raw. */
		tcsetattr(slave, TCSANOW, &tio);
		if (is_tty[0] && term_fd == 0) {
			term_restore.fd = 0;
			term_restore.saved = tio;
			raw_stdin = true;
		}
	}
	copy_window_size(term_fd, master);

	int sigfd = signalfd(-1, handled, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0)
		die("signalfd: %s", strerror(errno));

	if (raw_stdin) {
		struct termios raw = term_restore.saved;
		cfmakeraw(&raw);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		term_restore.active = true;
		if (tcsetattr(0, TCSADRAIN, &raw) < 0)
			die("cannot put the terminal in raw mode: %s", strerror(errno));
	}

	pid_t launcher = getpid();
	pid_t child = fork();
	if (child < 0)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		term_restore.active = false; /* the real terminal is the parent's */
		/* PROG must start with the signal state a shell would give it. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		die_with_parent(SIGKILL, launcher);
		if (setsid() < 0)
			die("setsid: %s", strerror(errno));
		/* The first terminal a session leader claims becomes its
		 * controlling terminal, and its process group the foreground. */
		if (ioctl(slave, TIOCSCTTY, 0) < 0)
			die("TIOCSCTTY: %s", strerror(errno));
		for (int fd = 0; fd < 3; fd++) {
			if (is_tty[fd] && dup2(slave, fd) < 0)
				die("dup2: %s", strerror(errno));
		}
		apply_limits(o);
		exec_command(command_of(o)); /* slave, master, sigfd are close-on-exec */
	}
	pty_child = child;
	close(slave);
	close_inherited(master, sigfd);
	if (fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK) < 0)
		die("fcntl: %s", strerror(errno));

	/* Where the pty's output goes: the first of 1, 2, 0 that is a terminal
	 * (0 is used when only stdin is one: echo must still be seen). */
	int out_fd = is_tty[1] ? 1 : is_tty[2] ? 2 : is_tty[0] ? 0 : -1;
	struct relay in = { .from = is_tty[0] ? 0 : -1, .to = master };
	struct relay out = { .from = master, .to = out_fd };

	int status = 0;
	bool exited = false;
	long long exited_at = 0, last_output = 0;

	for (;;) {
		long long t = now_ms();
		int timeout = -1;
		if (exited) {
			/* Draining: stop when the pty is closed or quiet, or at the cap. */
			bool quiet = t - last_output >= DRAIN_QUIET_MS;
			if ((out.from < 0 || quiet || t - exited_at >= DRAIN_MAX_MS) && (out.len == 0 || out.to < 0))
				break;
			if (t - exited_at >= DRAIN_MAX_MS + 1000)
				break; /* the terminal does not take output: give up */
			long long left = DRAIN_QUIET_MS - (t - last_output);
			timeout = left > 0 ? (int)left : 10;
		}

		struct pollfd p[4];
		int np = 0, i_sig = np++, i_in = -1, i_master = -1, i_out = -1;
		p[i_sig] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
		if (in.from >= 0 && in.len == 0 && !exited) {
			i_in = np++;
			p[i_in] = (struct pollfd){ .fd = in.from, .events = POLLIN };
		}
		short master_events = (short)((out.from >= 0 && out.len == 0 ? POLLIN : 0) | (in.len > 0 ? POLLOUT : 0));
		if (master_events) {
			i_master = np++;
			p[i_master] = (struct pollfd){ .fd = master, .events = master_events };
		}
		if (out.len > 0 && out.to >= 0) {
			i_out = np++;
			p[i_out] = (struct pollfd){ .fd = out.to, .events = POLLOUT };
		}
		if (poll(p, (nfds_t)np, timeout) < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}

		if (p[i_sig].revents) {
			struct signalfd_siginfo si;
			while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
				int sig = (int)si.ssi_signo;
				if (sig == SIGCHLD) {
					pid_t r = waitpid(child, &status, WNOHANG);
					if (r == child) {
						exited = true;
						exited_at = last_output = now_ms();
						pty_child = 0;
					}
				} else if (sig == SIGWINCH) {
					copy_window_size(term_fd, master);
				} else if (getppid() != parent) {
					/* Our death signal: the CLI is gone. */
					die("parent process died; stopping the sandbox");
				} else if (!exited) {
					kill(child, sig);
				}
			}
		}

		if (i_in >= 0 && p[i_in].revents) {
			if (relay_read(&in) == IO_END)
				in.from = -1; /* EOF or hang-up of the real terminal */
		}
		if (i_master >= 0 && (p[i_master].revents & POLLOUT) && in.len > 0) {
			if (relay_write(&in) == IO_END)
				in.len = in.off = 0; /* nobody left to read the pty */
		}
		if (i_master >= 0 && (p[i_master].revents & (POLLIN | POLLHUP | POLLERR)) && out.len == 0) {
			enum io r = relay_read(&out);
			if (r == IO_OK)
				last_output = now_ms();
			else if (r == IO_END)
				out.from = -1;
			if (r == IO_OK && out.to < 0)
				out.len = out.off = 0; /* no terminal to show it on: discard */
		}
		if (i_out >= 0 && p[i_out].revents) {
			if (relay_write(&out) == IO_END) {
				out.to = -1; /* the terminal went away: keep draining, discard */
				out.len = out.off = 0;
			}
		}
	}

	restore_terminal();
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* ------------------------------------------------------------------- main */

int main(int argc, char **argv) {
	pid_t parent = getppid(); /* before anything else: the race window starts here */
	struct options o = parse_options(argc, argv);
	if (o.parent_pid)
		parent = o.parent_pid;

	if (!o.pty) {
		die_with_parent(SIGKILL, parent);
		apply_limits(&o);
		exec_command(command_of(&o));
	}

	/* Block the signals we handle before arming the death signal, so that it
	 * queues for the signalfd instead of killing us with the terminal raw. */
	sigset_t handled;
	sigemptyset(&handled);
	int sigs[] = { SIGCHLD, SIGWINCH, SIGHUP, SIGTERM, SIGINT, SIGQUIT };
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaddset(&handled, sigs[i]);
	sigset_t blocked = handled;
	sigaddset(&blocked, SIGTTOU); /* restore the terminal even from the background */
	if (sigprocmask(SIG_BLOCK, &blocked, NULL) < 0)
		die("sigprocmask: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN); /* a closed stdout is an EPIPE, not our death */
	die_with_parent(SIGHUP, parent);

	return run_with_pty(&o, parent, &handled);
}
