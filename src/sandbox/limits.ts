// Resource limits for one sandbox. Memory and process count go to a cgroup
// when the host lets us create one (cgroup v2 with memory+pids delegated, or
// cgroup v1 controllers we can write, typically as root); otherwise to rlimits.
// CPU time, file size and open files are rlimits (per process) in every mode;
// core dumps are always off. A limit that cannot be enforced refuses the start.
//
// Hits are read back after the session: cgroup event counters for memory and
// processes, the killing signal of the main command for CPU time and file size.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CordonError } from '../errors.ts';
import { canAccess } from '../fs-access.ts';
import type { ExitInfo, LimitHit, ResolvedLimits } from './backend.ts';

export interface LimitSetup {
  /** NAME=VALUE for cordon-launch --rlimit. */
  rlimits: string[];
  /** cgroup.procs / tasks files cordon-launch writes its pid to. */
  cgroupProcs: string[];
  enforcement: Record<string, string>;
  hits(exit: ExitInfo | null): LimitHit[];
  cleanup(): void;
}

interface CgroupInfo {
  kind: 'v2' | 'v1';
  /** Directories created for this session (v1: one per controller). */
  dirs: Record<'memory' | 'pids', string>;
}

const SIGNAL_HITS: Partial<Record<NodeJS.Signals, LimitHit['limit']>> = { SIGXCPU: 'cpuTime', SIGXFSZ: 'fileSize' };

