// The credential broker's contracts. Secrets stay on the host: the vault
// holds them, a session gets per-session placeholders, and the proxy swaps a
// placeholder for the real value only on requests that match its binding.
//
//   Vault                 where secrets live (OS keyring or an encrypted file)   src/broker/vault/
//   SessionCredentials    one session's placeholders, injection and leak rules   src/broker/session-credentials.ts
//
// The broker is the only reader of secrets. Nothing here may log, print,
// serialise or throw a secret value (errors name the secret, never its value).

import type { Inspector } from '../proxy/index.ts';
import type { Binding, Canary } from '../policy/types.ts';

export interface SecretMeta {
  name: string;
  createdAt: string;
  rotatedAt: string | null;
  /** Length of the value in bytes (not the value, not a hash of it). */
  bytes: number;
  backend: VaultBackend;
  description: string | null;
}

export type VaultBackend = 'keyring' | 'encrypted-file';

export interface Vault {
  readonly backend: VaultBackend;
  /** Where it lives, for humans ("Secret Service (gnome-keyring)", "/home/u/.local/state/cordon/vault"). */
  readonly location: string;
  get(name: string): Promise<Buffer | null>;
  /** Create or replace. */
  set(name: string, value: Buffer, opts?: { description?: string }): Promise<SecretMeta>;
  delete(name: string): Promise<boolean>;
  list(): Promise<SecretMeta[]>;
}

/** A placeholder as the sandbox sees it. */
export interface IssuedPlaceholder {
  binding: Binding;
  /** Token kind: the placeholder value. */
  placeholder?: string;
  /** AWS kind: placeholder key pair. */
  aws?: { accessKeyId: string; secretAccessKey: string };
  /** ms since epoch; null for no expiry. */
  expiresAt: number | null;
  revoked: boolean;
}

/** What the session plants inside the sandbox. */
export interface PlantedFile {
  /** Absolute path inside the sandbox. */
  path: string;
  content: string;
}

export interface SessionCredentials {
  /** Variables holding placeholders (and canaries) for the sandbox environment. */
  env(): Record<string, string>;
  /** Files holding placeholders (and canaries) to mount into the sandbox. */
  files(): PlantedFile[];
  /** The proxy inspector: injects real values, refuses foreign credentials, catches leaks, scrubs responses. */
  inspector(): Inspector;
  /** Revoke by secret name (all when omitted); returns the names revoked. The next matching request fails. */
  revoke(secrets?: string[], reason?: string): string[];
  /** Placeholders for `cordon token list`: names, prefixes, expiry, state. Never real values. */
  list(): { secret: string; binding: number; prefix: string; expiresAt: number | null; revoked: boolean }[];
  /** Replaces every real value (and placeholder) in a string: register with the audit store. */
  redactor(): (s: string) => string;
  /** Wipe real values from memory. */
  close(): void;
}

export interface IssueOptions {
  sessionId: string;
  bindings: Binding[];
  canaries: Canary[];
  /** Real values by secret name, fetched from the vault by the caller. */
  secrets: Map<string, Buffer>;
  /** The sandbox's home directory (to expand "~" in file paths). */
  home: string;
  /** One call per audit record (credential use, leaks, revocations). Never pass values. */
  audit: (type: string, data: Record<string, unknown>) => void;
  now?: () => number;
}
