// The vault: where cordon keeps real secret values, on the host only, in
// <stateDir>/vault (layout.ts) and, when there is one, the user's Secret
// Service. Two backends behind the Vault contract of ../types.ts:
//
//   keyring          values in the Secret Service (keyring-store.ts); metadata in the state dir
//   encrypted-file   values sealed with AES-256-GCM in the state dir (file-store.ts); the key
//                    in the Secret Service when there is one, else in vault.key (file-key.ts)
//
// Choosing ("auto"): a vault that already holds secrets keeps its backend; an
// empty one uses the Secret Service when a quick probe (secret-service-probe.ts:
// D-Bus, bounded by a timeout, nothing read or written) finds one usable, and
// the encrypted file otherwise. "keyring" and "file" insist, and refuse a vault
// whose secrets are in the other backend rather than split it in two.
//
// Key handling, threat model and file formats: docs/secrets.md.

import type { Vault } from '../types.ts';
import { vaultError } from './common.ts';
import { FileVaultKey } from './file-key.ts';
import { EncryptedFileStore } from './file-store.ts';
import { KeyringStore } from './keyring-store.ts';
import { vaultLayout } from './layout.ts';
import { VaultLock } from './lock.ts';
import { META_SUFFIX } from './meta.ts';
import { checkPrivateDir, ensurePrivateDir, listNames } from './private-fs.ts';
import { probeSecretService, type ProbeResult } from './secret-service-probe.ts';
import { SecretServiceClient } from './secret-service.ts';

export { MAX_VALUE_BYTES, SECRET_NAME, type VaultFailure } from './common.ts';
export { vaultLayout, type VaultLayout } from './layout.ts';
export { probeSecretService, type ProbeResult } from './secret-service-probe.ts';

export type VaultPreference = 'auto' | 'keyring' | 'file';
export const VAULT_PREFERENCES: readonly VaultPreference[] = ['auto', 'keyring', 'file'];

export interface OpenVaultOptions {
  /** cordon's state directory (paths.ts); the vault lives in <stateDir>/vault. */
  stateDir: string;
  prefer?: VaultPreference;
  /**
   * Where to look for the session bus (DBUS_SESSION_BUS_ADDRESS). Default:
   * process.env. The native keyring library reads this process's own
   * environment, so a bus named only in `env` counts as unavailable.
   */
  env?: NodeJS.ProcessEnv;
  /** Clock for createdAt/rotatedAt (tests). */
  now?: () => Date;
}

async function probeFor(env: NodeJS.ProcessEnv): Promise<ProbeResult> {
  const result = await probeSecretService(env);
  if (result.ok && env !== process.env && env.DBUS_SESSION_BUS_ADDRESS !== process.env.DBUS_SESSION_BUS_ADDRESS) {
    return {
      ok: false,
      reason: "the bus given in the vault's environment is not this process's (the keyring library only uses the process environment)",
      address: result.address,
    };
  }
  return result;
}

export async function openVault(opts: OpenVaultOptions): Promise<Vault> {
  const prefer = opts.prefer ?? 'auto';
  if (!VAULT_PREFERENCES.includes(prefer)) {
    throw vaultError('invalid-name', `unknown vault backend "${String(prefer)}"`, { hint: 'use auto, keyring or file' });
  }
  const env = opts.env ?? process.env;
  const layout = vaultLayout(opts.stateDir);
  await ensurePrivateDir(layout.dir);
  const held = async (dir: string) => ((await checkPrivateDir(dir)) ? (await listNames(dir, META_SUFFIX)).length : 0);
  const [inFile, inKeyring] = await Promise.all([held(layout.encryptedDir), held(layout.keyringDir)]);

  let probed: Promise<ProbeResult> | null = null;
  const probe = () => (probed ??= probeFor(env));
  let client: SecretServiceClient | null = null;
  const getClient = () => (client ??= new SecretServiceClient());
  const lock = new VaultLock(layout.dir);

  const mismatch = (wanted: 'keyring' | 'file', count: number) => {
    const other = wanted === 'file' ? 'the Secret Service (keyring backend)' : 'the encrypted file';
    return vaultError('backend-mismatch', `this vault keeps its ${count} secret(s) in ${other}; cordon uses one backend at a time`, {
      file: layout.dir,
      hint: `use --vault ${wanted === 'file' ? 'keyring' : 'file'} (or auto), or first remove those secrets with cordon secret rm`,
    });
  };
  if (inFile > 0 && inKeyring > 0 && prefer === 'auto') {
    throw vaultError('backend-mismatch', `this vault holds secrets in both backends (${inFile} encrypted-file, ${inKeyring} keyring)`, {
      file: layout.dir,
      hint: 'choose one with --vault file or --vault keyring, and move the others there',
    });
  }

  let backend: 'keyring' | 'file';
  if (prefer === 'file') {
    if (inKeyring > 0) throw mismatch('file', inKeyring);
    backend = 'file';
  } else if (prefer === 'keyring') {
    if (inFile > 0) throw mismatch('keyring', inFile);
    backend = 'keyring';
  } else if (inKeyring > 0) {
    backend = 'keyring';
  } else if (inFile > 0) {
    backend = 'file';
  } else {
    backend = (await probe()).ok ? 'keyring' : 'file';
  }

  if (backend === 'keyring') {
    const p = await probe();
    if (!p.ok) {
      const why = inKeyring > 0 ? 'this vault keeps its secrets in the Secret Service, which is not available' : 'no Secret Service is available';
      throw vaultError('unavailable', `${why}: ${p.reason}`, {
        hint: `${p.hint ?? 'run cordon in a session with a Secret Service (gnome-keyring: apt-get install gnome-keyring)'}${inKeyring > 0 ? '' : '; or use --vault file'}`,
      });
    }
    return new KeyringStore(layout, getClient(), p.address, lock, opts.now);
  }
  const key = new FileVaultKey({ layout, probe, client: getClient });
  return new EncryptedFileStore(layout, key, await key.place(), lock, opts.now);
}
