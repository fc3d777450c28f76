// The credential broker's contracts. Secrets stay on the host: the vault
// holds them, a session gets per-session placeholders, and the proxy swaps a
// placeholder for the real value only on requests that match its binding.
//
//   Vault                 where secrets live (OS keyring or an encrypted file)   src/broker/vault/
//   SessionCredentials    one session's placeholders, injection and leak rules   src/broker/session-credentials.ts
//                         (issueCredentials, exported from src/broker/index.ts)
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
  /** A fresh copy of the value (the caller wipes it with fill(0) when done), or null if there is no such secret. */
  get(name: string): Promise<Buffer | null>;
  /** Metadata of one secret, or null. */
  meta(name: string): Promise<SecretMeta | null>;
  /**
   * Create, or replace as a new secret (createdAt now, rotatedAt null). With
   * `exclusive`, an existing secret is an error (CORDON_SECRET, detail.reason
   * "exists"). The vault copies `value`; the caller still owns and wipes it.
   */
  set(name: string, value: Buffer, opts?: { description?: string | null; exclusive?: boolean }): Promise<SecretMeta>;
  /**
   * Replace the value of an existing secret: keeps createdAt (and the
   * description unless one is given), sets rotatedAt. A missing secret is an
   * error (CORDON_SECRET, detail.reason "not-found").
   */
  rotate(name: string, value: Buffer, opts?: { description?: string | null }): Promise<SecretMeta>;
  /** False if there was no such secret. */
  delete(name: string): Promise<boolean>;
  list(): Promise<SecretMeta[]>;
  /** Wipe key material held in memory. */
  close(): void;
}

/** What the redactor puts in place of a value. */
export const REDACTED_TEXT = '[redacted]';

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

export type PlaceholderState = 'live' | 'revoked' | 'expired';

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
  /** The proxy inspector: injects real values, refuses foreign credentials, catches leaks, scrubs responses. The same object on every call. */
  inspector(): Inspector;
  /** Every binding's placeholder, as the sandbox holds it (not secret outside the session; never a real value). */
  issued(): IssuedPlaceholder[];
  /**
   * Revoke by secret name (all when omitted); returns the names newly revoked.
   * Takes effect at once: the next request carrying the placeholder is refused
   * ("credential revoked"). Writes no audit record (the caller does).
   */
  revoke(secrets?: string[], reason?: string): string[];
  /** Placeholders for `cordon token list`: names, a short prefix, expiry, state. Never real values. */
  list(): { secret: string; binding: number; prefix: string; expiresAt: number | null; revoked: boolean; state: PlaceholderState }[];
  /** Replaces every real value, placeholder and canary, in every spelling the broker scans for, with "[redacted]": register with the audit store. */
  redactor(): (s: string) => string;
  /** Wipe real values from memory (buffers filled with zeros) and revoke everything. Strings made from real values for the header/redactor are dropped, not wiped (JavaScript strings cannot be). */
  close(): void;
}

export interface IssueOptions {
  sessionId: string;
  bindings: Binding[];
  canaries: Canary[];
  /**
   * Real values by secret name, fetched from the vault by the caller. Copied:
   * the caller may wipe its buffers once issueCredentials returns. A binding
   * whose secret is missing fails the call (CORDON_SECRET). Token values are
   * trimmed and must be visible ASCII, at least 8 characters; aws values are
   * JSON {"accessKeyId","secretAccessKey","sessionToken"?} or an aws
   * credentials file (first profile).
   */
  secrets: Map<string, Buffer>;
  /** The sandbox's home directory (to expand "~" in file paths). */
  home: string;
  /** One call per audit record (credential use, leaks, revocations). Never pass values. */
  audit: (type: string, data: Record<string, unknown>) => void;
  /** Clock for expiry and SigV4 time checks (tests). Default Date.now. */
  now?: () => number;
  /** Largest request body read whole to sign an AWS request without x-amz-content-sha256. Default 16 MiB. */
  maxSignedBodyBytes?: number;
}
