// Per-session host directory and journal. The journal lists what must be undone
// if cordon dies without cleaning up (SIGKILL): placeholder mountpoints left in
// the workspace and the session directory itself. The next cordon start sweeps
// journals whose owner process is gone.
//
// Placeholders are shared. A second session in the same workspace finds the
// first one's placeholder files and mounts them read-only as they are; if the
// first removed them when it ended, the second's mounts over them would
// dissolve (Linux detaches a mount whose mountpoint is unlinked in another
// namespace) and its agent could create the protected file after all. So a
// session's journal lists every placeholder it depends on - its own and those
// of live sessions in its workspace, adopted when it plans - and a placeholder
// is removed only when no live journal lists it. Adopting, planning (which
// decides this session's own placeholders; bwrap creates them a moment later,
// already journalled), releasing and the dead-session sweep each run under one
// lock file, so the question "does anyone still use it" and the removal are
// one step.

import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CordonError } from '../errors.ts';
import { breakIfStale, lockToken, procStartTime, tryLock, unlock } from '../lock-file.ts';
import { removePlaceholders } from '../sandbox/protect.ts';
import { isSessionId } from './ids.ts';

export { procStartTime };

export interface Journal {
  pid: number;
  /** /proc/<pid>/stat start time, so a recycled pid is not mistaken for us. */
  startTime: string;
  sessionId: string;
  workspace: string;
  placeholders: { path: string; dir: boolean }[];
  argv?: string[];
  startedAt?: string;
}

export function sessionsDir(runtime: string): string {
  return join(runtime, 'sessions');
}

export function createSessionDir(runtime: string, sessionId: string): string {
  mkdirSync(sessionsDir(runtime), { recursive: true, mode: 0o700 });
  const dir = join(sessionsDir(runtime), sessionId);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}


export function writeJournal(dir: string, j: Journal): void {
  writeFileSync(join(dir, 'journal.json'), JSON.stringify(j), { mode: 0o600 });
}

export function removeSessionDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

function readJournals(runtime: string): Array<{ dir: string; j: Journal }> {
  let names: string[] = [];
  try {
    names = readdirSync(sessionsDir(runtime));
  } catch {
    return [];
  }
  const out: Array<{ dir: string; j: Journal }> = [];
  for (const name of names) {
    if (!isSessionId(name)) continue;
    const dir = join(sessionsDir(runtime), name);
    try {
      out.push({ dir, j: JSON.parse(readFileSync(join(dir, 'journal.json'), 'utf8')) as Journal });
    } catch {
      // being created right now, or not ours
    }
  }
  return out;
}

const isLive = (j: Journal) => procStartTime(j.pid) === j.startTime;

/** Placeholder paths that live sessions other than `self` depend on. */
export function placeholdersInUse(runtime: string, self: string | null): Set<string> {
  const used = new Set<string>();
  for (const { j } of readJournals(runtime)) if (j.sessionId !== self && isLive(j)) for (const p of j.placeholders) used.add(p.path);
  return used;
}

/** Placeholders of live sessions inside `workspace`: what a new session there depends on from the start. */
export function adoptPlaceholders(runtime: string, workspace: string, self: string): { path: string; dir: boolean }[] {
  const seen = new Map<string, boolean>();
  for (const { j } of readJournals(runtime)) {
    if (j.sessionId === self || !isLive(j)) continue;
    for (const p of j.placeholders) if (p.path.startsWith(`${workspace}/`)) seen.set(p.path, p.dir);
  }
  return [...seen].map(([path, dir]) => ({ path, dir }));
}

/** Remove the placeholders `self` listed that no other live session depends on. Call under the lock. */
export function releasePlaceholders(runtime: string, self: string, placeholders: readonly { path: string; dir: boolean }[]): void {
  const used = placeholdersInUse(runtime, self);
  removePlaceholders(placeholders.filter((p) => !used.has(p.path)));
}

/**
 * Clean up after sessions whose cordon process is gone: their placeholders
 * (those no live session lists) and their directories. Returns their ids;
 * killing what is left in their cgroups is the caller's (slow: not under the
 * lock). Call under the lock.
 */
export function sweepDeadSessions(runtime: string): string[] {
  const swept: string[] = [];
  const all = readJournals(runtime);
  const used = new Set<string>();
  for (const { j } of all) if (isLive(j)) for (const p of j.placeholders) used.add(p.path);
  for (const { dir, j } of all) {
    if (isLive(j)) continue;
    removePlaceholders(j.placeholders.filter((p) => !used.has(p.path)));
    removeSessionDir(dir);
    swept.push(j.sessionId);
  }
  return swept;
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Run `fn` holding the placeholder lock (lock-file.ts; a holder that is gone
 * is taken over). Throws when a live holder keeps it for `waitMs`.
 */
export function withPlaceholderLock<T>(runtime: string, fn: () => T, waitMs = 5000): T {
  mkdirSync(sessionsDir(runtime), { recursive: true, mode: 0o700 });
  const file = join(sessionsDir(runtime), '.placeholders.lock');
  const token = lockToken();
  const t0 = Date.now();
  for (;;) {
    if (tryLock(file, token)) break;
    const holder = breakIfStale(file, 1000);
    if (holder === 0) continue;
    if (Date.now() - t0 > waitMs) {
      throw new CordonError('CORDON_SANDBOX_SETUP', `another cordon process (pid ${holder}) holds the placeholder lock ${file}`, {
        hint: `if no cordon is running, remove ${file}`,
      });
    }
    sleepSync(2);
  }
  try {
    return fn();
  } finally {
    unlock(file, token);
  }
}

export interface SessionInfo {
  sessionId: string;
  dir: string;
  pid: number;
  alive: boolean;
  workspace: string;
  argv: string[];
  startedAt: string | null;
}

/** Sessions with a journal (running, or dead and not yet swept). */
export function listSessions(runtime: string): SessionInfo[] {
  let names: string[] = [];
  try {
    names = readdirSync(sessionsDir(runtime));
  } catch {
    return [];
  }
  const out: SessionInfo[] = [];
  for (const name of names.filter(isSessionId).sort()) {
    const dir = join(sessionsDir(runtime), name);
    try {
      const j = JSON.parse(readFileSync(join(dir, 'journal.json'), 'utf8')) as Journal;
      out.push({ sessionId: j.sessionId, dir, pid: j.pid, alive: procStartTime(j.pid) === j.startTime, workspace: j.workspace, argv: j.argv ?? [], startedAt: j.startedAt ?? null });
    } catch {
      // no journal yet
    }
  }
  return out;
}
