/*
 * cordon-netcap - runs PROG in a network namespace whose only way out is
 * cordon's host-side proxy, reached through a Unix socket.
 *
 *   cordon-netcap --proxy-socket PATH [--ip-tool PATH] [--nft-tool PATH]
 *                 -- PROG [ARGS]...
 *
 * Steps, each fatal on failure (exit 125, one line "cordon-netcap: REASON"):
 *
 *  1. Dies with its parent (PR_SET_PDEATHSIG, re-checked with getppid()).
 *  2. unshare(CLONE_NEWUSER | CLONE_NEWNET), setgroups=deny, uid/gid 0 in the
 *     new user namespace mapped to the caller's uid/gid. That gives us
 *     CAP_NET_ADMIN over the new, empty network namespace and nothing else.
 *  3. `ip -batch -`: lo up, the namespace's own address SANDBOX_ADDR on lo and
 *     a default route through lo. lo is the only device: the namespace has
 *     no link to anything, so even without a single nft rule no packet could
 *     leave it. The route exists only so that connects to other addresses
 *     pass the OUTPUT hook instead of failing with ENETUNREACH.
 *  4. Two listeners on 127.0.0.1 (ports chosen by the kernel): TCP for every
 *     redirected connection, UDP for redirected DNS.
 *  5. `nft -f -` (one atomic transaction; see rules_text() and docs/netcap.md):
 *     TCP to any non-local IPv4 address -> our TCP port, UDP/53 -> our UDP
 *     port, everything else to non-local IPv4 dropped, IPv6 only to ::1.
 *  6. A self-test through the rules just loaded: a TCP connect to TEST-NET-1
 *     must arrive at our listener with that original destination, a UDP/53
 *     datagram must arrive at the DNS listener, and UDP to another port must
 *     be refused. Only then does PROG start.
 *  7. PROG is forked with fds 0..n passed through untouched (bwrap's seccomp
 *     program on 3 and status pipe on 4) and with every capability but
 *     CAP_SETFCAP gone, bounding set included (see drop_capabilities()), so
 *     nothing PROG starts can ever regain CAP_NET_ADMIN over this namespace.
 *     bwrap then builds the sandbox in a nested user namespace, which has no
 *     power over this netns either.
 *  8. One process, one epoll loop, relays until PROG exits:
 *     - each accepted TCP connection: SO_ORIGINAL_DST (a connection that was
 *       not redirected - someone dialled the listener itself - is reset),
 *       then a Unix stream connection to PATH that starts with one line
 *           CORDON/1 TCP <orig-ip> <orig-port> <client-port>\n
 *       and then carries the bytes both ways. Half-closes are forwarded
 *       (shutdown(SHUT_WR) once a side's EOF has been fully relayed); the
 *       connection ends when both directions did. Errors reset the client.
 *       If PATH cannot be reached, the client is reset: nothing goes anywhere
 *       else.
 *     - DNS: one Unix connection to PATH that starts with "CORDON/1 DNS\n",
 *       then frames both ways:
 *           u16 len (big endian) | u8 4 | 4 bytes client ip | u16 client port | payload
 *       len counts every byte after the len field. A reply frame is sent
 *       with sendto() to the client address it names; conntrack turns its
 *       source back into the address the client queried. Reconnected on the
 *       next datagram after a failure; datagrams are dropped meanwhile (and
 *       when the connection is backed up).
 *     Why one epoll process rather than a fork per connection: forked
 *     relays would count against the sandbox's own process limit (the
 *     session's RLIMIT_NPROC and pids cgroup include us), the relay state is
 *     two buffers per connection, and PROG's exit or our death ends
 *     everything at once. Connection count is bounded by RLIMIT_NOFILE / 2.
 *  9. Exits with PROG's status (128+n if a signal n killed it). SIGTERM,
 *     SIGINT, SIGHUP and SIGQUIT are forwarded to PROG. After PROG exits,
 *     connections still open get at most DRAIN_MS to finish relaying what
 *     their (now dead) clients wrote; then we exit and the kernel destroys
 *     the namespace.
 *
 * Nothing here looks at payload bytes.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h */
#endif

#define EXIT_CORDON 125
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127

