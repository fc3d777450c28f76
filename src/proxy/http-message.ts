// Writing HTTP/1.x heads back out after the strict parser judged them: the
// request the upstream gets, the response the agent gets. Hop-by-hop fields
// are dropped (RFC 9110 7.6.1) and framing is stated once, by the proxy.
// Also: checking the header edits an inspector made.

import type { Header, RequestHead, ResponseHead } from './http-head.ts';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Never forwarded, whatever Connection says. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'upgrade',
  'http2-settings',
  'expect',
]);
const FRAMING = new Set(['content-length', 'transfer-encoding']);

export type BodyMode =
  /** No body. */
  | 'none'
  /** The received framing, forwarded byte for byte (Content-Length or chunked). */
  | 'verbatim'
  /** The decoded body, re-framed chunked (after a transform). */
  | 'chunked'
  /** The decoded body after length-preserving transforms, under the received Content-Length (requests only). */
  | 'length'
  /** The decoded body, delimited by closing the connection (responses only). */
  | 'close';

function forwardable(headers: readonly Header[], connectionTokens: readonly string[], keepFraming: boolean): Header[] {
  const named = new Set(connectionTokens.map((t) => t.toLowerCase()));
  return headers.filter(([n]) => {
    const l = n.toLowerCase();
    if (HOP_BY_HOP.has(l) || named.has(l)) return false;
    if (FRAMING.has(l)) return keepFraming;
    return true;
  });
}

function serialize(startLine: string, headers: readonly Header[]): Buffer {
  let s = `${startLine}\r\n`;
  for (const [n, v] of headers) s += `${n}: ${v}\r\n`;
  return Buffer.from(`${s}\r\n`, 'latin1');
}

export interface UpstreamRequestOptions {
  /** Origin-form target ("/path?query"), or "*" for OPTIONS *. */
  target: string;
  /** Added when the request carried no Host (HTTP/1.0). */
  host: string;
  body: 'none' | 'verbatim' | 'chunked' | 'length';
  websocket: boolean;
}

/** The request head sent upstream (headers as edited by inspectors). */
export function upstreamRequestHead(req: RequestHead, headers: readonly Header[], o: UpstreamRequestOptions): Buffer {
  const out = forwardable(headers, req.connectionTokens, o.body === 'verbatim' || o.body === 'length');
  if (!out.some(([n]) => n.toLowerCase() === 'host')) out.unshift(['Host', o.host]);
  if (o.body === 'chunked') out.push(['Transfer-Encoding', 'chunked']);
  if (o.websocket && req.upgrade !== null) out.push(['Connection', 'Upgrade'], ['Upgrade', req.upgrade]);
  return serialize(`${req.method} ${o.target} HTTP/${req.version}`, out);
}

export interface ClientResponseOptions {
  body: BodyMode;
  /** The proxy closes the agent's connection after this response. */
  close: boolean;
  /** 101 to a WebSocket upgrade: keep Connection/Upgrade. */
  upgrade: boolean;
}

/** The response head sent to the agent. */
export function clientResponseHead(res: ResponseHead, headers: readonly Header[], o: ClientResponseOptions): Buffer {
  const connectionTokens = headers
    .filter(([n]) => n.toLowerCase() === 'connection')
    .flatMap(([, v]) => v.split(','))
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '' && t !== 'upgrade');
  // 'none' keeps Content-Length: a HEAD or 304 response states the size of a body it does not carry.
  const out = forwardable(headers, o.upgrade ? [] : connectionTokens, o.body === 'verbatim' || o.body === 'none');
  if (o.body === 'none') {
    for (let i = out.length - 1; i >= 0; i--) if (out[i]![0].toLowerCase() === 'transfer-encoding') out.splice(i, 1);
  }
  if (o.body === 'chunked') out.push(['Transfer-Encoding', 'chunked']);
  if (o.upgrade) {
    const up = headers.find(([n]) => n.toLowerCase() === 'upgrade');
    out.push(['Connection', 'Upgrade']);
    if (up) out.push(['Upgrade', up[1]]);
  } else if (res.status >= 200 && o.close) out.push(['Connection', 'close']);
  return serialize(`HTTP/1.1 ${res.status} ${res.reason}`, out);
}

/** A 1xx interim response, relayed with `headers` (as inspected) minus hop-by-hop fields. */
export function interimHead(res: ResponseHead, headers: readonly Header[] = res.headers): Buffer {
  return serialize(`HTTP/1.1 ${res.status} ${res.reason}`, forwardable(headers, [], false));
}

/** The value of the one field with this name, or undefined (several: the first). */
export function headerValue(headers: readonly Header[], name: string): string | undefined {
  const l = name.toLowerCase();
  return headers.find(([n]) => n.toLowerCase() === l)?.[1];
}

export function connectionTokens(headers: readonly Header[]): string[] {
  return headers
    .filter(([n]) => n.toLowerCase() === 'connection')
    .flatMap(([, v]) => v.split(','))
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '');
}

/** Header names only, lower-cased, for audit records: values can hold secrets. */
export function headerNames(headers: readonly Header[]): string[] {
  return [...new Set(headers.map(([n]) => n.toLowerCase()))];
}

const GUARDED = ['host', 'content-length', 'transfer-encoding'];

function guardedSnapshot(headers: readonly Header[]): string {
  return JSON.stringify(GUARDED.map((g) => headers.filter(([n]) => n.toLowerCase() === g).map(([, v]) => v)));
}

/**
 * Check headers an inspector may have edited: still an array of [name, value]
 * pairs, names are tokens, values carry no CR, LF or NUL, and Host and the
 * framing fields are exactly as before. Returns the problem or null.
 */
export function inspectedHeadersProblem(before: string, headers: unknown): string | null {
  if (!Array.isArray(headers)) return 'headers are no longer a list';
  for (const h of headers) {
    if (!Array.isArray(h) || h.length !== 2 || typeof h[0] !== 'string' || typeof h[1] !== 'string') return 'a header is not a [name, value] pair';
    if (!TOKEN.test(h[0])) return `an invalid header name from an inspector`;
    if (!FIELD_VALUE.test(h[1])) return `an invalid value for ${h[0]} from an inspector`;
  }
  if (guardedSnapshot(headers as Header[]) !== before) return 'an inspector changed Host or the message framing';
  return null;
}

export function snapshotGuarded(headers: readonly Header[]): string {
  return guardedSnapshot(headers);
}

/**
 * Check a request target an inspector may have edited: only the query may
 * change, and it must stay printable ASCII without spaces or "#". Returns the
 * problem or null.
 */
export function inspectedTargetProblem(before: string, after: unknown): string | null {
  if (after === before) return null;
  if (typeof after !== 'string') return 'the request target is no longer a string';
  const pathOf = (t: string) => (t.includes('?') ? t.slice(0, t.indexOf('?')) : t);
  if (pathOf(after) !== pathOf(before)) return 'an inspector changed the request path';
  if (!/^[\x21-\x7e]*$/.test(after) || after.includes('#')) return 'an invalid request target from an inspector';
  return null;
}
