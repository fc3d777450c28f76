// The Secret Service through @napi-rs/keyring (keyring-rs), pinned to the
// Secret Service store: never the kernel keyutils fallback, which forgets
// everything at logout and would silently lose secrets.
//
// The native module is loaded on first use, through a require that esbuild
// leaves alone (it cannot bundle a .node file), so commands that never touch
// the keyring never load it. Call only after probeSecretService() said yes:
// the library connects to the bus synchronously and would hang on a wedged one.
// Every call is bounded by a timeout, long enough to answer an unlock prompt.

import { createRequire } from 'node:module';
import { safeMessage, vaultError, wipe } from './common.ts';

type KeyringModule = typeof import('@napi-rs/keyring');

/** keyring "service" of secret values (account = secret name). */
export const VALUE_SERVICE = 'cordon';
/** keyring "service" of encrypted-file vault keys (account = the vault directory). */
export const KEY_SERVICE = 'cordon-vault-key';

export const OP_TIMEOUT_MS = 60_000;

function loadKeyring(): KeyringModule {
  try {
    const load = createRequire(import.meta.url);
    return load('@napi-rs/keyring') as KeyringModule;
  } catch (e) {
    throw vaultError('unavailable', `cannot load the keyring library (@napi-rs/keyring): ${safeMessage(e)}`, {
      hint: 'reinstall cordon (npm ci), or use the encrypted-file vault: --vault file',
      cause: e,
    });
  }
}

export class SecretServiceClient {
  readonly #timeoutMs: number;
  #mod: KeyringModule | null = null;

  constructor(timeoutMs = OP_TIMEOUT_MS) {
    this.#timeoutMs = timeoutMs;
  }

  async get(service: string, account: string): Promise<Buffer | null> {
    const arr = await this.#call('read', service, account, (e, signal) => e.getSecret(signal));
    if (arr === null) return null;
    const out = Buffer.from(arr);
    wipe(arr);
    return out;
  }

  async set(service: string, account: string, value: Buffer): Promise<void> {
    await this.#call('store', service, account, (e, signal) => e.setSecret(value, signal), value);
  }

  async delete(service: string, account: string): Promise<boolean> {
    return this.#call('delete', service, account, (e, signal) => e.deleteCredential(signal));
  }

  async #call<T>(
    op: string,
    service: string,
    account: string,
    fn: (entry: InstanceType<KeyringModule['AsyncEntry']>, signal: AbortSignal) => Promise<T>,
    value?: Buffer,
  ): Promise<T> {
    this.#mod ??= loadKeyring();
    const what = service === KEY_SERVICE ? 'the vault key' : `secret ${account}`;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), this.#timeoutMs);
    try {
      const entry = new this.#mod.AsyncEntry(service, account, { linux: { store: 'secret-service' } });
      return await fn(entry, ac.signal);
    } catch (e) {
      const why = ac.signal.aborted ? `no answer within ${Math.round(this.#timeoutMs / 1000)} s (is an unlock prompt waiting?)` : safeMessage(e, value);
      throw vaultError('unavailable', `the Secret Service could not ${op} ${what}: ${why}`, {
        secret: service === KEY_SERVICE ? undefined : account,
        hint: 'check that your keyring is running and unlocked (seahorse, or gnome-keyring-daemon --unlock)',
      });
    } finally {
      clearTimeout(timer);
    }
  }
}
