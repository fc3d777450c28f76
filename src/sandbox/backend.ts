// The interface every sandbox backend implements (bwrap today; gVisor, a
// microVM and Kubernetes later). A backend receives a fully resolved
// SandboxSpec — every decision already made by the session from the policy —
// and only has to realise it. It must fail closed: if any part of the spec
// cannot be enforced, `start` throws instead of running with less.

import type { EffectivePolicy } from '../policy/types.ts';
import type { PrereqCheck } from './prereq.ts';

/** One filesystem operation, applied in order (later entries cover earlier ones). */
export type MountSpec =
  | { kind: 'ro-bind' | 'bind'; src: string; dest: string }
  | { kind: 'tmpfs'; dest: string; mode?: number }
  | { kind: 'dir'; dest: string; mode?: number }
  | { kind: 'symlink'; target: string; dest: string }
  | { kind: 'proc'; dest: string }
  | { kind: 'dev'; dest: string };

/** The policy's limits, after CLI overrides (--timeout). */
export type ResolvedLimits = EffectivePolicy['limits'];

export type NetworkPlan =
  /** Own network namespace with loopback only. */
  | { kind: 'loopback' }
  /** Own network namespace whose only way out is the session proxy (see src/netcap). */
  | { kind: 'captured'; wrap: (argv: string[]) => string[]; env: Record<string, string> };

export interface SandboxSpec {
  sessionId: string;
  /** Command and arguments as seen inside. */
  argv: string[];
  /** Working directory inside. */
  cwd: string;
  /** The complete environment inside (nothing else leaks in). */
  env: Record<string, string>;
  mounts: MountSpec[];
  hostname: string;
  uid: number;
  gid: number;
  limits: ResolvedLimits;
  network: NetworkPlan;
  /** Second filesystem layer (Landlock), where the kernel has it. */
  landlock: { ro: string[]; rw: string[] };
  /** Give the sandbox a fresh pty as controlling terminal (the caller's stdio is a terminal). */
  tty: boolean;
  /** Host directory private to this session (generated files, sockets). */
  sessionDir: string;
}

export interface ExitInfo {
  /** Exit status as a shell reports it: code, or 128+n when killed by signal n. */
  status: number;
  signal: NodeJS.Signals | null;
  /** False when the backend failed before the command started (status is then the backend's). */
  started: boolean;
}

export interface LimitHit {
  limit: 'processes' | 'memory' | 'cpuTime' | 'fileSize' | 'timeout' | 'openFiles';
  detail: string;
}

export interface RunningSandbox {
  /** Host pid of the outermost process of the sandbox. */
  readonly pid: number;
  /** Resolves once every process of the sandbox is gone. */
  wait(): Promise<ExitInfo>;
  /** Kill every process of the sandbox. */
  kill(): void;
  /** Deliver a signal to the sandboxed command (as a terminal would, e.g. Ctrl-C). */
  signal(sig: NodeJS.Signals): void;
  /** Deliver a signal to the backend's host-side process (e.g. SIGWINCH for the pty relay). */
  signalHost(sig: NodeJS.Signals): void;
  /** Limits the backend saw being hit (call after wait()). */
  limitHits(): LimitHit[];
  /** Human description of how each limit is enforced (cgroup v2, cgroup v1, rlimit). */
  readonly enforcement: Record<string, string>;
}

/** What a backend may need before the full spec is known. */
export type EarlySpec = Pick<SandboxSpec, 'sessionId' | 'limits' | 'env' | 'tty'>;

/** A backend's head start (opaque to the session). abort() undoes it. */
export interface PreparedStart {
  abort(): void;
}

export interface SandboxBackend {
  readonly name: string;
  /** Prerequisites with works / missing / how to fix (also used by `cordon doctor`). */
  checks(): Promise<PrereqCheck[]>;
  /** Optional head start on slow, spec-independent work (bwrap: joining cgroups). */
  prepare?(early: EarlySpec): Promise<PreparedStart>;
  start(spec: SandboxSpec, prepared?: PreparedStart): Promise<RunningSandbox>;
  /** The host command line that `start` would run (for `--dry-run` and the benchmark). */
  commandLine(spec: SandboxSpec): Promise<{ argv: string[]; env: Record<string, string>; fds: Record<number, string> }>;
}