/* The namespace's own address (src of every redirected flow); see docs/netcap.md. */
#define SANDBOX_ADDR "198.18.0.2"
/* Self-test destination: TEST-NET-1, never routed anywhere. */
#define PROBE_ADDR "192.0.2.1"

#define RELAY_BUF (128 * 1024)
#define RELAY_ROUNDS 16          /* buffer-fulls moved per direction per wakeup */
#define CONNECT_RETRY_MS 10      /* proxy backlog full: retry this often ... */
#define CONNECT_GIVE_UP_MS 3000  /* ... for this long, then reset the client */
#define DNS_OUT_BUF (256 * 1024)
#define DNS_MAX_FRAME (2 + 65535)
#define DRAIN_MS 2000
#define SELFTEST_MS 2000
#define MAX_EVENTS 128

/* ------------------------------------------------------------ failures */

static pid_t prog_pid; /* PROG, once started: killed on our fatal errors */

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
	if (prog_pid > 0)
		kill(prog_pid, SIGKILL);
	va_list ap;
	fputs("cordon-netcap: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_CORDON);
}

static int64_t now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------- namespace set-up */

static void arm_death_signal(pid_t parent) {
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		die("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
	if (getppid() != parent) /* the parent died before the signal was armed */
		exit(EXIT_CORDON);
}

static void write_file(const char *path, const char *text) {
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	size_t len = strlen(text);
	ssize_t n = write(fd, text, len);
	if (n < 0 || (size_t)n != len)
		die("write %s: %s", path, n < 0 ? strerror(errno) : "short write");
	close(fd);
}

static void enter_namespaces(pid_t parent) {
	uid_t uid = getuid();
	gid_t gid = getgid();
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
		die("cannot create a user and network namespace: %s (are unprivileged user namespaces enabled?)", strerror(errno));
	/* A credential change may clear the death signal: arm it again. */
	arm_death_signal(parent);
	char map[64];
	write_file("/proc/self/setgroups", "deny");
	snprintf(map, sizeof map, "0 %u 1\n", (unsigned)uid);
	write_file("/proc/self/uid_map", map);
	snprintf(map, sizeof map, "0 %u 1\n", (unsigned)gid);
	write_file("/proc/self/gid_map", map);
}

/*
 * Runs TOOL ARGV with `input` on its stdin, stdout discarded, a clean
 * environment and only fds 0-2. Dies with the first line of its stderr if it
 * cannot be run or does not exit 0.
 */
static void run_tool(const char *what, char *const argv[], const char *input) {
	int in[2], err[2];
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null < 0 || dup2(in[0], 0) < 0 || dup2(null, 1) < 0 || dup2(err[1], 2) < 0)
			_exit(EXIT_CORDON);
		syscall(SYS_close_range, 3U, ~0U, 0U);
		signal(SIGPIPE, SIG_DFL);
		char *const env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
		execve(argv[0], argv, env);
		dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(EXIT_NOT_FOUND);
	}
	close(in[0]);
	close(err[1]);
	size_t len = strlen(input), off = 0;
	while (off < len) {
		ssize_t n = write(in[1], input + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* the tool died early: its status says why */
		off += (size_t)n;
	}
	close(in[1]);
	char msg[512];
	size_t got = 0;
	for (;;) {
		ssize_t n = read(err[0], msg + got, sizeof msg - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == sizeof msg - 1) {
			/* keep draining so the tool never blocks on a full pipe */
			char sink[512];
			while (read(err[0], sink, sizeof sink) > 0) {
			}
			break;
		}
	}
	close(err[0]);
	msg[got] = '\0';
	msg[strcspn(msg, "\n")] = '\0';
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("%s failed (%s %d)%s%s", what, WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
		    got ? ": " : "", msg);
}

static int listener(int type, uint16_t *port) {
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof a;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || (type == SOCK_STREAM && listen(fd, SOMAXCONN) < 0) ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) < 0)
		die("listener on 127.0.0.1: %s", strerror(errno));
	*port = ntohs(a.sin_port);
	return fd;
}

