/*
 * syscall-probe - tries every operation cordon's seccomp filter must refuse,
 * plus a few ordinary ones it must not, and prints one JSON line per probe:
 *
 *   {"probe":"ptrace","errno":"EPERM"}     the call failed with EPERM
 *   {"probe":"fork","errno":"ok"}          the call succeeded
 *   {"probe":"x32","signal":"SIGSYS"}      the probe process was killed
 *
 *   syscall-probe            run every probe
 *   syscall-probe NAME...    run only these
 *   syscall-probe --list     print the probe names
 *
 * Every probe runs in its own forked process, so a probe that succeeds (a new
 * user namespace, a changed personality, a keyring) cannot change what the
 * next one sees, and a probe that gets the process killed (x32, int 0x80:
 * foreign ABIs, which the filter answers with SIGSYS) reports the signal.
 *
 * The name before ':' is the syscall the probe exercises, which is how
 * test/native/seccomp.test.ts maps probes to rules in rules.ts.
 *
 * Where the kernel would answer the same EPERM as the filter (no capability),
 * a probe is built to fail differently when the filter lets it through: fd -1
 * (EBADF), a missing path (ENOENT), an impossible clock (EINVAL). Probes are
 * harmless even when they succeed, and the program refuses to run with any
 * effective capability, so it can never reboot, mount or hang up anything.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#define NR_OPEN_TREE_ATTR 467 /* Linux 6.15; unified number on every arch */
#define ABSENT "/nonexistent-cordon-probe"

/* A probe returns 0 when the call succeeded, else the errno it failed with. */
typedef int (*probe_fn)(void);

static int result(long rc) {
	return rc < 0 ? errno : 0;
}

/* ------------------------------------------------------ other processes */

static int p_ptrace(void) {
	int ready[2];
	if (pipe(ready) < 0)
		return errno;
	pid_t child = fork();
	if (child < 0)
		return errno;
	if (child == 0) {
		/* run_probe made us non-dumpable, which alone forbids ptrace. */
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
		close(ready[0]);
		close(ready[1]);
		pause();
		_exit(0);
	}
	close(ready[1]);
	char c;
	while (read(ready[0], &c, 1) < 0 && errno == EINTR) {
	}
	close(ready[0]);
	int err = result(ptrace(PTRACE_ATTACH, child, 0, 0));
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return err;
}

