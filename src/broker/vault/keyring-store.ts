// The keyring backend: values in the Secret Service (service "cordon",
// account = the secret's name), metadata in <vault>/keyring/<name>.json so
// that `list` works without asking the keyring (and without the keyring's own
// listing, which would hand every value to JavaScript).
//
// The Secret Service is per user, not per state directory: two cordon state
// directories under one account share these entries (docs/secrets.md).

import { vaultError } from './common.ts';
import type { VaultLayout } from './layout.ts';
import type { VaultLock } from './lock.ts';
import type { MetaRecord } from './meta.ts';
import { RecordVault } from './record-vault.ts';
import { type SecretServiceClient, VALUE_SERVICE } from './secret-service.ts';

export const KEYRING_META_FORMAT = 'cordon-vault-meta';

export class KeyringStore extends RecordVault {
  readonly backend = 'keyring' as const;
  readonly location: string;
  readonly #client: SecretServiceClient;

  constructor(layout: VaultLayout, client: SecretServiceClient, busAddress: string | null, lock: VaultLock, now?: () => Date) {
    super(layout.keyringDir, KEYRING_META_FORMAT, lock, now);
    this.#client = client;
    this.location = `Secret Service (service "${VALUE_SERVICE}"${busAddress ? ` on ${busAddress.split(',')[0]}` : ''}), metadata in ${layout.keyringDir}`;
  }

  protected async sealValue(record: MetaRecord, value: Buffer): Promise<{ [field: string]: unknown }> {
    await this.#client.set(VALUE_SERVICE, record.name, value);
    return {};
  }

  protected async openValue(name: string, _record: unknown, file: string): Promise<Buffer> {
    const value = await this.#client.get(VALUE_SERVICE, name);
    if (!value) {
      throw vaultError('corrupt', `secret ${name} is listed (${file}) but its value is missing from the Secret Service`, {
        secret: name,
        file,
        hint: `it was deleted from the keyring, or this is another keyring: add it again with cordon secret add ${name} --force`,
      });
    }
    return value;
  }

  protected async dropValue(name: string): Promise<void> {
    await this.#client.delete(VALUE_SERVICE, name);
  }
}
