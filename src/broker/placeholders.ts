// What the sandbox holds instead of secrets: placeholders (per session,
// random, recognisable) and canaries (decoys that look like the real thing).
//
// Token placeholder:  <placeholderPrefix>cordonph<base62>
//   The prefix keeps client libraries happy ("sk-ant-api03-" passes the SDK's
//   checks); "cordonph" tells a human reading a log what it is; the length is
//   the real value's when the real value has the same prefix, else the usual
//   length of keys with that prefix, never less than 22 random characters
//   (131 bits).
// AWS placeholder:    AKIACORDON<10 base32>  (20 chars, ASIA... when the real
//   pair is temporary) and a 40-character secret "cordonph<32 base62>".
// Canaries carry no visible marker on purpose: a decoy that says "cordon"
//   is one an attacker skips. Each is unique per session (at least 160 random
//   bits) and recognised by its exact value.

import { BASE32_UPPER, BASE62, randomString } from './random.ts';

export const PLACEHOLDER_MARKER = 'cordonph';
/** Marker inside placeholder AWS access key ids (after AKIA/ASIA). */
export const AWS_KEY_MARKER = 'CORDON';
const MIN_RANDOM = 22;
const MAX_LENGTH = 256;

/** Usual total lengths of real keys, by prefix (longest prefix wins). */
const KNOWN_LENGTHS: ReadonlyArray<readonly [string, number]> = [
  ['sk-ant-api03-', 108],
  ['sk-ant-oat01-', 108],
  ['sk-ant-', 108],
  ['sk-proj-', 164],
  ['sk-', 51],
  ['github_pat_', 93],
  ['ghp_', 40],
  ['gho_', 40],
  ['ghu_', 40],
  ['ghs_', 40],
  ['ghr_', 40],
  ['hf_', 37],
  ['AIza', 39],
];

function targetLength(prefix: string, real: Buffer | undefined): number {
  const min = prefix.length + PLACEHOLDER_MARKER.length + MIN_RANDOM;
  if (real && prefix.length > 0 && real.length <= MAX_LENGTH && real.subarray(0, prefix.length).toString('latin1') === prefix) {
    return Math.max(min, real.length);
  }
  let best: readonly [string, number] | undefined;
  for (const k of KNOWN_LENGTHS) if (prefix.startsWith(k[0]) && (!best || k[0].length > best[0].length)) best = k;
  return Math.max(min, best ? best[1] : prefix.length + PLACEHOLDER_MARKER.length + 32);
}

/** A token placeholder for a binding with this prefix. */
export function tokenPlaceholder(prefix: string, real: Buffer | undefined): string {
  const head = `${prefix}${PLACEHOLDER_MARKER}`;
  return head + randomString(BASE62, targetLength(prefix, real) - head.length);
}

export interface AwsPlaceholder {
  accessKeyId: string;
  secretAccessKey: string;
}

export function awsPlaceholder(temporary: boolean): AwsPlaceholder {
  return {
    accessKeyId: `${temporary ? 'ASIA' : 'AKIA'}${AWS_KEY_MARKER}${randomString(BASE32_UPPER, 10)}`,
    secretAccessKey: `${PLACEHOLDER_MARKER}${randomString(BASE62, 32)}`,
  };
}

/** Whether a credential value carries a cordon placeholder marker (this session's or another's). */
export function looksLikePlaceholder(value: string): boolean {
  return value.includes(PLACEHOLDER_MARKER) || /\bA[KS]IACORDON[A-Z2-7]{10}\b/.test(value);
}

/** A canary's decoy values (each is scanned for) and how it reads planted. */
export interface CanaryValues {
  /** Every value that identifies the canary. */
  values: string[];
  /** Content for a file. */
  fileText: string;
  /** Value for an environment variable (see canaryEnvValue). */
  envValue(name: string): string;
}

export function canaryValues(format: 'aws-credentials' | 'token' | 'netrc'): CanaryValues {
  if (format === 'aws-credentials') {
    const id = `AKIA${randomString(BASE32_UPPER, 16)}`;
    const key = randomString(BASE62, 40);
    return {
      values: [id, key],
      fileText: `[default]\naws_access_key_id = ${id}\naws_secret_access_key = ${key}\n`,
      envValue: (name) => (/KEY_ID$|ACCESS_KEY$/i.test(name) && !/SECRET/i.test(name) ? id : key),
    };
  }
  const token = `ghp_${randomString(BASE62, 36)}`;
  if (format === 'netrc') {
    return { values: [token], fileText: `machine github.com\n  login x-access-token\n  password ${token}\n`, envValue: () => token };
  }
  return { values: [token], fileText: `${token}\n`, envValue: () => token };
}