static int p_process_vm_readv(void) {
	char src[8] = "cordon", dst[8];
	struct iovec local = { dst, sizeof dst }, remote = { src, sizeof src };
	return result(process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
}

static int p_process_vm_writev(void) {
	char src[8] = "cordon", dst[8];
	struct iovec local = { src, sizeof src }, remote = { dst, sizeof dst };
	return result(process_vm_writev(getpid(), &local, 1, &remote, 1, 0));
}

static int p_pidfd_getfd(void) { return result(syscall(SYS_pidfd_getfd, -1, 0, 0)); }
static int p_process_madvise(void) { return result(syscall(SYS_process_madvise, -1, NULL, 0, 0, 0)); }

static int p_personality_noaslr(void) { return result(syscall(SYS_personality, PER_LINUX | ADDR_NO_RANDOMIZE)); }
static int p_personality_exec(void) { return result(syscall(SYS_personality, PER_LINUX | READ_IMPLIES_EXEC)); }
static int p_personality_linux32(void) { return result(syscall(SYS_personality, PER_LINUX32)); }
/* Allowed values: PER_LINUX and the query. */
static int p_personality_query(void) { return result(syscall(SYS_personality, 0xffffffffUL)); }
static int p_personality_linux(void) { return result(syscall(SYS_personality, PER_LINUX)); }

/* ------------------------------------------------------------- mounts */

static int p_mount(void) { return result(mount("none", ABSENT, "tmpfs", 0, NULL)); }
static int p_umount2(void) { return result(umount2(ABSENT, 0)); }
static int p_pivot_root(void) { return result(syscall(SYS_pivot_root, ABSENT, ABSENT)); }
static int p_move_mount(void) { return result(syscall(SYS_move_mount, AT_FDCWD, ABSENT, AT_FDCWD, ABSENT, 0)); }
static int p_open_tree(void) { return result(syscall(SYS_open_tree, AT_FDCWD, ABSENT, 0)); }
static int p_open_tree_attr(void) { return result(syscall(NR_OPEN_TREE_ATTR, AT_FDCWD, ABSENT, 0, NULL, 0)); }
static int p_fsopen(void) { return result(syscall(SYS_fsopen, "tmpfs", 0)); }
static int p_fsconfig(void) { return result(syscall(SYS_fsconfig, -1, 0, NULL, NULL, 0)); }
static int p_fsmount(void) { return result(syscall(SYS_fsmount, -1, 0, 0)); }
static int p_fspick(void) { return result(syscall(SYS_fspick, AT_FDCWD, ABSENT, 0)); }

static int p_mount_setattr(void) {
	uint64_t attr[4] = { 0 }; /* struct mount_attr, version 0 */
	return result(syscall(SYS_mount_setattr, AT_FDCWD, ABSENT, 0, attr, sizeof attr));
}

static int p_name_to_handle_at(void) {
	struct file_handle fh = { .handle_bytes = 0 };
	int mount_id;
	/* Allowed: EOVERFLOW (handle_bytes 0 is too small) - never EPERM. */
	return result(name_to_handle_at(AT_FDCWD, "/", &fh, &mount_id, 0));
}

static int p_open_by_handle_at(void) {
	struct file_handle fh = { .handle_bytes = 0 };
	return result(open_by_handle_at(-1, &fh, O_RDONLY));
}

/* --------------------------------------------------------- namespaces */

static int p_unshare(void) { return result(unshare(CLONE_NEWUSER)); }
static int p_setns(void) { return result(setns(-1, 0)); }

static int clone_with(unsigned long flags) {
	long pid = syscall(SYS_clone, flags | SIGCHLD, 0, NULL, NULL, 0);
	if (pid < 0)
		return errno;
	if (pid == 0)
		_exit(0);
	waitpid((pid_t)pid, NULL, 0);
	return 0;
}

static int p_clone_newuser(void) { return clone_with(CLONE_NEWUSER); }
static int p_clone_newns(void) { return clone_with(CLONE_NEWNS); }
static int p_clone_newpid(void) { return clone_with(CLONE_NEWPID); }
static int p_clone_newnet(void) { return clone_with(CLONE_NEWNET); }
static int p_clone_newuts(void) { return clone_with(CLONE_NEWUTS); }
static int p_clone_newipc(void) { return clone_with(CLONE_NEWIPC); }
static int p_clone_newcgroup(void) { return clone_with(CLONE_NEWCGROUP); }
/* The kernel reads only the low 32 bits of clone's flags. */
static int p_clone_newuser_hibits(void) { return clone_with(CLONE_NEWUSER | (1UL << 40)); }
static int p_clone_plain(void) { return clone_with(0); }

static int p_clone3(void) {
	uint64_t args[8] = { 0 }; /* struct clone_args, version 0: 8 words */
	args[4] = SIGCHLD;         /* exit_signal */
	long pid = syscall(SYS_clone3, args, 64);
	if (pid < 0)
		return errno;
	if (pid == 0)
		_exit(0);
	waitpid((pid_t)pid, NULL, 0);
	return 0;
}

/* ------------------------------------------------------------- kernel */

static int p_bpf(void) {
	uint32_t attr[16] = { 2 /* BPF_MAP_TYPE_ARRAY */, 4, 4, 1 };
	return result(syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof attr));
}

static int p_perf_event_open(void) {
	uint32_t attr[32] = { 1 /* PERF_TYPE_SOFTWARE */, 128 /* size */ };
	/* config 0 = PERF_COUNT_SW_CPU_CLOCK, measuring ourselves only, user
	 * space only (what perf_event_paranoid=2 lets anyone do), disabled. */
	attr[10] = 1u << 0 | 1u << 5 | 1u << 6; /* disabled, exclude_kernel, exclude_hv */
	return result(syscall(SYS_perf_event_open, attr, 0, -1, -1, 0));
}

static int p_userfaultfd(void) { return result(syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */)); }

static int p_io_uring_setup(void) {
	uint32_t params[30] = { 0 }; /* struct io_uring_params, 120 bytes */
	return result(syscall(SYS_io_uring_setup, 1, params));
}

static int p_io_uring_enter(void) { return result(syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0)); }
static int p_io_uring_register(void) { return result(syscall(SYS_io_uring_register, -1, 0, NULL, 0)); }

static int p_keyctl(void) {
	return result(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -2 /* KEY_SPEC_PROCESS_KEYRING */, 1));
}

static int p_add_key(void) { return result(syscall(SYS_add_key, "user", "cordon-probe", "x", 1, -2)); }
static int p_request_key(void) { return result(syscall(SYS_request_key, "user", "cordon-probe-absent", NULL, 0)); }

#if defined(__x86_64__)
static int p_uselib(void) { return result(syscall(SYS_uselib, ABSENT)); }
#endif

