// Per-session host directory and journal. The journal lists what must be undone
// if cordon dies without cleaning up (SIGKILL): placeholder mountpoints left in
// the workspace and the session directory itself. The next cordon start sweeps
// journals whose owner process is gone.

import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { killSessionCgroups } from '../sandbox/limits.ts';
import { removePlaceholders } from '../sandbox/protect.ts';
import { isSessionId } from './ids.ts';

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

export function procStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime), counted after the command name in parentheses.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

export function writeJournal(dir: string, j: Journal): void {
  writeFileSync(join(dir, 'journal.json'), JSON.stringify(j), { mode: 0o600 });
}

export function removeSessionDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Clean up after sessions whose cordon process is gone. Returns their ids. */
export function sweepDeadSessions(runtime: string): string[] {
  const swept: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(sessionsDir(runtime));
  } catch {
    return swept;
  }
  for (const name of names) {
    if (!isSessionId(name)) continue;
    const dir = join(sessionsDir(runtime), name);
    let j: Journal;
    try {
      j = JSON.parse(readFileSync(join(dir, 'journal.json'), 'utf8')) as Journal;
    } catch {
      continue; // being created right now, or not ours
    }
    if (procStartTime(j.pid) === j.startTime) continue; // still running
    killSessionCgroups(j.sessionId);
    removePlaceholders(j.placeholders);
    removeSessionDir(dir);
    swept.push(name);
  }
  return swept;
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