/* The whole rule set. Loaded in one transaction: all of it applies, or none. */
static void rules_text(char *out, size_t size, uint16_t tcp_port, uint16_t udp_port) {
	int n = snprintf(out, size,
	                 "table ip cordon_netcap {\n"
	                 "\tchain nat_output {\n"
	                 "\t\ttype nat hook output priority -100; policy accept;\n"
	                 "\t\tfib daddr type local return\n"
	                 "\t\tmeta l4proto tcp redirect to :%u\n"
	                 "\t\tudp dport 53 redirect to :%u\n"
	                 "\t}\n"
	                 "\tchain filter_output {\n"
	                 "\t\ttype filter hook output priority 0; policy drop;\n"
	                 "\t\tfib daddr type local accept\n"
	                 "\t}\n"
	                 "}\n"
	                 "table ip6 cordon_netcap {\n"
	                 "\tchain filter_output {\n"
	                 "\t\ttype filter hook output priority 0; policy drop;\n"
	                 "\t\tip6 daddr ::1 accept\n"
	                 "\t\tmeta l4proto tcp reject with tcp reset\n"
	                 "\t\treject with icmpv6 admin-prohibited\n"
	                 "\t}\n"
	                 "}\n",
	                 tcp_port, udp_port);
	if (n < 0 || (size_t)n >= size)
		die("rule text too long");
}

static bool wait_readable(int fd, int64_t deadline) {
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return false;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, (int)left);
		if (r > 0)
			return true;
		if (r < 0 && errno != EINTR)
			return false;
	}
}

/* Proves the loaded rules do what rules_text() says, before PROG exists. */
static void self_test(int tcp_listener, int udp_listener) {
	int64_t deadline = now_ms() + SELFTEST_MS;
	struct sockaddr_in probe = {.sin_family = AF_INET, .sin_port = htons(9)};
	inet_pton(AF_INET, PROBE_ADDR, &probe.sin_addr);

	int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c < 0 || (connect(c, (struct sockaddr *)&probe, sizeof probe) < 0 && errno != EINPROGRESS))
		die("self-test: TCP connect to " PROBE_ADDR " was not captured: %s", strerror(errno));
	int a = -1;
	while (a < 0) {
		if (!wait_readable(tcp_listener, deadline))
			die("self-test: TCP connect to " PROBE_ADDR " did not reach the capture listener");
		a = accept4(tcp_listener, NULL, NULL, SOCK_CLOEXEC);
	}
	struct sockaddr_in orig;
	socklen_t olen = sizeof orig;
	if (getsockopt(a, SOL_IP, SO_ORIGINAL_DST, &orig, &olen) < 0 || orig.sin_addr.s_addr != probe.sin_addr.s_addr ||
	    orig.sin_port != probe.sin_port)
		die("self-test: captured TCP connection lost its original destination");
	close(a);
	close(c);

	int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (u < 0)
		die("socket: %s", strerror(errno));
	probe.sin_port = htons(53);
	if (sendto(u, "x", 1, 0, (struct sockaddr *)&probe, sizeof probe) != 1)
		die("self-test: UDP/53 to " PROBE_ADDR " was not captured: %s", strerror(errno));
	char b[8];
	if (!wait_readable(udp_listener, deadline) || recv(udp_listener, b, sizeof b, MSG_DONTWAIT) != 1)
		die("self-test: UDP/53 to " PROBE_ADDR " did not reach the DNS listener");
	probe.sin_port = htons(9);
	if (sendto(u, "x", 1, 0, (struct sockaddr *)&probe, sizeof probe) >= 0)
		die("self-test: UDP to " PROBE_ADDR ":9 was not dropped");
	close(u);
}

/* ---------------------------------------------------------------- PROG */

/*
 * PROG (bwrap) keeps exactly one capability over this namespace's user
 * namespace: CAP_SETFCAP, which the kernel demands (verify_root_map, Linux
 * 5.12+) before bwrap may map its sandbox user onto our uid 0. It grants no
 * power over the network namespace. Everything else is dropped from every
 * set, the bounding set included, so nothing PROG starts can regain
 * CAP_NET_ADMIN, CAP_NET_RAW or CAP_SYS_ADMIN here.
 */