#if defined(__x86_64__)
static int p_modify_ldt(void) {
	char buf[16];
	return result(syscall(SYS_modify_ldt, 0, buf, sizeof buf));
}
#endif

/* --------------------------------------------------------------- host */

static int p_kexec_load(void) { return result(syscall(SYS_kexec_load, 0, 0, NULL, 0)); }
static int p_kexec_file_load(void) { return result(syscall(SYS_kexec_file_load, -1, -1, 0, "", 0)); }
static int p_init_module(void) { return result(syscall(SYS_init_module, NULL, 0, "")); }
static int p_finit_module(void) { return result(syscall(SYS_finit_module, -1, "", 0)); }
static int p_delete_module(void) { return result(syscall(SYS_delete_module, "cordon_probe_absent", O_NONBLOCK)); }
/* Bad magic numbers: even with CAP_SYS_BOOT this is EINVAL, never a reboot. */
static int p_reboot(void) { return result(syscall(SYS_reboot, 0, 0, 0, NULL)); }
static int p_acct(void) { return result(acct(ABSENT)); }
static int p_swapon(void) { return result(swapon(ABSENT, 0)); }
static int p_swapoff(void) { return result(swapoff(ABSENT)); }
static int p_syslog(void) { return result(syscall(SYS_syslog, 10 /* SIZE_BUFFER */, NULL, 0)); }

static int p_quotactl(void) {
	char buf[64];
	return result(syscall(SYS_quotactl, 0x800005 /* QCMD(Q_GETINFO, USRQUOTA) */, ABSENT, 0, buf));
}

static int p_quotactl_fd(void) { return result(syscall(SYS_quotactl_fd, -1, 0x800005, 0, NULL)); }
static int p_lookup_dcookie(void) { return result(syscall(SYS_lookup_dcookie, 0, NULL, 0)); }
static int p_vhangup(void) { return result(vhangup()); }
#if defined(__x86_64__)
/* Level 0 and turning ports off need no privilege: allowed means success. */
static int p_iopl(void) { return result(syscall(SYS_iopl, 0)); }
static int p_ioperm(void) { return result(syscall(SYS_ioperm, 0x80, 1, 0)); }
#endif
static int p_settimeofday(void) { return result(syscall(SYS_settimeofday, NULL, NULL)); }

static int p_clock_settime(void) {
	struct timespec ts = { 0, 0 };
	/* CLOCK_MONOTONIC cannot be set: allowed calls fail with EINVAL. */
	return result(syscall(SYS_clock_settime, CLOCK_MONOTONIC, &ts));
}

/* ------------------------------------------------------------ network */

static int socket_probe(long domain, long type, long protocol) {
	long fd = syscall(SYS_socket, domain, type, protocol);
	if (fd < 0)
		return errno;
	close((int)fd);
	return 0;
}

static int p_socket_packet(void) { return socket_probe(AF_PACKET, SOCK_DGRAM, 0); }
/* The kernel reads `domain` as an int: garbage above bit 31 must not help. */
static int p_socket_packet_hibits(void) { return socket_probe((1L << 32) | AF_PACKET, SOCK_DGRAM, 0); }
static int p_socket_vsock(void) { return socket_probe(AF_VSOCK, SOCK_STREAM, 0); }
static int p_socket_raw(void) { return socket_probe(AF_INET, SOCK_RAW, IPPROTO_ICMP); }
static int p_socket_raw_flags(void) { return socket_probe(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6); }
static int p_socket_packet_type(void) { return socket_probe(AF_INET, SOCK_PACKET, 0); }
static int p_socket_tcp(void) { return socket_probe(AF_INET, SOCK_STREAM, 0); }
static int p_socket_tcp6(void) { return socket_probe(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0); }
static int p_socket_udp(void) { return socket_probe(AF_INET, SOCK_DGRAM, 0); }
static int p_socket_unix(void) { return socket_probe(AF_UNIX, SOCK_STREAM, 0); }
static int p_socket_netlink(void) { return socket_probe(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE); }

/* ----------------------------------------------------------- terminal */

/* fd -1: an allowed ioctl fails with EBADF, so EPERM can only be the filter. */
static int p_ioctl_tiocsti(void) {
	char c = 'x';
	return result(syscall(SYS_ioctl, -1, (unsigned long)TIOCSTI, &c));
}

/* The kernel reads the request as 32 bits: garbage above must not help. */
static int p_ioctl_tiocsti_hibits(void) {
	char c = 'x';
	return result(syscall(SYS_ioctl, -1, (1UL << 32) | TIOCSTI, &c));
}

static int p_ioctl_tioclinux(void) {
	char sub = 2; /* TIOCL_SETSEL */
	return result(syscall(SYS_ioctl, -1, (unsigned long)TIOCLINUX, &sub));
}

