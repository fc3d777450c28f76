// The bubblewrap backend: no root needed, user namespaces, seccomp, Landlock.
//
//   node (cordon) -> cordon-launch (cgroup, rlimits, pty) -> [netcap wrap] -> bwrap -> cordon-init (Landlock) -> command
//
// bwrap gets the seccomp program on fd 3 and reports status on fd 4.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { CordonError } from '../../errors.ts';
import type { EarlySpec, ExitInfo, LimitHit, PreparedStart, RunningSandbox, SandboxBackend, SandboxSpec } from '../backend.ts';
import { setupLimits, type LimitSetup } from '../limits.ts';
import type { PrereqCheck } from '../prereq.ts';
import { seccompFilterPath } from '../seccomp/compile.ts';
import { bwrapArgs } from './args.ts';
import { bwrapChecks } from './checks.ts';

export interface BwrapOptions {
  installDir: string;
  cacheDir: string;
  /** Landlock is required when the kernel has it (checked by `doctor`). */
  requireLandlock: boolean;
  /** Host uid (decides whether RLIMIT_NPROC can work). */
  hostUid: number;
  /** Force rlimits even where cgroups are available (tests). */
  limitsMode?: 'auto' | 'rlimit';
  bwrapPath?: string;
}

const SECCOMP_FD = 3;
const STATUS_FD = 4;
const STARTED_FD = 5;
const ARGV_FD = 6;

interface PreparedBwrap extends PreparedStart {
  early: EarlySpec;
  child: ChildProcess;
  limits: LimitSetup;
  argvPipe: NodeJS.WritableStream;
  watch: LaunchWatch;
}

interface LaunchWatch {
  exited: Promise<ExitInfo>;
  /** Host pid of the sandbox's pid 1, once bwrap has said it. */
  childPid(): number | null;
}

/**
 * bwrap prints the pid of the sandbox's init on fd 4 (before it sets up
 * mounts); cordon-init writes a byte on fd 5 once set-up is complete. Without
 * that byte, a failure was bwrap's own (a mount it could not make...), not
 * the command's.
 */
function watchLaunch(child: ChildProcess): LaunchWatch {
  let childPid: number | null = null;
  let started = false;
  const pipes = child.stdio as unknown as (NodeJS.ReadableStream | null)[];
  const startedPipe = pipes[STARTED_FD] ?? null;
  const startedDone = new Promise<void>((resolve) => {
    if (!startedPipe) return resolve();
    startedPipe.on('data', () => (started = true));
    startedPipe.on('close', () => resolve());
    startedPipe.on('error', () => resolve());
  });
  const status = pipes[STATUS_FD] ?? null;
  const statusDone = new Promise<void>((resolve) => {
    if (!status) return resolve();
    let buf = '';
    status.setEncoding('utf8');
    status.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (childPid === null && line.includes('"child-pid"')) {
          try {
            const pid = (JSON.parse(line) as Record<string, unknown>)['child-pid'];
            if (typeof pid === 'number') childPid = pid;
          } catch {
            // not JSON: ignore
          }
        }
      }
    });
    status.on('close', () => resolve());
    status.on('error', () => resolve());
  });
  const exited = new Promise<ExitInfo>((resolve, reject) => {
    child.once('error', (e) => reject(new CordonError('CORDON_SANDBOX_SETUP', `cannot start the sandbox: ${e.message}`, { cause: e })));
    child.once('exit', (code, signal) => {
      void Promise.all([statusDone, startedDone]).then(() => {
        let st: number;
        let sig: NodeJS.Signals | null = null;
        if (signal) {
          st = 128 + (osSignalNumber(signal) ?? 0);
          sig = signal;
        } else st = code ?? 125;
        if (sig === null && st > 128 && st < 128 + 65) sig = signalName(st - 128);
        resolve({ status: st, signal: sig, started });
      });
    });
  });
  exited.catch(() => {}); // observed through wait(); never an unhandled rejection
  return { exited, childPid: () => childPid };
}

export function nativeBinary(installDir: string, name: string): string {
  const p = join(installDir, 'build', 'native', name);
  if (!existsSync(p)) {
    throw new CordonError('CORDON_PREREQ_MISSING', `cordon's helper ${name} is not built (${p} is missing)`, {
      hint: 'run scripts/setup.sh (or scripts/build-native.sh) in the cordon checkout',
    });
  }
  return p;
}

export class BwrapBackend implements SandboxBackend {
  readonly name = 'bwrap';
  private readonly opts: BwrapOptions;

  constructor(opts: BwrapOptions) {
    this.opts = opts;
  }

  checks(): Promise<PrereqCheck[]> {
    return bwrapChecks(this.opts.installDir, this.opts.bwrapPath ?? 'bwrap');
  }

