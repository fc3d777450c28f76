// What both vault backends share: secret names, errors, wiping.
//
// Errors name the secret and the file, never the value, never file content
// (JSON.parse messages quote the input, so they are never passed on).

import { CordonError } from '../../errors.ts';

/** Same rule as a binding's `secret` in policy/schema.ts: it is also a file name, so no "/" and no leading ".". */
export const SECRET_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** Largest value accepted, in bytes: API keys and certificates, not payloads. */
export const MAX_VALUE_BYTES = 1 << 20;

/** Why a vault operation failed, in `detail.reason` of the CordonError (stable, for --json and tests). */
export type VaultFailure =
  | 'invalid-name'
  | 'invalid-description'
  | 'empty-value'
  | 'env-unset'
  | 'too-large'
  | 'exists'
  | 'not-found'
  | 'corrupt'
  | 'tampered'
  | 'permissions'
  | 'locked'
  | 'unavailable'
  | 'backend-mismatch'
  | 'key-missing'
  | 'io';

export function vaultError(reason: VaultFailure, message: string, opts: { secret?: string; file?: string; hint?: string; cause?: unknown } = {}): CordonError {
  const detail: Record<string, unknown> = { reason };
  if (opts.secret !== undefined) detail.secret = opts.secret;
  if (opts.file !== undefined) detail.file = opts.file;
  const code = reason === 'invalid-name' || reason === 'invalid-description' ? 'CORDON_USAGE' : 'CORDON_SECRET';
  return new CordonError(code, message, { hint: opts.hint, detail, cause: opts.cause });
}

export function assertSecretName(name: string): void {
  if (typeof name !== 'string' || !SECRET_NAME.test(name)) {
    // Never echoed: a value pasted where the name belongs must not be repeated on the screen.
    throw vaultError('invalid-name', `invalid secret name (${typeof name === 'string' ? `${name.length} characters` : typeof name})`, {
      hint: 'a secret name is 1-64 of a-z 0-9 . _ - and starts with a letter or digit',
    });
  }
}

export function assertValue(name: string, value: Buffer): void {
  if (!Buffer.isBuffer(value)) throw new TypeError('a secret value must be a Buffer');
  if (value.length === 0) throw vaultError('empty-value', `refusing an empty value for secret ${name}`, { secret: name });
  if (value.length > MAX_VALUE_BYTES) {
    throw vaultError('too-large', `the value for secret ${name} is ${value.length} bytes; the vault holds at most ${MAX_VALUE_BYTES}`, { secret: name });
  }
}

/** Overwrite buffers that held secret material. Buffers from Node's shared pool are zeroed only in their own window. */
export function wipe(...bufs: (Uint8Array | number[] | null | undefined)[]): void {
  for (const b of bufs) b?.fill(0);
}

/** A native or system error message, trimmed, with a value scrubbed out if it somehow appears in it. */
export function safeMessage(e: unknown, value?: Buffer): string {
  let m = e instanceof Error ? e.message : String(e);
  if (value && value.length >= 4) {
    const s = value.toString('utf8');
    if (s.length >= 4 && m.includes(s)) m = m.split(s).join('[redacted]');
  }
  return m.length > 300 ? `${m.slice(0, 300)}...` : m;
}
