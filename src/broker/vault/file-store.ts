// The encrypted-file backend: one file per secret in <vault>/encrypted/,
//
//   {"format":"cordon-vault-secret","v":1,"name":"github","createdAt":...,
//    "rotatedAt":null,"bytes":40,"description":null,
//    "alg":"A256GCM","nonce":<12 bytes b64>,"ciphertext":<b64>,"tag":<16 bytes b64>}
//
// The value is sealed with AES-256-GCM under the vault key (file-key.ts), a
// fresh random 96-bit nonce per write, and as additional authenticated data
// the format, its version, the secret's name and its metadata: a file copied
// or renamed over another secret's fails to open, as does any edited, flipped
// or missing byte. Metadata stays readable (list needs no key) and carries no
// trace of the value beyond its length.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { vaultError, wipe } from './common.ts';
import type { FileVaultKey, KeyPlace } from './file-key.ts';
import type { VaultLayout } from './layout.ts';
import type { VaultLock } from './lock.ts';
import { FORMAT_VERSION, type MetaRecord } from './meta.ts';
import { RecordVault, type StoredRecord } from './record-vault.ts';

export const SECRET_FORMAT = 'cordon-vault-secret';
const ALG = 'A256GCM';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Binds a ciphertext to the format version, its secret's name, and the metadata stored beside it. */
export function secretAad(r: MetaRecord): Buffer {
  return Buffer.from(JSON.stringify([SECRET_FORMAT, FORMAT_VERSION, r.name, r.createdAt, r.rotatedAt, r.bytes, r.description]), 'utf8');
}

export class EncryptedFileStore extends RecordVault {
  readonly backend = 'encrypted-file' as const;
  readonly #layout: VaultLayout;
  readonly #key: FileVaultKey;
  #keyPlace: KeyPlace;

  constructor(layout: VaultLayout, key: FileVaultKey, keyPlace: KeyPlace, lock: VaultLock, now?: () => Date) {
    super(layout.encryptedDir, SECRET_FORMAT, lock, now);
    this.#layout = layout;
    this.#key = key;
    this.#keyPlace = keyPlace;
  }

  get location(): string {
    const where = this.#keyPlace === 'file' ? `key in ${this.#layout.keyFile}` : this.#keyPlace === 'keyring' ? 'key in the Secret Service' : 'no key yet';
    return `${this.dir} (${where})`;
  }

  protected async sealValue(record: MetaRecord, value: Buffer): Promise<{ [field: string]: unknown }> {
    const key = await this.#key.loadOrCreate();
    this.#keyPlace = await this.#key.place();
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(secretAad(record));
    const ciphertext = Buffer.concat([cipher.update(value), cipher.final()]);
    return { alg: ALG, nonce: nonce.toString('base64'), ciphertext: ciphertext.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
  }

  protected async openValue(name: string, record: StoredRecord, file: string): Promise<Buffer> {
    const corrupt = (what: string) =>
      vaultError('corrupt', `secret ${name}: ${file} is corrupted (${what})`, {
        secret: name,
        file,
        hint: `restore it from a backup, or replace the secret: cordon secret add ${name} --force`,
      });
    const tampered = () =>
      vaultError('tampered', `secret ${name}: ${file} failed its integrity check (modified, truncated, or another secret's file)`, {
        secret: name,
        file,
        hint: `treat the vault as tampered with; replace the secret: cordon secret add ${name} --force, and rotate it where it was issued`,
      });
    if (record.alg !== ALG) throw corrupt('unknown algorithm');
    const field = (k: 'nonce' | 'ciphertext' | 'tag'): Buffer => {
      const v = record[k];
      if (typeof v !== 'string' || !B64.test(v)) throw corrupt(`bad ${k}`);
      return Buffer.from(v, 'base64');
    };
    const nonce = field('nonce');
    const ciphertext = field('ciphertext');
    const tag = field('tag');
    if (nonce.length !== NONCE_BYTES || tag.length !== TAG_BYTES) throw tampered();
    if (ciphertext.length !== record.bytes) throw tampered();
    const key = await this.#key.load();
    if (!key) {
      throw vaultError('key-missing', `secret ${name} cannot be decrypted: the vault key ${this.#layout.keyFile} is missing`, {
        secret: name,
        file: this.#layout.keyFile,
        hint: 'restore vault.key from a backup; without it the encrypted secrets are lost (remove them and add them again)',
      });
    }
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(secretAad(record));
    decipher.setAuthTag(tag);
    // update() hands out plaintext before the tag is checked: wipe it if final() fails.
    const plain = decipher.update(ciphertext);
    try {
      const rest = decipher.final();
      if (rest.length === 0) return plain;
      const all = Buffer.concat([plain, rest]);
      wipe(plain, rest);
      return all;
    } catch {
      wipe(plain);
      throw tampered();
    }
  }

  protected async dropValue(): Promise<void> {}

  override close(): void {
    this.#key.wipe();
  }
}