static int p_ioctl_tiocsetd(void) {
	int ldisc = 0;
	return result(syscall(SYS_ioctl, -1, (unsigned long)TIOCSETD, &ldisc));
}

static int p_ioctl_fionread(void) {
	int fds[2], n;
	if (pipe(fds) < 0)
		return errno;
	int err = result(ioctl(fds[0], FIONREAD, &n));
	close(fds[0]);
	close(fds[1]);
	return err;
}

/* ------------------------------------------------------- foreign ABIs */

#if defined(__x86_64__)
/* getpid through the x32 ABI: syscall number with bit 30 set. */
static int p_x32(void) {
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(0x40000000L | 39) : "rcx", "r11", "memory");
	return ret < 0 ? (int)-ret : 0;
}

/* getpid through the i386 ABI (int 0x80, i386 number 20). */
static int p_int80(void) {
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "r8", "r9", "r10", "r11", "memory");
	return ret < 0 ? (int)-ret : 0;
}
#endif

/* ------------------------------------------------ ordinary operations */

static int p_fork(void) {
	pid_t pid = fork();
	if (pid < 0)
		return errno;
	if (pid == 0)
		_exit(0);
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : ECHILD;
}

static void *thread_main(void *arg) {
	*(int *)arg = 42;
	return NULL;
}

/* glibc tries clone3 first (ENOSYS here) and falls back to clone. */
static int p_thread(void) {
	pthread_t t;
	int v = 0;
	int err = pthread_create(&t, NULL, thread_main, &v);
	if (err)
		return err;
	pthread_join(t, NULL);
	return v == 42 ? 0 : EINVAL;
}

static int p_read_file(void) {
	char buf[256];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	ssize_t n = read(fd, buf, sizeof buf);
	int err = n > 0 ? 0 : n < 0 ? errno : EIO;
	close(fd);
	return err;
}

static int p_mmap_exec(void) {
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	int err = result(mprotect(p, 4096, PROT_READ | PROT_EXEC));
	munmap(p, 4096);
	return err;
}

/* -------------------------------------------------------------- table */

static const struct {
	const char *name;
	probe_fn fn;
} probes[] = {
	{ "ptrace", p_ptrace },
	{ "process_vm_readv", p_process_vm_readv },
	{ "process_vm_writev", p_process_vm_writev },
	{ "pidfd_getfd", p_pidfd_getfd },
	{ "process_madvise", p_process_madvise },
	{ "personality:noaslr", p_personality_noaslr },
	{ "personality:read_implies_exec", p_personality_exec },
	{ "personality:linux32", p_personality_linux32 },
	{ "mount", p_mount },
	{ "umount2", p_umount2 },
	{ "pivot_root", p_pivot_root },
	{ "move_mount", p_move_mount },
	{ "open_tree", p_open_tree },
	{ "open_tree_attr", p_open_tree_attr },
	{ "fsopen", p_fsopen },
	{ "fsconfig", p_fsconfig },
	{ "fsmount", p_fsmount },
	{ "fspick", p_fspick },
	{ "mount_setattr", p_mount_setattr },
	{ "open_by_handle_at", p_open_by_handle_at },
	{ "name_to_handle_at", p_name_to_handle_at },
	{ "unshare", p_unshare },
	{ "setns", p_setns },
	{ "clone:newuser", p_clone_newuser },
	{ "clone:newns", p_clone_newns },
	{ "clone:newpid", p_clone_newpid },
	{ "clone:newnet", p_clone_newnet },
	{ "clone:newuts", p_clone_newuts },
	{ "clone:newipc", p_clone_newipc },
	{ "clone:newcgroup", p_clone_newcgroup },
	{ "clone:newuser_hibits", p_clone_newuser_hibits },
	{ "clone3", p_clone3 },
	{ "bpf", p_bpf },
	{ "perf_event_open", p_perf_event_open },
	{ "userfaultfd", p_userfaultfd },
	{ "io_uring_setup", p_io_uring_setup },
	{ "io_uring_enter", p_io_uring_enter },
	{ "io_uring_register", p_io_uring_register },
	{ "keyctl", p_keyctl },
	{ "add_key", p_add_key },
	{ "request_key", p_request_key },
#if defined(__x86_64__)
	{ "modify_ldt", p_modify_ldt },
	{ "uselib", p_uselib },
#endif
	{ "kexec_load", p_kexec_load },
	{ "kexec_file_load", p_kexec_file_load },
	{ "init_module", p_init_module },
	{ "finit_module", p_finit_module },
	{ "delete_module", p_delete_module },
	{ "reboot", p_reboot },
	{ "acct", p_acct },
	{ "swapon", p_swapon },
	{ "swapoff", p_swapoff },
	{ "syslog", p_syslog },
	{ "quotactl", p_quotactl },
	{ "quotactl_fd", p_quotactl_fd },
	{ "lookup_dcookie", p_lookup_dcookie },
	{ "vhangup", p_vhangup },
#if defined(__x86_64__)
	{ "iopl", p_iopl },
	{ "ioperm", p_ioperm },
#endif
	{ "settimeofday", p_settimeofday },
	{ "clock_settime", p_clock_settime },
	{ "socket:packet", p_socket_packet },
	{ "socket:packet_hibits", p_socket_packet_hibits },
	{ "socket:vsock", p_socket_vsock },
	{ "socket:raw", p_socket_raw },
	{ "socket:raw_flags", p_socket_raw_flags },
	{ "socket:sock_packet", p_socket_packet_type },
	{ "ioctl:tiocsti", p_ioctl_tiocsti },
	{ "ioctl:tiocsti_hibits", p_ioctl_tiocsti_hibits },
	{ "ioctl:tioclinux", p_ioctl_tioclinux },
	{ "ioctl:tiocsetd", p_ioctl_tiocsetd },
#if defined(__x86_64__)
	{ "x32", p_x32 },
	{ "int80", p_int80 },
#endif
	/* ordinary operations: must stay allowed */
	{ "ok:fork", p_fork },
	{ "ok:thread", p_thread },
	{ "ok:clone", p_clone_plain },
	{ "ok:read_file", p_read_file },
	{ "ok:mmap_exec", p_mmap_exec },
	{ "ok:socket_tcp", p_socket_tcp },
	{ "ok:socket_tcp6", p_socket_tcp6 },
	{ "ok:socket_udp", p_socket_udp },
	{ "ok:socket_unix", p_socket_unix },
	{ "ok:socket_netlink", p_socket_netlink },
	{ "ok:ioctl_fionread", p_ioctl_fionread },
	{ "ok:personality_query", p_personality_query },
	{ "ok:personality_linux", p_personality_linux },
};

