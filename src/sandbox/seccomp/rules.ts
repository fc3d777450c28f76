// The seccomp policy of the bwrap backend, as data. Pure: no I/O.
//
// Shape: allow by default, deny a reviewed list. Each entry says what it
// refuses and why; renderRules() turns the list into the text that
// native/seccomp-export.c compiles (its header documents the line format), and
// docs are generated from the same list. Changing a rule changes the cache key
// of the compiled filter (see compile.ts), so an edit here takes effect on the
// next run without any manual step.
//
// Ground rules for entries:
// - Conditions on `int`/`unsigned int` arguments use masked_eq with
//   0xffffffff: the kernel truncates those to 32 bits but seccomp compares all
//   64, so `eq 17` would let 0x1_0000_0011 through (the Flatpak TIOCSTI bypass,
//   CVE-2019-10063, was exactly this).
// - A denial answers EPERM, except where the caller is expected to fall back
//   (ENOSYS, "this kernel does not have it"): clone3 and io_uring.
// - Foreign ABIs (i386 `int 0x80`, x32) kill the process: a filter written for
//   x86_64 numbers means nothing for them.
//
// Known limit of a deny list: a syscall newer than the installed libseccomp
// is allowed unless named here with its number (`nr`, accepted only for
// syscalls numbered >= 424, which are numbered alike on every architecture).

/** The errno values a rule may answer with (seccomp-export knows more). */
export type SeccompErrno = 'EPERM' | 'ENOSYS';

export type CompareOp = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | 'masked_eq';

export interface ArgCondition {
  /** Syscall argument index. */
  readonly arg: 0 | 1 | 2 | 3 | 4 | 5;
  readonly op: CompareOp;
  /** Compared value; for masked_eq, (arg & mask) === value. At most 2^53-1. */
  readonly value: number;
  /** Required for masked_eq, refused otherwise. */
  readonly mask?: number;
}

export type RuleGroup = 'processes' | 'mounts' | 'namespaces' | 'kernel' | 'host' | 'network' | 'terminal';

export interface SeccompRule {
  readonly syscall: string;
  /** Number to use when libseccomp is older than the syscall (>= 424 only). */
  readonly nr?: number;
  /** Skip, rather than fail, on an architecture that lacks the syscall. */
  readonly optional?: boolean;
  readonly errno: SeccompErrno;
  /**
   * When to deny: any one alternative (OR), each a list of conditions on
   * distinct arguments that must all hold (AND). Absent: always.
   */
  readonly when?: readonly (readonly ArgCondition[])[];
  /** `when` in words, for docs (required with `when`). */
  readonly on?: string;
  readonly group: RuleGroup;
  /** One line, for docs and reviewers. */
  readonly reason: string;
}

const INT = 0xffffffff;

/** arg (an int) equals value, whatever garbage the upper half of the register holds. */
function intIs(arg: ArgCondition['arg'], value: number): ArgCondition[] {
  return [{ arg, op: 'masked_eq', value, mask: INT }];
}

const CLONE_NEW_FLAGS = {
  CLONE_NEWNS: 0x00020000,
  CLONE_NEWCGROUP: 0x02000000,
  CLONE_NEWUTS: 0x04000000,
  CLONE_NEWIPC: 0x08000000,
  CLONE_NEWUSER: 0x10000000,
  CLONE_NEWPID: 0x20000000,
  CLONE_NEWNET: 0x40000000,
  // CLONE_NEWTIME (0x80) only exists for clone3/unshare: in clone() that bit
  // belongs to the exit signal.
} as const;

/**
 * personality(2) values other than PER_LINUX (0, what glibc and Node run with)
 * and 0xffffffff (the query), as single-comparison alternatives, because
 * libseccomp takes at most one comparison per argument in a rule.
 * A 32-bit value that is neither all zeros nor all ones has a set bit whose
 * next bit (cyclically) is clear, so 32 two-bit masked_eq tests cover exactly
 * those values. The kernel reads the argument as 32 bits; anything in the
 * upper half is refused too (fail closed), by the `gt` alternative.
 */
function personalityOtherThanLinuxOrQuery(): ArgCondition[][] {
  const alternatives: ArgCondition[][] = [[{ arg: 0, op: 'gt', value: INT }]];
  for (let bit = 0; bit < 32; bit++) {
    const set = 2 ** bit;
    const clear = 2 ** ((bit + 1) % 32);
    alternatives.push([{ arg: 0, op: 'masked_eq', value: set, mask: set + clear }]);
  }
  return alternatives;
}