static void drop_capabilities(void) {
	if (prctl(PR_SET_SECUREBITS, SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED) < 0)
		die("prctl(PR_SET_SECUREBITS): %s", strerror(errno));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		die("prctl(PR_CAP_AMBIENT): %s", strerror(errno));
	for (int cap = 0; cap <= 63; cap++)
		if (cap != CAP_SETFCAP && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			die("prctl(PR_CAPBSET_DROP): %s", strerror(errno));
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof d);
	d[CAP_SETFCAP / 32].permitted = d[CAP_SETFCAP / 32].effective = 1U << (CAP_SETFCAP % 32);
	if (syscall(SYS_capset, &h, d) < 0)
		die("capset: %s", strerror(errno));
}

static pid_t start_prog(char **argv, const sigset_t *blocked, int tcp_listener, int udp_listener) {
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid > 0)
		return pid;
	/* The child: everything below dies with EXIT_CORDON via die(). */
	close(tcp_listener);
	close(udp_listener);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_UNBLOCK, blocked, NULL);
	arm_death_signal(parent);
	drop_capabilities();
	execvp(argv[0], argv);
	int e = errno;
	fprintf(stderr, "cordon-netcap: cannot run %s: %s\n", argv[0], strerror(e));
	_exit(e == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC);
}

/* ---------------------------------------------------------------- relay */

enum { CLIENT = 0, PROXY = 1 };
enum tag { TAG_CONN, TAG_TCP_LISTENER, TAG_UDP_LISTENER, TAG_DNS, TAG_SIGNAL };

struct end {
	enum tag tag;
	struct conn *conn; /* TAG_CONN only */
	int side;
};

struct buffer {
	size_t off, len;
	unsigned char data[RELAY_BUF];
};

struct conn {
	int fd[2];
	bool registered[2];
	uint32_t events[2];
	bool eof[2];  /* read side i returned 0 */
	bool shut[2]; /* we did shutdown(fd[i], SHUT_WR) */
	bool connecting; /* proxy connect got EAGAIN: retrying */
	bool dead;
	int64_t since;
	struct end ends[2];
	struct conn *prev, *next;
	struct buffer buf[2]; /* buf[i]: read from fd[i], to be written to fd[1 - i] */
};

struct dns {
	int fd; /* the Unix connection, or -1 */
	bool registered;
	uint32_t events;
	size_t out_off, out_len;
	size_t in_len;
	unsigned char out[DNS_OUT_BUF];
	unsigned char in[DNS_MAX_FRAME];
	unsigned char datagram[65536];
};

struct netcap {
	const char *proxy_path;
	int epoll;
	int tcp_listener, udp_listener;
	int spare_fd; /* held for when accept() runs out of fds */
	struct conn *conns; /* every live connection */
	struct conn *dead;  /* closed this round, freed after it */
	size_t live;
	struct dns dns;
	struct end tcp_end, udp_end, dns_end, signal_end;
};

