// Lock files shared by cordon processes: created with O_EXCL (never through a
// symlink), holding "<pid> <process start time> <random>". A holder whose
// process is gone (its pid free, or reused by another process: the start time
// differs) is stale; so is a file left empty for longer than `emptyStaleMs`
// (its creator died between create and write). Breaking a stale lock moves
// the file aside first and puts it back if it changed meanwhile, so two
// processes judging the same stale holder do not both end up holding the lock.
// Used by the vault's writers (broker/vault/lock.ts) and the workspace
// placeholders (session/journal.ts); both hold it for milliseconds.

import { randomBytes } from 'node:crypto';
import { closeSync, constants, linkSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';

/** /proc/<pid>/stat start time (field 22), or null when there is no such process. */
export function procStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Counted after the command name in parentheses (which may hold spaces).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

/** What this process writes into a lock file it takes (unique per acquisition). */
export function lockToken(): string {
  return `${process.pid} ${procStartTime(process.pid) ?? '?'} ${randomBytes(6).toString('hex')}\n`;
}

/** Try once: true when `path` was created holding `token`. Throws on errors other than EEXIST. */
export function tryLock(path: string, token: string, mode = 0o600): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    writeSync(fd, token);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Look at the holder of `path`: 0 when it was stale and is gone (try again
 * now), else the live holder's pid (-1 while the file is still being written).
 */
export function breakIfStale(path: string, emptyStaleMs: number): number {
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
  const [pidText, start] = content.trim().split(' ');
  const pid = Number.parseInt(pidText ?? '', 10);
  if (Number.isInteger(pid) && pid > 0) {
    if (start !== undefined && start !== '?' ? procStartTime(pid) === start : procStartTime(pid) !== null) return pid;
  } else {
    let age = Infinity;
    try {
      age = Date.now() - statSync(path).mtimeMs;
    } catch {
      return 0;
    }
    if (age < emptyStaleMs) return -1;
  }
  // Stale: move it aside; if what was moved is not what was judged, put it back.
  const aside = `${path}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch {
    return 0; // moved or removed by someone else
  }
  let moved = '';
  try {
    moved = readFileSync(aside, 'utf8');
  } catch {
    moved = '';
  }
  if (moved !== content) {
    try {
      linkSync(aside, path); // unless a newer lock is there already
    } catch {
      // a third process holds it now
    }
  }
  try {
    unlinkSync(aside);
  } catch {
    // gone
  }
  return 0;
}

/** Remove `path` if it still holds `token`. */
export function unlock(path: string, token: string): void {
  try {
    if (readFileSync(path, 'utf8') === token) unlinkSync(path);
  } catch {
    // already gone
  }
}