// Address families and socket types (linux/socket.h, linux/net.h).
const AF_NETLINK = 16;
const AF_PACKET = 17;
const AF_VSOCK = 40;
const SOCK_TYPE_MASK = 0xf; // the low bits; SOCK_NONBLOCK/SOCK_CLOEXEC sit above
const SOCK_RAW = 3;
const SOCK_PACKET = 10;

// Terminal ioctls (asm-generic/ioctls.h; the same on x86 and arm64).
const TIOCSTI = 0x5412;
const TIOCLINUX = 0x541c;
const TIOCSETD = 0x5423;

export const SECCOMP_RULES: readonly SeccompRule[] = [
  // --- other processes: the sandbox's own children are still "other processes"
  { syscall: 'ptrace', errno: 'EPERM', group: 'processes', reason: 'reads and rewrites the memory and registers of other processes' },
  { syscall: 'process_vm_readv', errno: 'EPERM', group: 'processes', reason: "reads another process's memory" },
  { syscall: 'process_vm_writev', errno: 'EPERM', group: 'processes', reason: "writes another process's memory" },
  { syscall: 'pidfd_getfd', errno: 'EPERM', group: 'processes', reason: "copies a descriptor out of another process (ptrace-class access)" },
  { syscall: 'process_madvise', errno: 'EPERM', group: 'processes', reason: "acts on another process's memory (ptrace-class access)" },
  {
    syscall: 'personality',
    errno: 'EPERM',
    when: personalityOtherThanLinuxOrQuery(),
    on: 'persona is not 0 (PER_LINUX) or 0xffffffff (query)',
    group: 'processes',
    reason: 'flags such as ADDR_NO_RANDOMIZE and READ_IMPLIES_EXEC switch off exploit mitigations; only PER_LINUX and the query pass',
  },

  // --- the mount table: bwrap built the view, nothing inside may change it
  { syscall: 'mount', errno: 'EPERM', group: 'mounts', reason: 'changes the filesystem view that bwrap built' },
  { syscall: 'umount', optional: true, errno: 'EPERM', group: 'mounts', reason: 'would uncover what a mount hides (not on x86_64, which only has umount2)' },
  { syscall: 'umount2', errno: 'EPERM', group: 'mounts', reason: 'would uncover what a mount hides' },
  { syscall: 'pivot_root', errno: 'EPERM', group: 'mounts', reason: 'changes the root of the mount namespace' },
  { syscall: 'move_mount', errno: 'EPERM', group: 'mounts', reason: 'new mount API: attaches mounts' },
  { syscall: 'open_tree', errno: 'EPERM', group: 'mounts', reason: 'new mount API: clones mount trees' },
  { syscall: 'open_tree_attr', nr: 467, errno: 'EPERM', group: 'mounts', reason: 'new mount API (Linux 6.15): clones mount trees with new attributes' },
  { syscall: 'fsopen', errno: 'EPERM', group: 'mounts', reason: 'new mount API: creates a filesystem context' },
  { syscall: 'fsconfig', errno: 'EPERM', group: 'mounts', reason: 'new mount API: configures a filesystem context' },
  { syscall: 'fsmount', errno: 'EPERM', group: 'mounts', reason: 'new mount API: turns a context into a mount' },
  { syscall: 'fspick', errno: 'EPERM', group: 'mounts', reason: 'new mount API: reconfigures an existing mount' },
  { syscall: 'mount_setattr', errno: 'EPERM', group: 'mounts', reason: 'changes mount flags (read-only, idmapping) of a tree' },
  { syscall: 'open_by_handle_at', errno: 'EPERM', group: 'mounts', reason: "opens files by handle, around the mount view (the 'shocker' container escape)" },
  { syscall: 'name_to_handle_at', errno: 'EPERM', group: 'mounts', reason: 'produces the handles open_by_handle_at consumes; leaks inode identities' },

  // --- namespaces: a new user namespace hands back every capability bwrap dropped
  { syscall: 'unshare', errno: 'EPERM', group: 'namespaces', reason: 'new namespaces, above all user namespaces, regain capabilities and open kernel attack surface' },
  { syscall: 'setns', errno: 'EPERM', group: 'namespaces', reason: 'enters other namespaces' },
  {
    syscall: 'clone',
    errno: 'EPERM',
    when: Object.values(CLONE_NEW_FLAGS).map((flag) => [{ arg: 0, op: 'masked_eq', value: flag, mask: flag }] as const),
    on: 'flags has any CLONE_NEW* bit',
    group: 'namespaces',
    reason: 'clone with any CLONE_NEW* flag creates namespaces (plain clone, as for threads and fork, stays allowed)',
  },
  {
    syscall: 'clone3',
    errno: 'ENOSYS',
    group: 'namespaces',
    reason: 'its flags live in memory seccomp cannot read; ENOSYS makes glibc and others fall back to clone, whose flags are checked',
  },

  // --- kernel attack surface with a long CVE history and no use for an agent
  { syscall: 'bpf', errno: 'EPERM', group: 'kernel', reason: 'loads programs into the kernel' },
  { syscall: 'perf_event_open', errno: 'EPERM', group: 'kernel', reason: 'kernel profiling: side channels and a frequent source of kernel bugs' },
  { syscall: 'userfaultfd', errno: 'EPERM', group: 'kernel', reason: 'lets a process stall the kernel mid-copy, a staple of kernel exploits' },
  { syscall: 'io_uring_setup', errno: 'ENOSYS', group: 'kernel', reason: 'io_uring: large attack surface that bypasses per-syscall filtering; libraries fall back' },
  { syscall: 'io_uring_enter', errno: 'ENOSYS', group: 'kernel', reason: 'io_uring (see io_uring_setup)' },
  { syscall: 'io_uring_register', errno: 'ENOSYS', group: 'kernel', reason: 'io_uring (see io_uring_setup)' },
  { syscall: 'keyctl', errno: 'EPERM', group: 'kernel', reason: 'kernel keyrings are not namespaced: could reach the user\'s keys outside the sandbox' },
  { syscall: 'add_key', errno: 'EPERM', group: 'kernel', reason: 'kernel keyrings are not namespaced' },
  { syscall: 'request_key', errno: 'EPERM', group: 'kernel', reason: 'kernel keyrings are not namespaced; may run a host upcall' },
  { syscall: 'modify_ldt', optional: true, errno: 'EPERM', group: 'kernel', reason: 'x86 segment descriptors: rarely needed, with a history of kernel bugs (x86 only)' },
  { syscall: 'uselib', optional: true, errno: 'EPERM', group: 'kernel', reason: 'obsolete a.out library loader (not on every architecture)' },

  // --- the host as a whole: kernel modules, power, time, logs, swap, quotas
  { syscall: 'kexec_load', errno: 'EPERM', group: 'host', reason: 'replaces the running kernel' },
  { syscall: 'kexec_file_load', errno: 'EPERM', group: 'host', reason: 'replaces the running kernel' },
  { syscall: 'init_module', errno: 'EPERM', group: 'host', reason: 'loads kernel code' },
  { syscall: 'finit_module', errno: 'EPERM', group: 'host', reason: 'loads kernel code' },
  { syscall: 'delete_module', errno: 'EPERM', group: 'host', reason: 'unloads kernel code' },
  { syscall: 'reboot', errno: 'EPERM', group: 'host', reason: 'reboots or halts the machine' },
  { syscall: 'acct', errno: 'EPERM', group: 'host', reason: 'switches host-wide process accounting' },
  { syscall: 'swapon', errno: 'EPERM', group: 'host', reason: 'host-wide swap configuration' },
  { syscall: 'swapoff', errno: 'EPERM', group: 'host', reason: 'host-wide swap configuration' },
  { syscall: 'syslog', errno: 'EPERM', group: 'host', reason: 'the kernel log leaks host addresses and activity' },
  { syscall: 'quotactl', errno: 'EPERM', group: 'host', reason: 'filesystem quotas are host-wide' },
  { syscall: 'quotactl_fd', errno: 'EPERM', group: 'host', reason: 'filesystem quotas are host-wide' },
  { syscall: 'lookup_dcookie', errno: 'EPERM', group: 'host', reason: 'profiling interface exposing host paths (removed in Linux 6.9)' },
  { syscall: 'vhangup', errno: 'EPERM', group: 'host', reason: 'hangs up a terminal' },
  { syscall: 'iopl', optional: true, errno: 'EPERM', group: 'host', reason: 'raw access to I/O ports (x86 only)' },
  { syscall: 'ioperm', optional: true, errno: 'EPERM', group: 'host', reason: 'raw access to I/O ports (x86 only)' },
  { syscall: 'settimeofday', errno: 'EPERM', group: 'host', reason: 'the clock is host-wide' },
  { syscall: 'clock_settime', errno: 'EPERM', group: 'host', reason: 'the clock is host-wide' },

  // --- network: the proxy must be the only way out
  { syscall: 'socket', errno: 'EPERM', when: [intIs(0, AF_PACKET)], on: 'domain is AF_PACKET', group: 'network', reason: 'AF_PACKET: raw frames below the IP layer, around the egress capture' },
  {
    syscall: 'socket',
    errno: 'EPERM',
    when: [intIs(0, AF_VSOCK)],
    on: 'domain is AF_VSOCK',
    group: 'network',
    reason: 'AF_VSOCK: talks to the hypervisor host, outside the network namespace and the proxy',
  },
  {
    syscall: 'socket',
    errno: 'EPERM',
    // `ne` compares 64 bits: a netlink domain with garbage above bit 31 is
    // refused too, which is the safe direction.
    when: [[{ arg: 0, op: 'ne', value: AF_NETLINK }, { arg: 1, op: 'masked_eq', value: SOCK_RAW, mask: SOCK_TYPE_MASK }]],
    on: 'type is SOCK_RAW and domain is not AF_NETLINK',
    group: 'network',
    reason: 'SOCK_RAW: forged packets and raw protocols (netlink is exempt: its sockets are SOCK_RAW and glibc needs them)',
  },
  {
    syscall: 'socket',
    errno: 'EPERM',
    when: [[{ arg: 1, op: 'masked_eq', value: SOCK_PACKET, mask: SOCK_TYPE_MASK }]],
    on: 'type is SOCK_PACKET',
    group: 'network',
    reason: 'SOCK_PACKET: the obsolete form of AF_PACKET',
  },

  // --- the terminal the sandbox shares with the user
  { syscall: 'ioctl', errno: 'EPERM', when: [intIs(1, TIOCSTI)], on: 'request is TIOCSTI', group: 'terminal', reason: "TIOCSTI pushes keystrokes into the terminal's input: commands typed into the user's shell" },
  { syscall: 'ioctl', errno: 'EPERM', when: [intIs(1, TIOCLINUX)], on: 'request is TIOCLINUX', group: 'terminal', reason: 'TIOCLINUX can paste the console selection as input (same attack as TIOCSTI)' },
  { syscall: 'ioctl', errno: 'EPERM', when: [intIs(1, TIOCSETD)], on: 'request is TIOCSETD', group: 'terminal', reason: 'changing the line discipline loads rarely used kernel code (n_gsm, n_hdlc CVEs)' },
];

