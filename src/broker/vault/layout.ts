// Where the vault keeps its files, all under cordon's state directory (never
// mounted into a sandbox: NEVER_MOUNT in policy/invariants.ts).
//
//   <state>/vault/                  0700
//     vault.key                     0600  encrypted-file backend: its AES-256 key (32 random bytes), or
//     vault.key.keyring             0600  ...a note that the key is kept in the Secret Service instead
//     .lock                         0600  writers' lock (lock.ts)
//     encrypted/<name>.json         0600  encrypted-file backend: metadata + nonce + ciphertext + tag
//     keyring/<name>.json           0600  keyring backend: metadata only; the value is in the Secret Service

import { join, resolve } from 'node:path';

export interface VaultLayout {
  dir: string;
  keyFile: string;
  keyRefFile: string;
  encryptedDir: string;
  keyringDir: string;
}

export function vaultLayout(stateDir: string): VaultLayout {
  const dir = join(resolve(stateDir), 'vault');
  return {
    dir,
    keyFile: join(dir, 'vault.key'),
    keyRefFile: join(dir, 'vault.key.keyring'),
    encryptedDir: join(dir, 'encrypted'),
    keyringDir: join(dir, 'keyring'),
  };
}
