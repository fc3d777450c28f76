// AWS key pairs: reading the real one from its vault value, and writing a
// (placeholder or canary) pair as an aws credentials file profile.
//
// The vault value of a kind "aws" secret is either JSON
//   {"accessKeyId": "...", "secretAccessKey": "...", "sessionToken": "..."?}
// or the text of an aws credentials (or config) file, whose first profile is
// used. Errors name the secret, never its value.

import { CordonError } from '../errors.ts';

/** A real key pair, kept as buffers so close() can wipe them. */
export interface AwsKeyPair {
  accessKeyId: Buffer;
  secretAccessKey: Buffer;
  sessionToken: Buffer | null;
}

const KEY_ID = /^[A-Z0-9]{16,128}$/;

function fail(secret: string, why: string): never {
  throw new CordonError('CORDON_SECRET', `secret "${secret}" is not a usable AWS key pair: ${why}`, {
    hint: 'store JSON {"accessKeyId","secretAccessKey","sessionToken"?} or the text of an aws credentials file',
    detail: { secretName: secret },
  });
}

function fromFields(secret: string, id: unknown, key: unknown, token: unknown): AwsKeyPair {
  if (typeof id !== 'string' || !KEY_ID.test(id)) fail(secret, 'the access key id is missing or malformed');
  if (typeof key !== 'string' || key.length < 16 || /[\s\0]/.test(key)) fail(secret, 'the secret access key is missing or malformed');
  if (token !== undefined && token !== null && (typeof token !== 'string' || token.length === 0 || /[\s\0]/.test(token))) {
    fail(secret, 'the session token is malformed');
  }
  return {
    accessKeyId: Buffer.from(id, 'latin1'),
    secretAccessKey: Buffer.from(key, 'latin1'),
    sessionToken: typeof token === 'string' ? Buffer.from(token, 'latin1') : null,
  };
}

/** The first profile of an INI credentials file: its keys, lower-cased. */
function firstProfile(text: string): Map<string, string> | null {
  let inProfile = false;
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[')) {
      if (inProfile) break;
      inProfile = true;
      continue;
    }
    if (!inProfile) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    out.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  }
  return inProfile ? out : null;
}

export function parseAwsSecret(secret: string, value: Buffer): AwsKeyPair {
  const text = value.toString('utf8').trim();
  if (text.startsWith('{')) {
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch {
      fail(secret, 'the JSON does not parse');
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) fail(secret, 'the JSON is not an object');
    const o = obj as Record<string, unknown>;
    return fromFields(secret, o.accessKeyId, o.secretAccessKey, o.sessionToken);
  }
  const p = firstProfile(text);
  if (!p) fail(secret, 'neither JSON nor an INI file with a [profile]');
  return fromFields(secret, p.get('aws_access_key_id'), p.get('aws_secret_access_key'), p.get('aws_session_token'));
}

/** One profile of an aws credentials file. */
export function awsProfileText(profile: string, accessKeyId: string, secretAccessKey: string): string {
  return `[${profile}]\naws_access_key_id = ${accessKeyId}\naws_secret_access_key = ${secretAccessKey}\n`;
}
