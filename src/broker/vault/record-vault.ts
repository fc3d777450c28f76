// What the two backends share: one metadata record per secret in a private
// directory, the writers' lock, and the create / rotate / delete rules. A
// backend says only where the value goes (sealValue / openValue / dropValue).

import { join } from 'node:path';
import type { SecretMeta, Vault, VaultBackend } from '../types.ts';
import { assertSecretName, assertValue, vaultError } from './common.ts';
import type { VaultLock } from './lock.ts';
import { META_SUFFIX, type MetaRecord, nextRecord, parseRecord, serializeRecord, toSecretMeta } from './meta.ts';
import { checkPrivateDir, ensurePrivateDir, listNames, readPrivateFile, removePrivateFile, sweepTemps, writePrivateFileAtomic } from './private-fs.ts';

export type StoredRecord = MetaRecord & { [field: string]: unknown };

export abstract class RecordVault implements Vault {
  abstract readonly backend: VaultBackend;
  abstract readonly location: string;
  protected readonly dir: string;
  protected readonly lock: VaultLock;
  protected readonly now: () => Date;
  readonly #format: string;

  constructor(dir: string, format: string, lock: VaultLock, now: () => Date = () => new Date()) {
    this.dir = dir;
    this.#format = format;
    this.lock = lock;
    this.now = now;
  }

  /** Put the value where it lives; return fields to store in the record (the file backend's ciphertext). */
  protected abstract sealValue(record: MetaRecord, value: Buffer): Promise<{ [field: string]: unknown }>;
  /** The value of a secret whose record is `record`. */
  protected abstract openValue(name: string, record: StoredRecord, file: string): Promise<Buffer>;
  /** Remove the value kept outside the record, if any. */
  protected abstract dropValue(name: string): Promise<void>;

  file(name: string): string {
    return join(this.dir, name + META_SUFFIX);
  }

  async get(name: string): Promise<Buffer | null> {
    assertSecretName(name);
    const record = await this.#read(name);
    return record ? this.openValue(name, record, this.file(name)) : null;
  }

  async meta(name: string): Promise<SecretMeta | null> {
    assertSecretName(name);
    const record = await this.#read(name);
    return record ? toSecretMeta(record, this.backend) : null;
  }

  async list(): Promise<SecretMeta[]> {
    if (!(await checkPrivateDir(this.dir))) return [];
    const out: SecretMeta[] = [];
    for (const name of await listNames(this.dir, META_SUFFIX)) {
      const record = await this.#read(name);
      if (record) out.push(toSecretMeta(record, this.backend));
    }
    return out;
  }

  async set(name: string, value: Buffer, opts: { description?: string | null; exclusive?: boolean } = {}): Promise<SecretMeta> {
    assertSecretName(name);
    assertValue(name, value);
    return this.lock.run(async () => {
      await this.#prepare();
      // Replacing ignores a broken old record: `add --force` is how one recovers.
      const exists = await readPrivateFile(this.file(name), name).then((b) => b !== null);
      if (exists && opts.exclusive) {
        throw vaultError('exists', `secret ${name} already exists`, {
          secret: name,
          hint: `replace it: cordon secret rotate ${name} (keeps its history) or cordon secret add ${name} --force`,
        });
      }
      return this.#write(nextRecord(name, value.length, null, 'create', opts.description, this.now()), value);
    });
  }

  async rotate(name: string, value: Buffer, opts: { description?: string | null } = {}): Promise<SecretMeta> {
    assertSecretName(name);
    assertValue(name, value);
    return this.lock.run(async () => {
      await this.#prepare();
      const previous = await this.#read(name);
      if (!previous) throw vaultError('not-found', `no secret named ${name}`, { secret: name, hint: `add it: cordon secret add ${name}` });
      return this.#write(nextRecord(name, value.length, previous, 'rotate', opts.description, this.now()), value);
    });
  }

  async delete(name: string): Promise<boolean> {
    assertSecretName(name);
    if (!(await checkPrivateDir(this.dir))) return false;
    return this.lock.run(async () => {
      // A broken record is removed too: that is the other way to recover.
      if ((await readPrivateFile(this.file(name), name)) === null) return false;
      // The value first: killed in between, the secret is still listed and
      // `rm` can be repeated, rather than a value orphaned where no list shows it.
      await this.dropValue(name);
      return removePrivateFile(this.dir, name + META_SUFFIX);
    });
  }

  close(): void {}

  async #prepare(): Promise<void> {
    await ensurePrivateDir(this.dir);
    await sweepTemps(this.dir);
  }

  async #write(record: MetaRecord, value: Buffer): Promise<SecretMeta> {
    const extra = await this.sealValue(record, value);
    try {
      await writePrivateFileAtomic(this.dir, record.name + META_SUFFIX, serializeRecord(this.#format, record, extra));
    } catch (e) {
      throw vaultError('io', `cannot write secret ${record.name}: ${(e as NodeJS.ErrnoException).code ?? 'write failed'}`, {
        secret: record.name,
        file: this.file(record.name),
        cause: e,
      });
    }
    return toSecretMeta(record, this.backend);
  }

  async #read(name: string): Promise<StoredRecord | null> {
    if (!(await checkPrivateDir(this.dir))) return null;
    const file = this.file(name);
    const bytes = await readPrivateFile(file, name);
    return bytes === null ? null : parseRecord(bytes, name, file, this.#format);
  }
}