  async commandLine(spec: SandboxSpec) {
    const filter = await seccompFilterPath({ installDir: this.opts.installDir, cacheDir: this.opts.cacheDir });
    const bwrap = [this.opts.bwrapPath ?? 'bwrap', ...bwrapArgs(spec, { seccomp: SECCOMP_FD, status: STATUS_FD, started: STARTED_FD }, { requireLandlock: this.opts.requireLandlock })];
    const inner = spec.network.kind === 'captured' ? spec.network.wrap(bwrap) : bwrap;
    return { argv: inner, env: spec.env, fds: { [SECCOMP_FD]: filter } as Record<number, string> };
  }

  /**
   * Start cordon-launch before the command line is known: it joins the
   * session's cgroups (on cgroup v1 that waits for an RCU grace period, some
   * 10 ms) while the session plans mounts and writes the audit record. The
   * command arrives later on fd 6; closing that pipe empty aborts.
   */
  async prepare(early: EarlySpec): Promise<PreparedStart> {
    const launch = nativeBinary(this.opts.installDir, 'cordon-launch');
    const filter = await seccompFilterPath({ installDir: this.opts.installDir, cacheDir: this.opts.cacheDir });
    const limits = setupLimits(early.limits, early.sessionId, { hostUid: this.opts.hostUid, mode: this.opts.limitsMode ?? 'auto' });
    const argv: string[] = ['--parent-pid', String(process.pid), '--argv-fd', String(ARGV_FD)];
    for (const f of limits.cgroupProcs) argv.push('--cgroup-procs', f);
    for (const r of limits.rlimits) argv.push('--rlimit', r);
    if (early.tty) argv.push('--pty');
    argv.push('--');
    const seccompFd = openSync(filter, 'r');
    let child: ChildProcess;
    try {
      child = spawn(launch, argv, {
        env: early.env,
        stdio: ['inherit', 'inherit', 'inherit', seccompFd, 'pipe', 'pipe', 'pipe'],
        // Its own session: signals from the terminal reach cordon only, which
        // forwards them to the command (or, with a pty, the relay carries them
        // as bytes), instead of killing bwrap outright.
        detached: true,
      });
    } finally {
      closeSync(seccompFd);
    }
    const argvPipe = (child.stdio as unknown as (NodeJS.WritableStream | null)[])[ARGV_FD]!;
    // Watch it from now on, so an early death is never missed.
    const watch = watchLaunch(child);
    const abort = () => {
      argvPipe.end();
      void watch.exited.finally(() => limits.cleanup());
    };
    return { early, child, limits, argvPipe, watch, abort } as PreparedBwrap;
  }

  async start(spec: SandboxSpec, prepared?: PreparedStart): Promise<RunningSandbox> {
    const pre = (prepared ?? (await this.prepare(spec))) as PreparedBwrap;
    const { argv: inner } = await this.commandLine(spec);
    const { child, limits } = pre;
    // The command for cordon-launch: NUL-terminated arguments, then EOF.
    pre.argvPipe.end(Buffer.from(inner.map((a) => `${a}\0`).join('')));

    const { exited } = pre.watch;
    const childPid = () => pre.watch.childPid();

    let exitInfo: ExitInfo | null = null;
    let hits: LimitHit[] = [];
    const pid = child.pid ?? -1;
    return {
      pid,
      enforcement: limits.enforcement,
      wait: async () => {
        try {
          exitInfo = await exited;
          hits = limits.hits(exitInfo); // before cleanup removes the counters
          return exitInfo;
        } finally {
          limits.cleanup();
        }
      },
      kill: () => {
        // SIGKILL to bwrap (via cordon-launch): --die-with-parent takes the
        // sandbox's pid 1 down, and the kernel kills everything else in its pid
        // namespace. With a pty, cordon-launch gets SIGTERM first so it can put
        // the user's terminal back; SIGKILL follows if it lingers.
        const sig = spec.tty ? 'SIGTERM' : 'SIGKILL';
        try {
          if (pid > 0) process.kill(pid, sig);
        } catch {
          return; // already gone
        }
        if (spec.tty) {
          setTimeout(() => {
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              // gone
            }
          }, 2000).unref();
        }
      },
      signal: (sig) => {
        // bwrap's child is the sandbox's pid 1 (a reaper); the command is its child.
        const init = childPid();
        if (init === null) return;
        for (const p of childrenOf(init)) {
          try {
            process.kill(p, sig);
          } catch {
            // exited meanwhile
          }
        }
      },
      signalHost: (sig) => {
        try {
          if (pid > 0) process.kill(pid, sig);
        } catch {
          // gone
        }
      },
      limitHits: () => hits,
    };
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function osSignalNumber(sig: NodeJS.Signals): number | undefined {
  return (osConstants.signals as Record<string, number>)[sig];
}

function signalName(n: number): NodeJS.Signals | null {
  for (const [name, num] of Object.entries(osConstants.signals)) if (num === n) return name as NodeJS.Signals;
  return null;
}