static void epoll_set(struct netcap *x, int fd, bool *registered, uint32_t *current, uint32_t want, struct end *tag) {
	if (want == 0) {
		if (*registered && epoll_ctl(x->epoll, EPOLL_CTL_DEL, fd, NULL) < 0)
			die("epoll_ctl(DEL): %s", strerror(errno));
		*registered = false;
		*current = 0;
		return;
	}
	if (*registered && *current == want)
		return;
	struct epoll_event ev = {.events = want, .data.ptr = tag};
	if (epoll_ctl(x->epoll, *registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
	*registered = true;
	*current = want;
}

static int proxy_socket(void) {
	return socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/* 0: connected; 1: backlog full, try again; -1: cannot connect (errno). */
static int proxy_connect(const struct netcap *x, int fd) {
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, x->proxy_path, strlen(x->proxy_path));
	if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
		return 0;
	return errno == EAGAIN || errno == EINTR ? 1 : -1;
}

/* Close a TCP socket with a RST, so the client sees a failure, not an EOF. */
static void reset_and_close(int fd) {
	struct linger l = {.l_onoff = 1, .l_linger = 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	close(fd);
}

static void conn_close(struct netcap *x, struct conn *c, bool reset) {
	if (c->dead)
		return;
	if (reset)
		reset_and_close(c->fd[CLIENT]);
	else
		close(c->fd[CLIENT]);
	close(c->fd[PROXY]);
	c->dead = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		x->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = x->dead;
	x->dead = c;
	x->live--;
}

/* Moves what it can in both directions without blocking, then re-arms epoll. */
static void conn_progress(struct netcap *x, struct conn *c) {
	if (c->dead || c->connecting)
		return;
	for (int d = 0; d < 2; d++) {
		struct buffer *b = &c->buf[d];
		int from = c->fd[d], to = c->fd[1 - d];
		for (int round = 0; round < RELAY_ROUNDS; round++) {
			bool moved = false;
			if (b->len > 0) {
				ssize_t n = send(to, b->data + b->off, b->len, MSG_NOSIGNAL | MSG_DONTWAIT);
				if (n > 0) {
					b->off += (size_t)n;
					b->len -= (size_t)n;
					moved = true;
				} else if (errno != EAGAIN && errno != EINTR) {
					conn_close(x, c, true);
					return;
				}
			}
			if (b->len == 0)
				b->off = 0;
			size_t room = RELAY_BUF - b->off - b->len;
			if (!c->eof[d] && room > 0) {
				ssize_t n = recv(from, b->data + b->off + b->len, room, MSG_DONTWAIT);
				if (n > 0) {
					b->len += (size_t)n;
					moved = true;
				} else if (n == 0) {
					c->eof[d] = true;
				} else if (errno != EAGAIN && errno != EINTR) {
					conn_close(x, c, true);
					return;
				}
			}
			if (!moved)
				break;
		}
		if (c->eof[d] && b->len == 0 && !c->shut[1 - d]) {
			shutdown(to, SHUT_WR);
			c->shut[1 - d] = true;
		}
	}
	if (c->shut[CLIENT] && c->shut[PROXY]) {
		conn_close(x, c, false);
		return;
	}
	for (int s = 0; s < 2; s++) {
		uint32_t want = 0;
		if (!c->eof[s] && c->buf[s].off + c->buf[s].len < RELAY_BUF)
			want |= EPOLLIN;
		if (c->buf[1 - s].len > 0)
			want |= EPOLLOUT;
		epoll_set(x, c->fd[s], &c->registered[s], &c->events[s], want, &c->ends[s]);
	}
}

static void conn_try_connect(struct netcap *x, struct conn *c) {
	int r = proxy_connect(x, c->fd[PROXY]);
	if (r == 0) {
		c->connecting = false;
		conn_progress(x, c);
	} else if (r < 0 || now_ms() - c->since > CONNECT_GIVE_UP_MS) {
		conn_close(x, c, true);
	} else {
		c->connecting = true;
	}
}

static void accept_connections(struct netcap *x) {
	for (int i = 0; i < 64; i++) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof peer;
		int fd = accept4(x->tcp_listener, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EMFILE || errno == ENFILE) && x->spare_fd >= 0) {
			/* Out of descriptors: a level-triggered listener would spin.
			 * Free the spare, take the connection, reset it. */
			close(x->spare_fd);
			fd = accept4(x->tcp_listener, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				reset_and_close(fd);
			x->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			continue;
		}
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED || errno == ENOBUFS || errno == ENOMEM)
				return;
			die("accept: %s", strerror(errno));
		}
		/* We relay whatever arrives at once: Nagle on this hop would hold
		 * back the tail of a response until the client's delayed ACK
		 * (~40 ms per response on keep-alive connections). */
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct sockaddr_in orig;
		socklen_t olen = sizeof orig;
		/* Never redirected (no NAT, or a loopback destination): someone
		 * dialled the listener itself. Not a flow to anywhere: reset it. */
		bool redirected = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &orig, &olen) == 0 && orig.sin_family == AF_INET &&
		                  (ntohl(orig.sin_addr.s_addr) >> 24) != 127;
		int pfd = redirected ? proxy_socket() : -1;
		struct conn *c = pfd >= 0 ? malloc(sizeof *c) : NULL;
		if (!c) {
			reset_and_close(fd);
			if (pfd >= 0)
				close(pfd);
			continue;
		}
		memset(c, 0, offsetof(struct conn, buf));
		c->buf[0].off = c->buf[0].len = c->buf[1].off = c->buf[1].len = 0;
		c->fd[CLIENT] = fd;
		c->fd[PROXY] = pfd;
		c->since = now_ms();
		for (int s = 0; s < 2; s++)
			c->ends[s] = (struct end){.tag = TAG_CONN, .conn = c, .side = s};
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &orig.sin_addr, ip, sizeof ip);
		/* The header goes out first, ahead of the client's bytes. */
		int n = snprintf((char *)c->buf[CLIENT].data, RELAY_BUF, "CORDON/1 TCP %s %u %u\n", ip, ntohs(orig.sin_port),
		                 ntohs(peer.sin_port));
		c->buf[CLIENT].len = (size_t)n;
		c->next = x->conns;
		if (x->conns)
			x->conns->prev = c;
		x->conns = c;
		x->live++;
		conn_try_connect(x, c);
	}
}

