// Secret metadata on disk: what `cordon secret list` shows. Never the value,
// never a hash of it (a hash of a short token is a dictionary away from it).
//
// Both backends keep one JSON file per secret; the encrypted-file backend adds
// the sealed value (nonce, ciphertext, tag) to the same file, so that value and
// metadata change together in one atomic rename.

import type { SecretMeta, VaultBackend } from '../types.ts';
import { vaultError } from './common.ts';

export const FORMAT_VERSION = 1;
export const META_SUFFIX = '.json';
export const MAX_DESCRIPTION = 200;

export interface MetaRecord {
  name: string;
  createdAt: string;
  rotatedAt: string | null;
  bytes: number;
  description: string | null;
}

// No control characters: `list` prints it to a terminal.
const DESCRIPTION = new RegExp(`^[^\\u0000-\\u001f\\u007f-\\u009f]{1,${MAX_DESCRIPTION}}$`);

export function checkDescription(d: string | null | undefined): string | null {
  if (d === undefined || d === null || d === '') return null;
  if (!DESCRIPTION.test(d)) {
    throw vaultError('invalid-description', `a description is at most ${MAX_DESCRIPTION} characters, without control characters`);
  }
  return d;
}

export function toSecretMeta(r: MetaRecord, backend: VaultBackend): SecretMeta {
  return { name: r.name, createdAt: r.createdAt, rotatedAt: r.rotatedAt, bytes: r.bytes, backend, description: r.description };
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/**
 * Parse a metadata (or sealed secret) file of secret `name` in `format`.
 * Returns the parsed object for the caller's own fields. Throws a CordonError
 * naming the secret and the file, without any of the file's bytes.
 */
export function parseRecord(bytes: Buffer, name: string, file: string, format: string): MetaRecord & Record<string, unknown> {
  const corrupt = (what: string) =>
    vaultError('corrupt', `secret ${name}: ${file} is corrupted (${what})`, {
      secret: name,
      file,
      hint: `restore it from a backup, or replace the secret: cordon secret add ${name} --force`,
    });
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw corrupt('not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw corrupt('not a JSON object');
  const o = v as Record<string, unknown>;
  if (o.format !== format) throw corrupt(`not a ${format} file`);
  if (o.v !== FORMAT_VERSION) throw corrupt(`unknown format version`);
  if (o.name !== name) {
    throw vaultError('tampered', `secret ${name}: ${file} holds the record of another secret (moved or swapped files)`, {
      secret: name,
      file,
      hint: 'someone with access to your state directory moved vault files: treat the vault as tampered with, rotate its secrets',
    });
  }
  if (typeof o.createdAt !== 'string' || !ISO.test(o.createdAt)) throw corrupt('bad createdAt');
  if (o.rotatedAt !== null && (typeof o.rotatedAt !== 'string' || !ISO.test(o.rotatedAt))) throw corrupt('bad rotatedAt');
  if (typeof o.bytes !== 'number' || !Number.isInteger(o.bytes) || o.bytes < 1) throw corrupt('bad bytes');
  if (o.description !== null && (typeof o.description !== 'string' || !DESCRIPTION.test(o.description))) throw corrupt('bad description');
  return o as MetaRecord & Record<string, unknown>;
}

export function serializeRecord(format: string, r: MetaRecord, extra: Record<string, unknown> = {}): Buffer {
  const out = {
    format,
    v: FORMAT_VERSION,
    name: r.name,
    createdAt: r.createdAt,
    rotatedAt: r.rotatedAt,
    bytes: r.bytes,
    description: r.description,
    ...extra,
  };
  return Buffer.from(JSON.stringify(out, null, 1) + '\n');
}

/** The record after an operation: new (created now) or rotated (created kept, rotated now). */
export function nextRecord(
  name: string,
  bytes: number,
  previous: MetaRecord | null,
  op: 'create' | 'rotate',
  description: string | null | undefined,
  now: Date,
): MetaRecord {
  const at = now.toISOString();
  if (op === 'rotate' && previous) {
    return { name, createdAt: previous.createdAt, rotatedAt: at, bytes, description: description === undefined ? previous.description : checkDescription(description) };
  }
  return { name, createdAt: at, rotatedAt: null, bytes, description: checkDescription(description) };
}
