// The encrypted-file backend's key: 32 random bytes (AES-256), made on the
// first write, in one of two places decided then and kept for good:
//
//   <vault>/vault.key (0600)     when no Secret Service is available; or
//   the Secret Service           (service "cordon-vault-key", account = the
//                                vault directory and a random suffix) when one is, with
//                                <vault>/vault.key.keyring (0600) saying so.
//
// Kept in a file, the key sits next to the ciphertext: the encryption then
// protects against copies of single vault files (a backup of encrypted/, a
// file attached to a bug report), not against anyone who can read the whole
// directory. Kept in the Secret Service, it is additionally encrypted at rest
// by the keyring (under the login password) and unreadable while it is locked.
// Either way, any process running as the user while the keyring is unlocked
// can read it: see docs/secrets.md.

import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { vaultError, wipe } from './common.ts';
import type { VaultLayout } from './layout.ts';
import { readPrivateFile, writePrivateFileAtomic } from './private-fs.ts';
import type { ProbeResult } from './secret-service-probe.ts';
import { KEY_SERVICE, type SecretServiceClient } from './secret-service.ts';

export const KEY_BYTES = 32;
const REF_FORMAT = 'cordon-vault-key-ref';

export interface KeyDeps {
  layout: VaultLayout;
  /** Memoized Secret Service probe. */
  probe: () => Promise<ProbeResult>;
  client: () => SecretServiceClient;
}

export type KeyPlace = 'file' | 'keyring' | 'none';

export class FileVaultKey {
  readonly #deps: KeyDeps;
  #key: Buffer | null = null;

  constructor(deps: KeyDeps) {
    this.#deps = deps;
  }

  /** Where the key is now. Throws if both places claim it. */
  async place(): Promise<KeyPlace> {
    const { keyFile, keyRefFile } = this.#deps.layout;
    const [file, ref] = await Promise.all([readPrivateFile(keyFile), readPrivateFile(keyRefFile)]);
    wipe(file);
    if (file && ref) {
      throw vaultError('corrupt', `the vault has both ${keyFile} and ${keyRefFile}: which key is real is unknown`, {
        file: keyFile,
        hint: 'someone changed the vault by hand: move the wrong one aside',
      });
    }
    return file ? 'file' : ref ? 'keyring' : 'none';
  }

  /** The key, or null if none was made yet. */
  async load(): Promise<Buffer | null> {
    if (this.#key) return this.#key;
    const { keyFile, keyRefFile } = this.#deps.layout;
    const place = await this.place();
    if (place === 'file') {
      const key = (await readPrivateFile(keyFile))!;
      if (key.length !== KEY_BYTES) {
        wipe(key);
        throw vaultError('corrupt', `${keyFile} is not a vault key (${KEY_BYTES} bytes expected)`, {
          file: keyFile,
          hint: 'restore it from a backup; without it the vault cannot be decrypted',
        });
      }
      this.#key = key;
    } else if (place === 'keyring') {
      const account = this.#readRef((await readPrivateFile(keyRefFile))!);
      const probe = await this.#deps.probe();
      if (!probe.ok) {
        throw vaultError('unavailable', `the vault key is kept in the Secret Service, which is not available: ${probe.reason}`, {
          file: keyRefFile,
          hint: probe.hint ?? 'run cordon where your keyring is available (your desktop session)',
        });
      }
      const key = await this.#deps.client().get(KEY_SERVICE, account);
      if (!key) {
        throw vaultError('key-missing', `the vault key is missing from the Secret Service (service ${KEY_SERVICE}, account ${account})`, {
          file: keyRefFile,
          hint: 'the keyring entry was deleted or this is another keyring: without it the vault cannot be decrypted',
        });
      }
      if (key.length !== KEY_BYTES) {
        wipe(key);
        throw vaultError('corrupt', `the vault key in the Secret Service is not ${KEY_BYTES} bytes`, { file: keyRefFile });
      }
      this.#key = key;
    }
    return this.#key;
  }

  /** The key, made now if there is none. Call holding the vault lock. */
  async loadOrCreate(): Promise<Buffer> {
    const existing = await this.load();
    if (existing) return existing;
    const { layout } = this.#deps;
    const key = randomBytes(KEY_BYTES);
    const probe = await this.#deps.probe();
    let placed: boolean;
    if (probe.ok) {
      // A fresh account per key: a new key never overwrites an old one.
      const account = `${layout.dir}#${randomBytes(6).toString('hex')}`;
      await this.#deps.client().set(KEY_SERVICE, account, key);
      const ref = Buffer.from(JSON.stringify({ format: REF_FORMAT, v: 1, service: KEY_SERVICE, account, createdAt: new Date().toISOString() }, null, 1) + '\n');
      placed = await writePrivateFileAtomic(layout.dir, basename(layout.keyRefFile), ref, { exclusive: true });
    } else {
      placed = await writePrivateFileAtomic(layout.dir, basename(layout.keyFile), key, { exclusive: true });
    }
    if (!placed) {
      // Another writer made one first (only without the lock): use theirs.
      wipe(key);
      return (await this.load())!;
    }
    this.#key = key;
    return key;
  }

  /** "<path>" or "Secret Service", for the vault's location line. */
  async describe(): Promise<string> {
    const place = await this.place();
    if (place === 'file') return `key in ${this.#deps.layout.keyFile}`;
    if (place === 'keyring') return `key in the Secret Service (${KEY_SERVICE})`;
    return 'no key yet';
  }

  wipe(): void {
    wipe(this.#key);
    this.#key = null;
  }

  #readRef(bytes: Buffer): string {
    const file = this.#deps.layout.keyRefFile;
    let v: { format?: unknown; v?: unknown; service?: unknown; account?: unknown };
    try {
      v = JSON.parse(bytes.toString('utf8')) as typeof v;
    } catch {
      v = {};
    }
    if (v?.format !== REF_FORMAT || v.v !== 1 || v.service !== KEY_SERVICE || typeof v.account !== 'string' || v.account === '') {
      throw vaultError('corrupt', `${file} is corrupted`, { file, hint: 'restore it from a backup' });
    }
    return v.account;
  }
}
