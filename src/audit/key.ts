// The state directory and the MAC key. The key is 32 random bytes in
// <stateDir>/audit.key, mode 0600, in a directory nobody else can write.
// Whoever holds the key can forge a whole log, so a key file that group or
// other can touch is refused rather than repaired.

import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { CordonError } from '../errors.ts';

export const KEY_BYTES = 32;

export interface AuditPaths {
  dir: string;
  db: string;
  key: string;
}

export function auditPaths(stateDir: string): AuditPaths {
  return { dir: stateDir, db: join(stateDir, 'audit.db'), key: join(stateDir, 'audit.key') };
}

function unavailable(message: string, hint: string, file: string, cause?: unknown): CordonError {
  return new CordonError('CORDON_AUDIT_UNAVAILABLE', message, { hint, detail: { file }, cause });
}

/** Create the state directory (0700) if needed; refuse one that group or other can write. */
export function ensureStateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw unavailable(`cannot create the state directory ${dir}`, 'check the permissions of its parent', dir, e);
  }
  const st = statSync(dir);
  if (!st.isDirectory()) {
    throw unavailable(`${dir} is not a directory`, 'set CORDON_STATE_DIR to a directory', dir);
  }
  if ((st.mode & 0o022) !== 0) {
    throw unavailable(
      `the state directory ${dir} is writable by group or other (mode ${(st.mode & 0o777).toString(8)})`,
      `run: chmod 700 ${dir}`,
      dir,
    );
  }
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Read and check the key file. Throws CORDON_AUDIT_UNAVAILABLE if it is
 * missing, not a regular file (symlinks are not followed), not 32 bytes, not
 * ours, or open to group/other.
 */
export function readKey(file: string): Buffer {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    if (errno(e) === 'ENOENT') {
      throw unavailable(
        `the audit key ${file} is missing`,
        'restore audit.key from a backup; without it the existing log cannot be verified or extended (move audit.db aside to start a new log)',
        file,
        e,
      );
    }
    throw unavailable(`cannot open the audit key ${file}: ${errno(e) ?? String(e)}`, 'audit.key must be a regular file, not a symlink', file, e);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw unavailable(`the audit key ${file} is not a regular file`, 'remove it', file);
    if ((st.mode & 0o077) !== 0) {
      throw unavailable(
        `the audit key ${file} is accessible by group or other (mode ${(st.mode & 0o777).toString(8)})`,
        `treat the key as exposed: anyone who read it can forge the log. If you are sure it was not read: chmod 600 ${file}`,
        file,
      );
    }
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) {
      throw unavailable(`the audit key ${file} belongs to uid ${st.uid}, not to you`, 'remove it or fix its owner', file);
    }
    if (st.size !== KEY_BYTES) throw unavailable(`the audit key ${file} is not ${KEY_BYTES} bytes`, 'restore it from a backup', file);
    const key = Buffer.alloc(KEY_BYTES);
    if (readSync(fd, key, 0, KEY_BYTES, 0) !== KEY_BYTES) throw unavailable(`short read from ${file}`, 'restore it from a backup', file);
    return key;
  } finally {
    closeSync(fd);
  }
}

/**
 * Read the key, creating it first if it does not exist. Safe against a
 * concurrent first open: the key is written to a private temporary file and
 * hard-linked into place, so a reader never sees a partial key and exactly one
 * creator wins.
 */
export function readOrCreateKey(paths: AuditPaths): Buffer {
  try {
    return readKey(paths.key);
  } catch (e) {
    if (errno((e as CordonError).cause) !== 'ENOENT') throw e;
  }
  const tmp = join(paths.dir, `.audit.key.${process.pid}.${randomBytes(6).toString('hex')}`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    try {
      writeSync(fd, randomBytes(KEY_BYTES));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, paths.key);
    } catch (e) {
      if (errno(e) !== 'EEXIST') throw e; // another process won the race; use its key
    }
    syncDir(paths.dir);
  } finally {
    unlinkSync(tmp);
  }
  return readKey(paths.key);
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Create an empty file with mode 0600 unless it exists (SQLite would use 0644). */
export function createPrivateFile(file: string): void {
  try {
    closeSync(openSync(file, 'wx', 0o600));
  } catch (e) {
    if (errno(e) !== 'EEXIST') throw e;
  }
}
