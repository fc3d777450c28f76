// Private files for the vault: directories 0700 and files 0600, owned by the
// user cordon runs as. Anything else is refused, never repaired: a vault file
// that another user could read or write has already lost its secret or its
// integrity, and the user should know.
//
// Writes are atomic: a temporary file in the same directory (O_EXCL, 0600),
// fsync, rename over the target (or link, to create without replacing), then
// fsync of the directory. A writer killed at any point leaves the old file or
// the new one, plus at worst a stray ".*.tmp" that the next writer sweeps.

import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { link, lstat, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { vaultError } from './common.ts';

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;
export const TEMP_SUFFIX = '.tmp';

const myUid = (): number => process.geteuid?.() ?? 0;

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** Throw unless `st` is owned by us and has no group/other permission bits. */
export function checkPrivate(st: Stats, path: string, what: 'directory' | 'file', secret?: string): void {
  const uid = myUid();
  if (st.uid !== uid) {
    throw vaultError('permissions', `refusing to use ${path}: it belongs to uid ${st.uid}, not to uid ${uid} that cordon runs as`, {
      secret,
      file: path,
      hint: `if it is yours, chown ${uid} ${path}; otherwise someone else controls your vault: remove it`,
    });
  }
  if ((st.mode & 0o077) !== 0) {
    const want = what === 'directory' ? '700' : '600';
    throw vaultError('permissions', `refusing to use ${path}: its mode ${octal(st.mode)} lets other users in (cordon needs ${want})`, {
      secret,
      file: path,
      hint: `chmod ${want} ${path}${what === 'file' ? ', and treat what it held as exposed (rotate it)' : ''}`,
    });
  }
}

/** Create `path` (0700) if missing; check it is a private directory (not a symlink). Parents are created 0700. */
export async function ensurePrivateDir(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true, mode: DIR_MODE });
  } catch (e) {
    throw vaultError('io', `cannot create ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: path, cause: e });
  }
  await checkPrivateDir(path);
}

/** Check an existing directory; false if it does not exist. */
export async function checkPrivateDir(path: string): Promise<boolean> {
  let st: Stats;
  try {
    st = await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw vaultError('io', `cannot inspect ${path}: ${(e as NodeJS.ErrnoException).code}`, { file: path, cause: e });
  }
  if (!st.isDirectory()) throw vaultError('permissions', `refusing to use ${path}: not a directory (a symlink or a file)`, { file: path });
  checkPrivate(st, path, 'directory');
  return true;
}

/** Read a private regular file (no symlinks); null if it does not exist. */
export async function readPrivateFile(path: string, secret?: string): Promise<Buffer | null> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw vaultError('permissions', `refusing to use ${path}: it is a symlink`, { secret, file: path });
    throw vaultError('io', `cannot read ${path}: ${code ?? (e as Error).message}`, { secret, file: path, cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw vaultError('permissions', `refusing to use ${path}: not a regular file`, { secret, file: path });
    checkPrivate(st, path, 'file', secret);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Write `data` to dir/name atomically, mode 0600. With `exclusive`, fail
 * (returning false) instead of replacing an existing file.
 */
export async function writePrivateFileAtomic(dir: string, name: string, data: Buffer, opts: { exclusive?: boolean } = {}): Promise<boolean> {
  const target = join(dir, name);
  const temp = join(dir, `.${name}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
  const fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, FILE_MODE);
  let renamed = false;
  try {
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (opts.exclusive) {
      try {
        await link(temp, target);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw e;
      }
    } else {
      await rename(temp, target);
      renamed = true;
    }
    await fsyncDir(dir);
    return true;
  } finally {
    // After link() (or a failure) the temporary name is still there.
    if (!renamed) await unlink(temp).catch(() => undefined);
  }
}

/** Remove dir/name durably; false if it did not exist. */
export async function removePrivateFile(dir: string, name: string): Promise<boolean> {
  try {
    await unlink(join(dir, name));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  await fsyncDir(dir);
  return true;
}

/** Names in `dir` ending in `suffix` (the suffix removed), skipping hidden and temporary files. */
export async function listNames(dir: string, suffix: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return names
    .filter((n) => !n.startsWith('.') && n.endsWith(suffix))
    .map((n) => n.slice(0, -suffix.length))
    .sort();
}

/** Remove temporary files left by killed writers. Call only while holding the vault lock. */
export async function sweepTemps(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const n of names) if (n.startsWith('.') && n.endsWith(TEMP_SUFFIX)) await unlink(join(dir, n)).catch(() => undefined);
}
