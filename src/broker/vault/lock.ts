// The vault's writers' lock: <vault>/.lock, created with O_EXCL, holding
// "<pid> <random token>". Writers (set, rotate, delete, key creation) hold it
// for the few milliseconds of a read-modify-write; readers never take it,
// because every file is replaced atomically.
//
// A lock whose process is gone (a writer killed mid-way) is broken; so is an
// empty lock file older than a few seconds (killed between create and write).
// A lock held by a live process for longer than the wait is reported, naming
// the process. Within one process, writers also queue on a promise chain, so
// one Vault instance never races itself.

import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { vaultError } from './common.ts';
import { FILE_MODE } from './private-fs.ts';

export const LOCK_FILE = '.lock';
const WAIT_MS = 15_000;
const EMPTY_STALE_MS = 5_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class VaultLock {
  readonly #path: string;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(vaultDir: string) {
    this.#path = join(vaultDir, LOCK_FILE);
  }

  /** Run `fn` holding the lock. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(() => this.#locked(fn));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #locked<T>(fn: () => Promise<T>): Promise<T> {
    const token = `${process.pid} ${randomBytes(8).toString('hex')}\n`;
    await this.#acquire(token);
    try {
      return await fn();
    } finally {
      await this.#release(token);
    }
  }

  async #acquire(token: string): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    let holder = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        const fh = await open(this.#path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, FILE_MODE);
        try {
          await fh.writeFile(token);
        } finally {
          await fh.close();
        }
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw vaultError('io', `cannot create the vault lock ${this.#path}: ${(e as NodeJS.ErrnoException).code}`, { file: this.#path, cause: e });
        }
      }
      holder = await this.#breakIfStale();
      if (holder === 0) continue;
      if (Date.now() > deadline) {
        throw vaultError('locked', `the vault is locked by process ${holder}`, {
          file: this.#path,
          hint: `wait for it to finish; if no cordon process ${holder} is running, remove ${this.#path}`,
        });
      }
      await sleep(Math.min(5 + attempt * 5, 50) + Math.random() * 10);
    }
  }

  /** 0 when the lock was stale and is gone (retry now), else the holder's pid (or -1 while it is being written). */
  async #breakIfStale(): Promise<number> {
    let content: string;
    try {
      content = await readFile(this.#path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
    const pid = Number.parseInt(content, 10);
    if (Number.isInteger(pid) && pid > 0) {
      if (alive(pid)) return pid;
    } else {
      // Empty: a writer between create and write, or one killed right there.
      const st = await stat(this.#path).catch(() => null);
      if (st && Date.now() - st.mtimeMs < EMPTY_STALE_MS) return -1;
    }
    // Stale. Remove it only if it still holds what we judged.
    const again = await readFile(this.#path, 'utf8').catch(() => null);
    if (again === content) await unlink(this.#path).catch(() => undefined);
    return 0;
  }

  async #release(token: string): Promise<void> {
    const content = await readFile(this.#path, 'utf8').catch(() => null);
    if (content === token) await unlink(this.#path).catch(() => undefined);
  }
}