/** Action for syscalls no rule matches, and for foreign ABIs. */
export const SECCOMP_DEFAULT = 'allow';
export const SECCOMP_BADARCH = 'kill';

function hex(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`seccomp rule value out of range: ${n}`);
  return '0x' + n.toString(16);
}

function renderCondition(c: ArgCondition): string {
  if ((c.op === 'masked_eq') !== (c.mask !== undefined)) throw new Error(`seccomp rule: a mask goes with masked_eq and only with it (${c.op})`);
  return `${c.arg} ${c.op} ${hex(c.value)}` + (c.mask === undefined ? '' : ` ${hex(c.mask)}`);
}

function renderSyscall(r: SeccompRule): string {
  return (r.optional ? '?' : '') + r.syscall + (r.nr === undefined ? '' : `@${r.nr}`);
}

/** The rule text for native/seccomp-export (one `deny` line per alternative). */
export function renderRules(rules: readonly SeccompRule[] = SECCOMP_RULES): string {
  const lines = [
    '# cordon seccomp policy, generated from src/sandbox/seccomp/rules.ts',
    `default ${SECCOMP_DEFAULT}`,
    `badarch ${SECCOMP_BADARCH}`,
  ];
  for (const r of rules) {
    lines.push(`# ${r.reason}`);
    const head = `deny ${renderSyscall(r)} ${r.errno}`;
    if (!r.when) lines.push(head);
    else for (const alt of r.when) lines.push(`${head} if ${alt.map(renderCondition).join(' and ')}`);
  }
  return lines.join('\n') + '\n';
}

/** One row per rule, for generated docs. */
export function describeRules(rules: readonly SeccompRule[] = SECCOMP_RULES): { syscall: string; when: string; errno: SeccompErrno; group: RuleGroup; reason: string }[] {
  return rules.map((r) => ({
    syscall: r.syscall,
    when: r.when ? (r.on ?? r.when.map((alt) => alt.map(renderCondition).join(' and ')).join(' or ')) : 'always',
    errno: r.errno,
    group: r.group,
    reason: r.reason,
  }));
}
