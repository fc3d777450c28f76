// The vault's writers' lock: <vault>/.lock, created with O_EXCL, holding
// "<pid> <start time> <random token>". Writers (set, rotate, delete, key creation) hold it
// for the few milliseconds of a read-modify-write; readers never take it,
// because every file is replaced atomically.
//
// The file itself is lock-file.ts's: a lock whose process is gone (a writer
// killed mid-way) is broken, and so is an empty lock file older than a few
// seconds (killed between create and write). A lock held by a live process for
// longer than the wait is reported, naming the process. Within one process,
// writers also queue on a promise chain, so one Vault instance never races itself.

import { join } from 'node:path';
import { breakIfStale, lockToken, tryLock, unlock } from '../../lock-file.ts';
import { vaultError } from './common.ts';
import { FILE_MODE } from './private-fs.ts';

export const LOCK_FILE = '.lock';
const WAIT_MS = 15_000;
const EMPTY_STALE_MS = 5_000;

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
    const token = lockToken();
    await this.#acquire(token);
    try {
      return await fn();
    } finally {
      unlock(this.#path, token);
    }
  }

  async #acquire(token: string): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        if (tryLock(this.#path, token, FILE_MODE)) return;
      } catch (e) {
        throw vaultError('io', `cannot create the vault lock ${this.#path}: ${(e as NodeJS.ErrnoException).code}`, { file: this.#path, cause: e });
      }
      const holder = breakIfStale(this.#path, EMPTY_STALE_MS);
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
}
