// AWS requests: the sandbox's SDK signs with the placeholder pair; here that
// signature is checked with the placeholder secret (a request not signed by
// this session, or altered after signing, stops here), then the request is
// signed again with the real pair.
//
//   x-amz-date          must be signed and within 15 minutes of the host clock;
//                       kept as it is (the new signature uses the same time)
//   x-amz-content-sha256  kept. A hex hash is checked against the body as it
//                       streams (body-transform.ts: the end of the body is
//                       held back until it verifies). UNSIGNED-PAYLOAD and
//                       STREAMING-UNSIGNED-PAYLOAD-TRAILER pass as they are.
//                       Chunk-signed streaming (STREAMING-AWS4-HMAC-SHA256-
//                       PAYLOAD...) is refused: each chunk would need signing
//                       again. Absent (most non-S3 services): the body is read
//                       whole first (at most maxBodyBytes) and hashed.
//   x-amz-security-token  the real session token, when the real pair has one
//                       (added to the signed headers)
//   Authorization       real access key id, same scope, new signature over
//                       the headers that are actually forwarded (after the
//                       inspector's edits; hop-by-hop fields the proxy drops
//                       and stripped fields are left out)
// Presigned (query-string) requests are refused before this (credential-check.ts).

import { createHash } from 'node:crypto';
import type { Header } from '../proxy/index.ts';
import type { IssuedCredential } from './book.ts';
import {
  canonicalRequest,
  EMPTY_SHA256,
  formatAuthorization,
  parseAmzDate,
  scope,
  sign,
  signaturesEqual,
  signingKey,
  stringToSign,
  type SigV4Authorization,
} from './sigv4.ts';

export const MAX_CLOCK_SKEW_MS = 15 * 60_000;
const PASS_THROUGH_PAYLOADS = new Set(['UNSIGNED-PAYLOAD', 'STREAMING-UNSIGNED-PAYLOAD-TRAILER']);
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'upgrade', 'expect', 'transfer-encoding', 'http2-settings']);

const valuesOf = (headers: readonly Header[], name: string) => headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);

/** Whether the request carries a body, from its framing fields. */
export function declaresBody(headers: readonly Header[]): boolean {
  if (valuesOf(headers, 'transfer-encoding').length > 0) return true;
  const cl = valuesOf(headers, 'content-length')[0];
  return cl !== undefined && cl.trim() !== '0';
}

/** Whether signing needs the whole body first (SigV4 with no x-amz-content-sha256, and a body). */
export function needsWholeBody(headers: readonly Header[]): boolean {
  const auth = valuesOf(headers, 'authorization')[0];
  return auth !== undefined && auth.trim().startsWith('AWS4-HMAC-SHA256 ') && valuesOf(headers, 'x-amz-content-sha256').length === 0 && declaresBody(headers);
}

export interface ResignInput {
  credential: IssuedCredential;
  auth: SigV4Authorization;
  method: string;
  target: string;
  /** Edited in place: Authorization and x-amz-security-token. */
  headers: Header[];
  /** The whole body when it was read first; undefined otherwise. */
  body: Buffer | undefined;
  now: number;
}

/** ok: `bodySha256` is the hex hash the streamed body must have (null: nothing to check). */
export type ResignResult = { ok: true; bodySha256: string | null } | { ok: false; reason: string };

/**
 * `edit` runs between the check and the new signature: the header changes the
 * inspector makes (stripped headers, Accept-Encoding) are then what is signed.
 */