/* --------------------------------------------------------------------- DNS */

static void dns_close(struct netcap *x) {
	struct dns *d = &x->dns;
	if (d->fd < 0)
		return;
	close(d->fd); /* also leaves the epoll set */
	d->fd = -1;
	d->registered = false;
	d->events = 0;
	d->out_off = d->out_len = d->in_len = 0;
}

static void dns_rearm(struct netcap *x) {
	struct dns *d = &x->dns;
	if (d->fd >= 0)
		epoll_set(x, d->fd, &d->registered, &d->events, EPOLLIN | (d->out_len ? EPOLLOUT : 0), &x->dns_end);
}

static void dns_flush(struct netcap *x) {
	struct dns *d = &x->dns;
	while (d->fd >= 0 && d->out_len > 0) {
		ssize_t n = send(d->fd, d->out + d->out_off, d->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			d->out_off += (size_t)n;
			d->out_len -= (size_t)n;
		} else if (errno == EAGAIN || errno == EINTR) {
			break;
		} else {
			dns_close(x);
			return;
		}
	}
	if (d->out_len == 0)
		d->out_off = 0;
	dns_rearm(x);
}

static bool dns_connect(struct netcap *x) {
	struct dns *d = &x->dns;
	int fd = proxy_socket();
	if (fd < 0)
		return false;
	if (proxy_connect(x, fd) != 0) {
		close(fd);
		return false;
	}
	d->fd = fd;
	static const char header[] = "CORDON/1 DNS\n";
	memcpy(d->out, header, sizeof header - 1);
	d->out_off = 0;
	d->out_len = sizeof header - 1;
	d->in_len = 0;
	return true;
}