#define NPROBES (sizeof probes / sizeof probes[0])

/* Runs one probe in a child process and prints its line. The child reports
 * through its exit status: 0 = success, else the errno (all errnos < 256). */
static void run_probe(size_t i) {
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "syscall-probe: fork: %s\n", strerror(errno));
		exit(2);
	}
	if (pid == 0) {
		/* A killed probe must not leave a core file or call a core helper. */
		struct rlimit none = { 0, 0 };
		setrlimit(RLIMIT_CORE, &none);
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		int err = probes[i].fn();
		_exit(err > 0 && err < 256 ? err : err == 0 ? 0 : 255);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "syscall-probe: waitpid: %s\n", strerror(errno));
			exit(2);
		}
	}
	if (WIFSIGNALED(st)) {
		printf("{\"probe\":\"%s\",\"signal\":\"SIG%s\"}\n", probes[i].name, sigabbrev_np(WTERMSIG(st)));
		return;
	}
	int code = WEXITSTATUS(st);
	const char *name = code == 0 ? "ok" : strerrorname_np(code);
	printf("{\"probe\":\"%s\",\"errno\":\"%s\"}\n", probes[i].name, name ? name : "unknown");
}

/* Refuse to run with any effective capability: some probes (vhangup, acct,
 * swapoff) would act on the real system if they were allowed and permitted. */
static void refuse_privileges(void) {
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) < 0) {
		fprintf(stderr, "syscall-probe: capget: %s\n", strerror(errno));
		exit(2);
	}
	if (data[0].effective || data[1].effective) {
		fprintf(stderr, "syscall-probe: refusing to run with effective capabilities; run it inside a sandbox (bwrap --cap-drop ALL)\n");
		exit(2);
	}
}

int main(int argc, char **argv) {
	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (size_t i = 0; i < NPROBES; i++)
			puts(probes[i].name);
		return 0;
	}
	refuse_privileges();
	if (argc == 1) {
		for (size_t i = 0; i < NPROBES; i++)
			run_probe(i);
		return 0;
	}
	for (int a = 1; a < argc; a++) {
		size_t i = 0;
		while (i < NPROBES && strcmp(probes[i].name, argv[a]) != 0)
			i++;
		if (i == NPROBES) {
			fprintf(stderr, "syscall-probe: unknown probe '%s' (see --list)\n", argv[a]);
			return 2;
		}
		run_probe(i);
	}
	return 0;
}