export function setupLimits(limits: ResolvedLimits, sessionId: string, opts: { hostUid: number; mode?: 'auto' | 'rlimit' }): LimitSetup {
  const needCgroup = limits.memoryBytes !== null || limits.processes !== null;
  const cg = needCgroup && opts.mode !== 'rlimit' ? createCgroup(sessionId) : null;
  const rlimits: string[] = ['core=0'];
  const enforcement: Record<string, string> = {};

  if (limits.cpuTimeMs !== null) {
    // SIGXCPU at the limit (visible, catchable), SIGKILL two seconds later.
    const secs = Math.max(1, Math.ceil(limits.cpuTimeMs / 1000));
    rlimits.push(`cpu=${secs}:${secs + 2}`);
    enforcement.cpuTime = 'rlimit (per process)';
  }
  if (limits.fileSizeBytes !== null) {
    rlimits.push(`fsize=${limits.fileSizeBytes}`);
    enforcement.fileSize = 'rlimit (per process)';
  }
  if (limits.openFiles !== null) {
    rlimits.push(`nofile=${limits.openFiles}`);
    enforcement.openFiles = 'rlimit (per process)';
  }

  const procFiles: string[] = [];
  if (cg) {
    if (cg.kind === 'v2') {
      if (limits.memoryBytes !== null) writeFileSync(join(cg.dirs.memory, 'memory.max'), String(limits.memoryBytes));
      if (limits.memoryBytes !== null) tryWrite(join(cg.dirs.memory, 'memory.swap.max'), '0');
      if (limits.processes !== null) writeFileSync(join(cg.dirs.pids, 'pids.max'), String(limits.processes));
      procFiles.push(join(cg.dirs.memory, 'cgroup.procs'));
    } else {
      if (limits.memoryBytes !== null) {
        writeFileSync(join(cg.dirs.memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
        tryWrite(join(cg.dirs.memory, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes));
      }
      if (limits.processes !== null) writeFileSync(join(cg.dirs.pids, 'pids.max'), String(limits.processes));
      procFiles.push(join(cg.dirs.memory, 'cgroup.procs'), join(cg.dirs.pids, 'cgroup.procs'));
    }
    if (limits.memoryBytes !== null) enforcement.memory = `cgroup ${cg.kind} (whole sandbox)`;
    if (limits.processes !== null) enforcement.processes = `cgroup ${cg.kind} (whole sandbox)`;
  } else {
    if (limits.memoryBytes !== null) {
      rlimits.push(`as=${limits.memoryBytes}`);
      enforcement.memory = 'rlimit address space (per process; no cgroup available)';
    }
    if (limits.processes !== null) {
      if (opts.hostUid === 0) {
        throw new CordonError('CORDON_PREREQ_MISSING', 'cannot limit the number of processes: running as root without a usable cgroup', {
          hint:
            'the kernel does not apply RLIMIT_NPROC to root. Enable the cgroup v1 pids controller or cgroup v2 delegation, ' +
            'run cordon as an unprivileged user, or set limits.processes: unlimited in your policy',
        });
      }
      rlimits.push(`nproc=${limits.processes}`);
      enforcement.processes = 'rlimit (per user namespace; no cgroup available)';
    }
  }
  if (limits.timeoutMs !== null) enforcement.timeout = 'wall clock (cordon kills the sandbox)';

  return {
    rlimits,
    cgroupProcs: procFiles,
    enforcement,
    hits(exit) {
      const out: LimitHit[] = [];
      if (cg) out.push(...cgroupHits(cg, limits));
      const sigLimit = exit?.signal ? SIGNAL_HITS[exit.signal] : undefined;
      if (sigLimit) out.push({ limit: sigLimit, detail: `the command was killed by ${exit!.signal}` });
      return out;
    },
    cleanup() {
      if (!cg) return;
      // One try: a cgroup whose last task is still being torn down answers
      // EBUSY for a moment; the next start's sweep removes it then.
      for (const d of new Set(Object.values(cg.dirs))) {
        try {
          rmdirSync(d);
        } catch {
          // left for sweepStaleCgroups
        }
      }
    },
  };
}

function cgroupHits(cg: CgroupInfo, limits: ResolvedLimits): LimitHit[] {
  const out: LimitHit[] = [];
  const kv = (file: string): Record<string, number> => {
    const res: Record<string, number> = {};
    try {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        const [k, v] = line.trim().split(/\s+/);
        if (k && v) res[k] = Number(v);
      }
    } catch {
      // counter not available on this kernel
    }
    return res;
  };
  if (limits.processes !== null) {
    const max = kv(join(cg.dirs.pids, 'pids.events')).max ?? 0;
    if (max > 0) out.push({ limit: 'processes', detail: `fork refused ${max} time(s) at the limit of ${limits.processes}` });
  }
  if (limits.memoryBytes !== null) {
    const events = cg.kind === 'v2' ? kv(join(cg.dirs.memory, 'memory.events')) : kv(join(cg.dirs.memory, 'memory.oom_control'));
    const kills = events.oom_kill ?? 0;
    const maxHits = cg.kind === 'v2' ? events.max ?? 0 : 0;
    if (kills > 0) out.push({ limit: 'memory', detail: `${kills} process(es) killed at the memory limit of ${limits.memoryBytes} bytes` });
    else if (maxHits > 0) out.push({ limit: 'memory', detail: `memory limit of ${limits.memoryBytes} bytes reached ${maxHits} time(s)` });
  }
  return out;
}

function tryWrite(file: string, value: string): void {
  try {
    writeFileSync(file, value);
  } catch {
    // optional knob (e.g. swap accounting off)
  }
}

function rmdirRetry(dir: string): void {
  for (let i = 0; i < 50; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

/** Our own cgroup paths from /proc/self/cgroup: controller -> path. */
function ownCgroups(): { v2: string | null; v1: Record<string, string> } {
  const v1: Record<string, string> = {};
  let v2: string | null = null;
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
    const [, ctrls, path] = line.split(':') as [string, string, string];
    if (ctrls === '') v2 = path;
    else for (const c of ctrls.split(',')) v1[c] = path;
  }
  return { v2, v1 };
}

function v2Mount(): string | null {
  for (const cand of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    if (existsSync(join(cand, 'cgroup.controllers'))) return cand;
  }
  return null;
}

const writable = (p: string) => canAccess(p, 'write');

/** A cgroup for the session, or null when none can be made here. */
function createCgroup(sessionId: string): CgroupInfo | null {
  const own = ownCgroups();
  // cgroup v2, delegated: memory and pids enabled for our subtree.
  const mount = v2Mount();
  if (mount && own.v2 !== null) {
    const base = join(mount, own.v2);
    const ctrls = readOr(join(base, 'cgroup.subtree_control'));
    if (/\bmemory\b/.test(ctrls) && /\bpids\b/.test(ctrls) && writable(base)) {
      const dir = join(base, 'cordon', sessionId);
      mkdirSync(dir, { recursive: true });
      return { kind: 'v2', dirs: { memory: dir, pids: dir } };
    }
  }
  // cgroup v1: separate hierarchies for memory and pids.
  const memBase = own.v1.memory !== undefined ? join('/sys/fs/cgroup/memory', own.v1.memory) : null;
  const pidsBase = own.v1.pids !== undefined ? join('/sys/fs/cgroup/pids', own.v1.pids) : null;
  if (memBase && pidsBase && existsSync(memBase) && existsSync(pidsBase) && writable(memBase) && writable(pidsBase)) {
    const dirs = { memory: join(memBase, 'cordon', sessionId), pids: join(pidsBase, 'cordon', sessionId) };
    try {
      mkdirSync(dirs.memory, { recursive: true });
      mkdirSync(dirs.pids, { recursive: true });
      return { kind: 'v1', dirs };
    } catch {
      return null;
    }
  }
  return null;
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Kill whatever is left in a dead session's cgroups and remove them. The
 * normal path never needs this (bwrap --die-with-parent and the pid
 * namespace take everything down); it covers a kill of cordon during the
 * instant bwrap is still setting up.
 */
export function killSessionCgroups(sessionId: string): void {
  const own = ownCgroups();
  const dirs: string[] = [];
  const mount = v2Mount();
  if (mount && own.v2 !== null) dirs.push(join(mount, own.v2, 'cordon', sessionId));
  if (own.v1.memory !== undefined) dirs.push(join('/sys/fs/cgroup/memory', own.v1.memory, 'cordon', sessionId));
  if (own.v1.pids !== undefined) dirs.push(join('/sys/fs/cgroup/pids', own.v1.pids, 'cordon', sessionId));
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    if (existsSync(join(d, 'cgroup.kill'))) tryWrite(join(d, 'cgroup.kill'), '1');
    for (const pid of readOr(join(d, 'cgroup.procs')).split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmdirRetry(d);
  }
}

/** Remove empty session cgroups left behind by cordon processes that were killed. */
export function sweepStaleCgroups(): void {
  const own = ownCgroups();
  const parents: string[] = [];
  const mount = v2Mount();
  if (mount && own.v2 !== null) parents.push(join(mount, own.v2, 'cordon'));
  if (own.v1.memory !== undefined) parents.push(join('/sys/fs/cgroup/memory', own.v1.memory, 'cordon'));
  if (own.v1.pids !== undefined) parents.push(join('/sys/fs/cgroup/pids', own.v1.pids, 'cordon'));
  for (const p of parents) {
    let names: string[] = [];
    try {
      names = readdirSync(p, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      continue;
    }
    for (const n of names) {
      const d = join(p, n);
      // A session that is just starting has an empty cgroup for a moment: leave young ones alone.
      let age = 0;
      try {
        age = Date.now() - statSync(d).mtimeMs;
      } catch {
        continue;
      }
      if (age > 60_000 && readOr(join(d, 'cgroup.procs')).trim() === '') {
        try {
          rmdirSync(d);
        } catch {
          // still in use or already gone
        }
      }
    }
  }
}
