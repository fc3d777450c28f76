// AWS Signature Version 4, header form (AWS4-HMAC-SHA256), from the spec:
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
//
//   canonical request = METHOD \n URI \n QUERY \n HEADERS \n SIGNED-HEADERS \n PAYLOAD-HASH
//   string to sign    = AWS4-HMAC-SHA256 \n X-AMZ-DATE \n SCOPE \n hex(sha256(canonical request))
//   signing key       = HMAC chain "AWS4"+secret -> date -> region -> service -> "aws4_request"
//
// URI: S3 signs the path as sent; every other service signs it normalised
// (".", ".." and empty segments removed) and URI-encoded once more. QUERY:
// each name and value decoded, re-encoded strictly (RFC 3986 unreserved kept,
// everything else %XX upper-case), sorted by name then value. HEADERS: the
// signed ones, lower-cased, values trimmed with inner runs of spaces folded,
// repeated fields joined by ",". Pure: no I/O.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface SigV4Authorization {
  accessKeyId: string;
  /** YYYYMMDD */
  date: string;
  region: string;
  service: string;
  /** Lower-case names, in the order signed. */
  signedHeaders: string[];
  /** Lower-case hex. */
  signature: string;
}

const CREDENTIAL = /^([A-Za-z0-9]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request$/;

/** Parse an Authorization value; null when it is not (well-formed) SigV4. */
export function parseAuthorization(value: string): SigV4Authorization | null {
  const v = value.trim();
  if (!v.startsWith(`${ALGORITHM} `)) return null;
  const fields = new Map<string, string>();
  for (const part of v.slice(ALGORITHM.length + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) return null;
    const k = part.slice(0, eq).trim();
    if (fields.has(k)) return null;
    fields.set(k, part.slice(eq + 1).trim());
  }
  if (fields.size !== 3) return null;
  const cred = CREDENTIAL.exec(fields.get('Credential') ?? '');
  const signed = fields.get('SignedHeaders') ?? '';
  const sig = fields.get('Signature') ?? '';
  if (!cred || !/^[a-z0-9-]+(;[a-z0-9-]+)*$/.test(signed) || !/^[0-9a-f]{64}$/.test(sig)) return null;
  return { accessKeyId: cred[1]!, date: cred[2]!, region: cred[3]!, service: cred[4]!, signedHeaders: signed.split(';'), signature: sig };
}

export function formatAuthorization(a: SigV4Authorization): string {
  return `${ALGORITHM} Credential=${a.accessKeyId}/${scope(a)}, SignedHeaders=${a.signedHeaders.join(';')}, Signature=${a.signature}`;
}

export function scope(a: { date: string; region: string; service: string }): string {
  return `${a.date}/${a.region}/${a.service}/aws4_request`;
}

/** RFC 3986 strict encoding: unreserved characters kept, every other byte %XX. */
export function uriEncode(s: string, keepSlash = false): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function canonicalUri(rawPath: string, service: string): string {
  const path = rawPath === '' ? '/' : rawPath;
  if (service === 's3') return path;
  const segs: string[] = [];
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') segs.pop();
    else segs.push(seg);
  }
  const normal = `${path.startsWith('/') ? '/' : ''}${segs.join('/')}${segs.length > 0 && path.endsWith('/') ? '/' : ''}`;
  return uriEncode(normal, true);
}

/** The canonical query string, or null when the query has a malformed escape. */
export function canonicalQuery(rawQuery: string): string | null {
  if (rawQuery === '') return '';
  const pairs: Array<[string, string]> = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? '' : part.slice(eq + 1);
    try {
      pairs.push([uriEncode(decodeURIComponent(k)), uriEncode(decodeURIComponent(v))]);
    } catch {
      return null;
    }
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** Canonical header lines for the signed names, or null when a signed header is absent. */
export function canonicalHeaders(headers: ReadonlyArray<readonly [string, string]>, signed: readonly string[]): string | null {
  let out = '';
  for (const name of signed) {
    const values = headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v.trim().replace(/ {2,}/g, ' '));
    if (values.length === 0) return null;
    out += `${name}:${values.join(',')}\n`;
  }
  return out;
}

export interface CanonicalInput {
  method: string;
  /** Origin-form target as sent: path and optional query. */
  target: string;
  headers: ReadonlyArray<readonly [string, string]>;
  signedHeaders: readonly string[];
  payloadHash: string;
  service: string;
}

export function canonicalRequest(i: CanonicalInput): string | null {
  const q = i.target.indexOf('?');
  const path = q >= 0 ? i.target.slice(0, q) : i.target;
  const query = canonicalQuery(q >= 0 ? i.target.slice(q + 1) : '');
  const headers = canonicalHeaders(i.headers, i.signedHeaders);
  if (query === null || headers === null) return null;
  return [i.method, canonicalUri(path, i.service), query, headers, i.signedHeaders.join(';'), i.payloadHash].join('\n');
}

export function stringToSign(amzDate: string, sc: string, canonical: string): string {
  return [ALGORITHM, amzDate, sc, createHash('sha256').update(canonical, 'utf8').digest('hex')].join('\n');
}

export function signingKey(secret: Buffer, date: string, region: string, service: string): Buffer {
  const kSecret = Buffer.concat([Buffer.from('AWS4', 'latin1'), secret]);
  try {
    const kDate = createHmac('sha256', kSecret).update(date).digest();
    const kRegion = createHmac('sha256', kDate).update(region).digest();
    const kService = createHmac('sha256', kRegion).update(service).digest();
    return createHmac('sha256', kService).update('aws4_request').digest();
  } finally {
    kSecret.fill(0);
  }
}

export function sign(key: Buffer, toSign: string): string {
  return createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
}

export function signaturesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'latin1');
  const y = Buffer.from(b, 'latin1');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** x-amz-date must be YYYYMMDDTHHMMSSZ; its time in ms, or null. */
export function parseAmzDate(v: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(v);
  if (!m) return null;
  const t = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return Number.isNaN(t) ? null : t;
}