static void put16(unsigned char *p, unsigned v) {
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void dns_datagrams(struct netcap *x) {
	struct dns *d = &x->dns;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_in from;
		socklen_t flen = sizeof from;
		ssize_t n = recvfrom(x->udp_listener, d->datagram, sizeof d->datagram, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
		if (n < 0)
			break;
		/* Redirected queries come from SANDBOX_ADDR; loopback senders
		 * dialled the listener itself. */
		if (from.sin_family != AF_INET || (ntohl(from.sin_addr.s_addr) >> 24) == 127)
			continue;
		size_t frame = 2 + 7 + (size_t)n;
		if (frame > DNS_MAX_FRAME)
			continue;
		if (d->fd < 0 && !dns_connect(x))
			continue; /* dropped; the next datagram tries again */
		if (d->out_off + d->out_len + frame > DNS_OUT_BUF) {
			memmove(d->out, d->out + d->out_off, d->out_len);
			d->out_off = 0;
			if (d->out_len + frame > DNS_OUT_BUF)
				continue; /* backed up: drop, as a full network would */
		}
		unsigned char *p = d->out + d->out_off + d->out_len;
		put16(p, (unsigned)(7 + n));
		p[2] = 4;
		memcpy(p + 3, &from.sin_addr.s_addr, 4);
		memcpy(p + 7, &from.sin_port, 2);
		memcpy(p + 9, d->datagram, (size_t)n);
		d->out_len += frame;
	}
	dns_flush(x);
}

static void dns_replies(struct netcap *x) {
	struct dns *d = &x->dns;
	for (;;) {
		ssize_t n = recv(d->fd, d->in + d->in_len, sizeof d->in - d->in_len, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			dns_close(x);
			return;
		}
		if (n < 0)
			return;
		d->in_len += (size_t)n;
		size_t pos = 0;
		while (d->in_len - pos >= 2) {
			size_t len = ((size_t)d->in[pos] << 8) | d->in[pos + 1];
			if (d->in_len - pos - 2 < len)
				break;
			const unsigned char *f = d->in + pos + 2;
			if (len < 7 || f[0] != 4) { /* not our framing: start over */
				dns_close(x);
				return;
			}
			struct sockaddr_in to = {.sin_family = AF_INET};
			memcpy(&to.sin_addr.s_addr, f + 1, 4);
			memcpy(&to.sin_port, f + 5, 2);
			sendto(x->udp_listener, f + 7, len - 7, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof to);
			pos += 2 + len;
		}
		memmove(d->in, d->in + pos, d->in_len - pos);
		d->in_len -= pos;
	}
}

/* ----------------------------------------------------------------- main */

static int status_of(int st) {
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return EXIT_CORDON;
}

static const char *find_tool(const char *given, const char *const *candidates) {
	if (given)
		return access(given, X_OK) == 0 ? given : NULL;
	for (; *candidates; candidates++)
		if (access(*candidates, X_OK) == 0)
			return *candidates;
	return NULL;
}

/* Closes every fd from 3 up except those in keep[]. */
static void close_all_but(int *keep, size_t n) {
	for (size_t a = 0; a < n; a++) /* sort: n is tiny */
		for (size_t b = a + 1; b < n; b++)
			if (keep[b] < keep[a]) {
				int t = keep[a];
				keep[a] = keep[b];
				keep[b] = t;
			}
	unsigned lo = 3;
	for (size_t a = 0; a < n; a++) {
		if ((unsigned)keep[a] > lo)
			syscall(SYS_close_range, lo, (unsigned)keep[a] - 1, 0U);
		if ((unsigned)keep[a] + 1 > lo)
			lo = (unsigned)keep[a] + 1;
	}
	syscall(SYS_close_range, lo, ~0U, 0U);
}

static void usage(void) __attribute__((noreturn));
static void usage(void) {
	die("usage: cordon-netcap --proxy-socket PATH [--ip-tool PATH] [--nft-tool PATH] -- PROG [ARGS]...");
}

int main(int argc, char **argv) {
	pid_t parent = getppid();
	const char *proxy = NULL, *ip_arg = NULL, *nft_arg = NULL;
	int i = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--proxy-socket") == 0)
			proxy = argv[++i];
		else if (strcmp(argv[i], "--ip-tool") == 0)
			ip_arg = argv[++i];
		else if (strcmp(argv[i], "--nft-tool") == 0)
			nft_arg = argv[++i];
		else
			usage();
	}
	if (!proxy || i >= argc)
		usage();
	if (proxy[0] == '\0' || strlen(proxy) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		die("--proxy-socket path is empty or longer than a Unix socket path may be");
	static const char *const ip_paths[] = {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip", NULL};
	static const char *const nft_paths[] = {"/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft", NULL};
	const char *ip_tool = find_tool(ip_arg, ip_paths);
	const char *nft_tool = find_tool(nft_arg, nft_paths);
	if (!ip_tool)
		die("no usable ip binary%s%s (install iproute2)", ip_arg ? " at " : "", ip_arg ? ip_arg : "");
	if (!nft_tool)
		die("no usable nft binary%s%s (install nftables)", nft_arg ? " at " : "", nft_arg ? nft_arg : "");

	arm_death_signal(parent);
	signal(SIGPIPE, SIG_IGN);
	enter_namespaces(parent);

	char *ip_argv[] = {(char *)ip_tool, "-batch", "-", NULL};
	run_tool("ip (network set-up)", ip_argv,
	         "link set lo up\n"
	         "address add " SANDBOX_ADDR "/32 dev lo\n"
	         "route add default dev lo src " SANDBOX_ADDR "\n");

	struct netcap *x = calloc(1, sizeof *x);
	if (!x)
		die("out of memory");
	x->proxy_path = proxy;
	x->dns.fd = -1;
	uint16_t tcp_port, udp_port;
	x->tcp_listener = listener(SOCK_STREAM, &tcp_port);
	x->udp_listener = listener(SOCK_DGRAM, &udp_port);

	char rules[2048];
	rules_text(rules, sizeof rules, tcp_port, udp_port);
	char *nft_argv[] = {(char *)nft_tool, "-f", "-", NULL};
	run_tool("nft (capture rules)", nft_argv, rules);
	self_test(x->tcp_listener, x->udp_listener);

	sigset_t blocked;
	sigemptyset(&blocked);
	int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
	for (size_t k = 0; k < sizeof forwarded / sizeof *forwarded; k++)
		sigaddset(&blocked, forwarded[k]);
	sigaddset(&blocked, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &blocked, NULL) < 0)
		die("sigprocmask: %s", strerror(errno));
	int sfd = signalfd(-1, &blocked, SFD_NONBLOCK | SFD_CLOEXEC);
	x->epoll = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || x->epoll < 0)
		die("signalfd/epoll: %s", strerror(errno));

	prog_pid = start_prog(argv + i, &blocked, x->tcp_listener, x->udp_listener);

	/* What PROG inherited (bwrap's fds 3 and 4, the caller's stdio) is not
	 * ours to hold open: keep stderr for our messages, drop the rest. */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
		die("/dev/null: %s", strerror(errno));
	x->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int keep[] = {x->tcp_listener, x->udp_listener, sfd, x->epoll, x->spare_fd};
	close_all_but(keep, sizeof keep / sizeof *keep);

	x->tcp_end = (struct end){.tag = TAG_TCP_LISTENER};
	x->udp_end = (struct end){.tag = TAG_UDP_LISTENER};
	x->dns_end = (struct end){.tag = TAG_DNS};
	x->signal_end = (struct end){.tag = TAG_SIGNAL};
	struct {
		int fd;
		struct end *end;
	} watch[] = {{x->tcp_listener, &x->tcp_end}, {x->udp_listener, &x->udp_end}, {sfd, &x->signal_end}};
	for (size_t k = 0; k < sizeof watch / sizeof *watch; k++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = watch[k].end};
		if (epoll_ctl(x->epoll, EPOLL_CTL_ADD, watch[k].fd, &ev) < 0)
			die("epoll_ctl: %s", strerror(errno));
	}

	int prog_status = -1;
	int64_t drain_until = 0;
	struct epoll_event events[MAX_EVENTS];
	for (;;) {
		bool retrying = false;
		for (struct conn *c = x->conns; c; c = c->next)
			retrying |= c->connecting;
		int timeout = retrying ? CONNECT_RETRY_MS : -1;
		if (prog_status >= 0) {
			int64_t left = drain_until - now_ms();
			if (x->live == 0 || left <= 0)
				return prog_status;
			if (timeout < 0 || left < timeout)
				timeout = (int)left;
		}
		int n = epoll_wait(x->epoll, events, MAX_EVENTS, timeout);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int k = 0; k < n; k++) {
			struct end *e = events[k].data.ptr;
			switch (e->tag) {
			case TAG_CONN:
				conn_progress(x, e->conn);
				break;
			case TAG_TCP_LISTENER:
				if (x->tcp_listener >= 0)
					accept_connections(x);
				break;
			case TAG_UDP_LISTENER:
				if (x->udp_listener >= 0)
					dns_datagrams(x);
				break;
			case TAG_DNS:
				if (x->dns.fd >= 0 && (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
					dns_replies(x);
				if (x->dns.fd >= 0)
					dns_flush(x);
				break;
			case TAG_SIGNAL: {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
					if (si.ssi_signo != SIGCHLD) {
						if (prog_pid > 0)
							kill(prog_pid, (int)si.ssi_signo);
						continue;
					}
					int st;
					if (prog_status < 0 && waitpid(prog_pid, &st, WNOHANG) == prog_pid) {
						prog_status = status_of(st);
						prog_pid = 0;
						drain_until = now_ms() + DRAIN_MS;
						/* No new flows; finish the ones in flight. */
						close(x->tcp_listener);
						close(x->udp_listener);
						x->tcp_listener = x->udp_listener = -1;
						dns_close(x);
					}
				}
				break;
			}
			}
		}
		if (retrying)
			for (struct conn *c = x->conns, *next; c; c = next) {
				next = c->next;
				if (c->connecting)
					conn_try_connect(x, c);
			}
		while (x->dead) {
			struct conn *c = x->dead;
			x->dead = c->next;
			free(c);
		}
	}
}