export function verifyAndResign(i: ResignInput, edit: (headers: Header[]) => void = () => {}): ResignResult {
  const { auth, headers } = i;
  const ph = i.credential.awsPlaceholder!;
  const real = i.credential.awsReal!;
  const dates = valuesOf(headers, 'x-amz-date');
  if (dates.length !== 1 || !auth.signedHeaders.includes('x-amz-date')) return { ok: false, reason: 'an AWS request must sign exactly one x-amz-date' };
  const amzDate = dates[0]!.trim();
  const t = parseAmzDate(amzDate);
  if (t === null || amzDate.slice(0, 8) !== auth.date) return { ok: false, reason: 'the x-amz-date does not match the signature scope' };
  if (Math.abs(i.now - t) > MAX_CLOCK_SKEW_MS) return { ok: false, reason: 'the request time (x-amz-date) is more than 15 minutes off' };
  if (!auth.signedHeaders.includes('host')) return { ok: false, reason: 'the signature does not cover the Host header' };
  if (auth.signedHeaders.includes('authorization') || auth.signedHeaders.includes('x-amz-security-token')) {
    return { ok: false, reason: 'the signature covers a header cordon replaces' };
  }

  const declared = valuesOf(headers, 'x-amz-content-sha256');
  if (declared.length > 1) return { ok: false, reason: 'more than one x-amz-content-sha256 header' };
  const hasBody = declaresBody(headers);
  let payloadHash: string;
  let bodySha256: string | null = null;
  if (declared.length === 0) {
    if (!hasBody) payloadHash = EMPTY_SHA256;
    else if (i.body === undefined) return { ok: false, reason: 'the request body could not be read for signing' };
    else payloadHash = createHash('sha256').update(i.body).digest('hex');
  } else {
    payloadHash = declared[0]!.trim();
    if (/^[0-9a-f]{64}$/.test(payloadHash)) {
      if (!hasBody && payloadHash !== EMPTY_SHA256) return { ok: false, reason: 'x-amz-content-sha256 does not match the (empty) body' };
      bodySha256 = hasBody ? payloadHash : null;
    } else if (payloadHash.startsWith('STREAMING-AWS4-')) {
      return { ok: false, reason: 'chunk-signed streaming uploads (STREAMING-AWS4-...-PAYLOAD) cannot be signed again; use unsigned streaming or a hashed body' };
    } else if (!PASS_THROUGH_PAYLOADS.has(payloadHash)) {
      return { ok: false, reason: 'an unknown x-amz-content-sha256 value' };
    }
  }

  // 1. The sandbox's signature, with the placeholder secret.
  const sc = scope(auth);
  const mine = canonicalRequest({ method: i.method, target: i.target, headers, signedHeaders: auth.signedHeaders, payloadHash, service: auth.service });
  if (mine === null) return { ok: false, reason: 'a signed header is missing or the query is malformed' };
  const phKey = signingKey(Buffer.from(ph.secretAccessKey, 'latin1'), auth.date, auth.region, auth.service);
  if (!signaturesEqual(sign(phKey, stringToSign(amzDate, sc, mine)), auth.signature)) {
    return { ok: false, reason: "the request's AWS signature does not verify (altered after signing, or not signed with this session's key)" };
  }

  // 2. Sign again with the real pair, over what is actually forwarded.
  for (let k = headers.length - 1; k >= 0; k--) if (headers[k]![0].toLowerCase() === 'x-amz-security-token') headers.splice(k, 1);
  edit(headers);
  if (real.sessionToken) headers.push(['X-Amz-Security-Token', real.sessionToken.toString('latin1')]);
  const dropped = new Set(HOP_BY_HOP);
  for (const v of valuesOf(headers, 'connection')) for (const tok of v.split(',')) dropped.add(tok.trim().toLowerCase());
  const present = new Set(headers.map(([n]) => n.toLowerCase()));
  const signed = auth.signedHeaders.filter((h) => !dropped.has(h) && present.has(h));
  if (!signed.includes('host') || !signed.includes('x-amz-date')) return { ok: false, reason: 'the request could not be signed again' };
  if (real.sessionToken) signed.push('x-amz-security-token');
  signed.sort();
  const theirs = canonicalRequest({ method: i.method, target: i.target, headers, signedHeaders: signed, payloadHash, service: auth.service });
  if (theirs === null) return { ok: false, reason: 'the request could not be signed again' };
  const realKey = signingKey(real.secretAccessKey, auth.date, auth.region, auth.service);
  let signature: string;
  try {
    signature = sign(realKey, stringToSign(amzDate, sc, theirs));
  } finally {
    realKey.fill(0);
    phKey.fill(0);
  }
  const value = formatAuthorization({ ...auth, accessKeyId: real.accessKeyId.toString('latin1'), signedHeaders: signed, signature });
  const at = headers.findIndex(([n]) => n.toLowerCase() === 'authorization');
  headers[at] = [headers[at]![0], value];
  return { ok: true, bodySha256 };
}
