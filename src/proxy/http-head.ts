// The proxy's one strict HTTP/1.x parser for the bytes before a body: request
// heads from the sandbox, response heads from upstream, and the chunked
// framing in between. Pure: no I/O.
//
// Where HTTP implementations disagree, this parser refuses rather than picks:
// that is what closes request smuggling (CL.TE, TE.CL, TE.TE), Host
// confusion and header-injection tricks. Refusals on the request side carry
// the status the proxy answers with: 400 (malformed or ambiguous), 417
// (unknown expectation), 431 (head too large), 501 (unsupported transfer
// coding), 505 (unsupported HTTP version).
//
// Request refusals: Content-Length together with Transfer-Encoding; two
// Content-Length fields (equal or not) or a list value; Transfer-Encoding
// other than exactly one field whose value is exactly "chunked" (`chunked,
// gzip`, `gzip, chunked`, `xchunked`, trailing or tab whitespace); any
// Transfer-Encoding on HTTP/1.0; a missing (HTTP/1.1) or duplicate Host, or
// one that names another host than an absolute-form or CONNECT target;
// obs-fold; bare LF or CR; NUL or other control bytes; whitespace before a
// colon; non-token names and methods; malformed request lines; HTTP/0.9;
// Connection naming Host or framing fields; names like Transfer_Encoding
// that CGI gateways would read as those fields. An HTTP/2 prior-knowledge preface
// is reported as `h2-preface`; h2c and WebSocket upgrades are reported.

import { parseAbsoluteUri, parseAuthority, sameIdentity, type Authority } from './identity.ts';

export type RequestStatus = 400 | 417 | 431 | 501 | 505;
export type TargetForm = 'origin' | 'absolute' | 'authority' | 'asterisk';
export type Framing = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' };
export type Header = [name: string, value: string];

export interface RequestHead {
  method: string;
  target: string;
  targetForm: TargetForm;
  version: '1.0' | '1.1';
  /** As received: original name case, value without surrounding whitespace, order kept. */
  headers: Header[];
  /** Bytes of the head including the final CRLF CRLF (and any leading CRLFs skipped). */
  headerBytes: number;
  framing: Framing;
  /** The Host header, parsed and normalised (null only on HTTP/1.0 without Host). */
  host: Authority | null;
  /** The authority of an absolute-form or CONNECT target. */
  targetAuthority: Authority | null;
  expectContinue: boolean;
  /** The Upgrade header value, or null. */
  upgrade: string | null;
  /** Connection header tokens, lower-case. */
  connectionTokens: string[];
  /** Upgrade to h2c, or an HTTP2-Settings header. */
  h2c: boolean;
  websocket: boolean;
}

export type RequestHeadResult =
  | { kind: 'need-more' }
  | ({ kind: 'parsed' } & RequestHead)
  /** `PRI * HTTP/2.0`: the client speaks HTTP/2 with prior knowledge. */
  | { kind: 'h2-preface' }
  | { kind: 'invalid'; reason: string; status: RequestStatus };

export interface HeadLimits {
  /** Largest head accepted (default 64 KiB). */
  maxHeadBytes?: number;
  /** Most header fields accepted (default 100). */
  maxHeaders?: number;
}

export const DEFAULT_MAX_HEAD_BYTES = 64 * 1024;
export const DEFAULT_MAX_HEADERS = 100;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CR = 13;
const LF = 10;

// ---------------------------------------------------------------------------
// Lines

type Lines = { kind: 'lines'; lines: string[]; headerBytes: number } | { kind: 'need-more' } | { kind: 'bad'; reason: string; status: 400 | 431 };

/**
 * Split a head into lines, requiring CRLF everywhere and refusing NUL and other
 * control bytes except HTAB. Leading empty lines are skipped (RFC 9112 2.2).
 */
function splitHead(bytes: Uint8Array, maxHeadBytes: number, skipLeadingCrlf: boolean): Lines {
  const lines: string[] = [];
  let i = 0;
  if (skipLeadingCrlf) {
    while (i + 1 < bytes.length && bytes[i] === CR && bytes[i + 1] === LF) i += 2;
    if (i + 1 === bytes.length && bytes[i] === CR) return i >= maxHeadBytes ? tooLarge() : { kind: 'need-more' };
  }
  let line = '';
  for (; i < bytes.length; i++) {
    if (i >= maxHeadBytes) return tooLarge();
    const c = bytes[i]!;
    if (c === CR) {
      if (i + 1 >= bytes.length) return { kind: 'need-more' };
      if (bytes[i + 1] !== LF) return { kind: 'bad', reason: 'a bare CR in the head', status: 400 };
      i++;
      if (line === '') return { kind: 'lines', lines, headerBytes: i + 1 };
      lines.push(line);
      line = '';
      continue;
    }
    if (c === LF) return { kind: 'bad', reason: 'a line ends with a bare LF (CRLF is required)', status: 400 };
    if (c === 0) return { kind: 'bad', reason: 'a NUL byte in the head', status: 400 };
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return { kind: 'bad', reason: 'a control byte in the head', status: 400 };
    line += String.fromCharCode(c);
  }
  return bytes.length >= maxHeadBytes ? tooLarge() : { kind: 'need-more' };
}

function tooLarge(): { kind: 'bad'; reason: string; status: 431 } {
  return { kind: 'bad', reason: 'the head is too large', status: 431 };
}

type FieldsResult = { ok: true; headers: Header[] } | { ok: false; reason: string; status: 400 | 431 };

/** Parse header (or trailer) lines. */
function parseFields(lines: readonly string[], maxHeaders: number): FieldsResult {
  if (lines.length > maxHeaders) return { ok: false, reason: 'too many header fields', status: 431 };
  const headers: Header[] = [];
  for (const line of lines) {
    if (line[0] === ' ' || line[0] === '\t') return { ok: false, reason: 'obsolete line folding (obs-fold)', status: 400 };
    const colon = line.indexOf(':');
    if (colon <= 0) return { ok: false, reason: 'a header line without a name and ":"', status: 400 };
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) {
      const reason = /[ \t]$/.test(name) ? 'whitespace before ":" in a header' : `an invalid header name`;
      return { ok: false, reason, status: 400 };
    }
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    headers.push([name, value]);
  }
  return { ok: true, headers };
}

function all(headers: readonly Header[], name: string): Header[] {
  return headers.filter(([n]) => n.toLowerCase() === name);
}

/** Comma-separated list elements, trimmed, empty elements dropped (RFC 9110 5.6.1). */
function listValues(values: readonly string[]): string[] {
  return values.flatMap((v) => v.split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

/** Content-Length: one field, digits only. */
function contentLength(fields: readonly Header[]): { ok: true; length: number | null } | { ok: false; reason: string } {
  if (fields.length === 0) return { ok: true, length: null };
  if (fields.length > 1) return { ok: false, reason: 'more than one Content-Length field' };
  const v = fields[0]![1];
  if (!/^[0-9]{1,15}$/.test(v)) return { ok: false, reason: 'an invalid Content-Length value' };
  return { ok: true, length: Number(v) };
}

// ---------------------------------------------------------------------------
// Requests

function invalid(reason: string, status: RequestStatus = 400): RequestHeadResult {
  return { kind: 'invalid', reason, status };
}

const H2_PREFACE_LINE = 'PRI * HTTP/2.0';
const SENSITIVE = new Set(['content-length', 'transfer-encoding', 'host']);

/** Parse a request head from the start of `bytes`. */
export function parseRequestHead(bytes: Uint8Array, limits: HeadLimits = {}): RequestHeadResult {
  const maxHeadBytes = limits.maxHeadBytes ?? DEFAULT_MAX_HEAD_BYTES;
  const split = splitHead(bytes, maxHeadBytes, true);
  if (split.kind === 'need-more') {
    if (startsWithText(bytes, `${H2_PREFACE_LINE}\r\n`)) return { kind: 'h2-preface' };
    return split;
  }
  if (split.kind === 'bad') return invalid(split.reason, split.status);
  const [requestLine, ...fieldLines] = split.lines;
  if (requestLine === undefined) return invalid('an empty request');
  if (requestLine === H2_PREFACE_LINE) return { kind: 'h2-preface' };

  const parts = requestLine.split(' ');
  if (parts.length === 2 && TOKEN.test(parts[0]!)) return invalid('HTTP/0.9 requests are not supported');
  if (parts.length !== 3 || parts.some((p) => p === '')) return invalid('a malformed request line');
  const [method, target, versionText] = parts as [string, string, string];
  if (!TOKEN.test(method)) return invalid('an invalid method');
  const vm = /^HTTP\/([0-9])\.([0-9])$/.exec(versionText);
  if (!vm) return invalid('a malformed HTTP version');
  if (vm[1] !== '1' || (vm[2] !== '0' && vm[2] !== '1')) return invalid(`HTTP/${vm[1]}.${vm[2]} is not supported`, 505);
  const version = vm[2] === '1' ? '1.1' : '1.0';
  if (/[^\x21-\x7e]/.test(target)) return invalid('the request target has a control, space, tab or non-ASCII character');
  if (target.includes('#')) return invalid('the request target has a fragment ("#")');

  let targetForm: TargetForm;
  let targetAuthority: Authority | null = null;
  let defaultPortForHost: number | null = null;
  if (method === 'CONNECT') {
    const a = parseAuthority(target, null);
    if (!a.ok) return invalid(`CONNECT target: ${a.reason}`);
    if (!a.explicitPort) return invalid('a CONNECT target needs a port');
    targetForm = 'authority';
    targetAuthority = strip(a);
  } else if (target === '*') {
    if (method !== 'OPTIONS') return invalid('"*" is a target for OPTIONS only');
    targetForm = 'asterisk';
  } else if (target.startsWith('/')) {
    targetForm = 'origin';
  } else if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(target)) {
    const u = parseAbsoluteUri(target);
    if (!u.ok) return invalid(`absolute-form target: ${u.reason}`);
    targetForm = 'absolute';
    targetAuthority = u.authority;
    defaultPortForHost = u.authority.port;
  } else {
    return invalid('an unrecognised request target');
  }

  const fields = parseFields(fieldLines, limits.maxHeaders ?? DEFAULT_MAX_HEADERS);
  if (!fields.ok) return invalid(fields.reason, fields.status);
  const headers = fields.headers;
  // CGI-style gateways turn "_" into "-": Transfer_Encoding would become a second framing field.
  const lookalike = headers.find(([n]) => n.includes('_') && SENSITIVE.has(n.toLowerCase().replaceAll('_', '-')));
  if (lookalike) return invalid(`the header name ${lookalike[0]} imitates a framing or Host field`);

  // Host
  const hostFields = all(headers, 'host');
  if (hostFields.length > 1) return invalid('more than one Host field');
  if (hostFields.length === 0 && version === '1.1') return invalid('no Host field (required in HTTP/1.1)');
  let host: Authority | null = null;
  if (hostFields.length === 1) {
    const h = parseAuthority(hostFields[0]![1], null);
    if (!h.ok) return invalid(`Host: ${h.reason}`);
    host = strip(h);
  }
  if (host && targetAuthority) {
    // An absolute URI always has a port (explicit or by scheme); so does the Host then.
    const hostWithPort = { ...host, port: host.port ?? defaultPortForHost };
    if (!sameIdentity(targetAuthority, hostWithPort)) return invalid('the Host field names another host than the request target');
  }

  // Framing
  const cl = contentLength(all(headers, 'content-length'));
  if (!cl.ok) return invalid(cl.reason);
  const te = all(headers, 'transfer-encoding');
  let framing: Framing = cl.length === null ? { kind: 'none' } : { kind: 'length', length: cl.length };
  if (te.length > 0) {
    if (cl.length !== null) return invalid('both Content-Length and Transfer-Encoding');
    if (version === '1.0') return invalid('Transfer-Encoding in an HTTP/1.0 request');
    if (te.length > 1) return invalid('more than one Transfer-Encoding field');
    const problem = transferCodingProblem(fieldLines, te[0]![1]);
    if (problem) return invalid(problem.reason, problem.status);
    framing = { kind: 'chunked' };
  }
  if (method === 'CONNECT' && !(framing.kind === 'none' || (framing.kind === 'length' && framing.length === 0))) {
    return invalid('a CONNECT request with a body');
  }

  // Expect
  const expect = all(headers, 'expect');
  if (expect.length > 1) return invalid('more than one Expect field');
  let expectContinue = false;
  if (expect.length === 1) {
    if (expect[0]![1].toLowerCase() !== '100-continue') return invalid('an unsupported expectation', 417);
    expectContinue = true;
  }

  // Connection and Upgrade
  const connectionTokens = listValues(all(headers, 'connection').map(([, v]) => v)).map((t) => t.toLowerCase());
  if (connectionTokens.some((t) => !TOKEN.test(t))) return invalid('an invalid Connection token');
  if (connectionTokens.some((t) => t === 'host' || t === 'content-length' || t === 'transfer-encoding')) {
    return invalid('Connection names Host or a framing field');
  }
  const up = all(headers, 'upgrade');
  if (up.length > 1) return invalid('more than one Upgrade field');
  const upgrade = up.length === 1 ? up[0]![1] : null;
  const protocols = upgrade === null ? [] : listValues([upgrade]).map((p) => p.split('/')[0]!.toLowerCase());
  const h2c = protocols.includes('h2c') || all(headers, 'http2-settings').length > 0;
  const websocket = protocols.includes('websocket');

  return {
    kind: 'parsed',
    method,
    target,
    targetForm,
    version,
    headers,
    headerBytes: split.headerBytes,
    framing,
    host,
    targetAuthority,
    expectContinue,
    upgrade,
    connectionTokens,
    h2c,
    websocket,
  };
}

function strip(a: { ok: true } & Authority): Authority {
  return { host: a.host, port: a.port, explicitPort: a.explicitPort, kind: a.kind };
}

/**
 * Transfer-Encoding must be exactly "chunked" (any case), with at most spaces
 * before it: trailing whitespace and tabs are where parsers disagree.
 */
function transferCodingProblem(rawLines: readonly string[], value: string): { reason: string; status: RequestStatus } | null {
  const raw = rawLines.find((l) => l.slice(0, l.indexOf(':')).toLowerCase() === 'transfer-encoding')!;
  const rawValue = raw.slice(raw.indexOf(':') + 1);
  const codings = listValues([value]).map((c) => c.toLowerCase());
  if (codings.length === 1 && codings[0] === 'chunked') {
    if (!/^ *chunked$/i.test(rawValue)) return { reason: 'odd whitespace in Transfer-Encoding', status: 400 };
    return null;
  }
  const at = codings.indexOf('chunked');
  if (at >= 0 && at !== codings.length - 1) return { reason: '"chunked" is not the final transfer coding', status: 400 };
  if (codings.filter((c) => c === 'chunked').length > 1) return { reason: '"chunked" applied twice', status: 400 };
  if (codings.some((c) => !TOKEN.test(c.split(';')[0]!.trim()))) return { reason: 'an invalid transfer coding', status: 400 };
  return { reason: 'only the "chunked" transfer coding is supported', status: 501 };
}

function startsWithText(bytes: Uint8Array, text: string): boolean {
  if (bytes.length < text.length) return false;
  for (let i = 0; i < text.length; i++) if (bytes[i] !== text.charCodeAt(i)) return false;
  return true;
}

// ---------------------------------------------------------------------------
// Incremental reading

export type HeadReadResult =
  | { kind: 'need-more' }
  | { kind: 'complete'; head: Uint8Array; rest: Uint8Array }
  | { kind: 'invalid'; reason: string; status: 400 | 431 };

/**
 * Accumulates bytes until a head is complete, scanning each byte once, so a
 * client dripping one byte at a time costs linear work. Feed the complete
 * head to parseRequestHead/parseResponseHead; `rest` is the start of the body.
 * After a final answer ('complete' or 'invalid') the reader is spent: push()
 * returns that answer again and ignores its input.
 */
export class HeadReader {
  private buf = new Uint8Array(0);
  private scanned = 0;
  private sawLine = false;
  private lineStart = 0;
  private readonly max: number;
  private final: HeadReadResult | null = null;
  constructor(maxHeadBytes = DEFAULT_MAX_HEAD_BYTES) {
    this.max = maxHeadBytes;
  }
  push(chunk: Uint8Array): HeadReadResult {
    if (this.final) return this.final;
    const next = new Uint8Array(this.buf.length + chunk.length);
    next.set(this.buf);
    next.set(chunk, this.buf.length);
    this.buf = next;
    for (; this.scanned < this.buf.length; this.scanned++) {
      const i = this.scanned;
      if (i >= this.max) return (this.final = { kind: 'invalid', reason: 'the head is too large', status: 431 });
      const c = this.buf[i]!;
      if (c === LF) {
        if (i === 0 || this.buf[i - 1] !== CR) return (this.final = { kind: 'invalid', reason: 'a line ends with a bare LF (CRLF is required)', status: 400 });
        const empty = i - 1 === this.lineStart;
        this.lineStart = i + 1;
        if (empty && this.sawLine) {
          this.final = { kind: 'complete', head: this.buf.subarray(0, i + 1), rest: this.buf.subarray(i + 1) };
          return this.final;
        }
        if (!empty) this.sawLine = true;
      } else if (i > 0 && this.buf[i - 1] === CR) {
        return (this.final = { kind: 'invalid', reason: 'a bare CR in the head', status: 400 });
      } else if (c === 0) {
        return (this.final = { kind: 'invalid', reason: 'a NUL byte in the head', status: 400 });
      }
    }
    return { kind: 'need-more' };
  }
}

// ---------------------------------------------------------------------------
// Responses

export type ResponseFraming = Framing | { kind: 'close' };

export interface ResponseHead {
  version: '1.0' | '1.1';
  status: number;
  reason: string;
  headers: Header[];
  headerBytes: number;
  /** How the body ends: none, a length, chunked, or the connection closing. */
  framing: ResponseFraming;
  /** 1xx: another head follows (after 101, the connection switches protocols). */
  informational: boolean;
  /** 101 Switching Protocols, or a 2xx answer to CONNECT: raw bytes follow. */
  tunnel: boolean;
}

export type ResponseHeadResult = { kind: 'need-more' } | ({ kind: 'parsed' } & ResponseHead) | { kind: 'invalid'; reason: string };

/** Parse an upstream response head. `requestMethod` decides HEAD and CONNECT framing. */
export function parseResponseHead(bytes: Uint8Array, requestMethod: string, limits: HeadLimits = {}): ResponseHeadResult {
  const split = splitHead(bytes, limits.maxHeadBytes ?? DEFAULT_MAX_HEAD_BYTES, false);
  if (split.kind === 'need-more') return split;
  if (split.kind === 'bad') return { kind: 'invalid', reason: split.reason };
  const [statusLine, ...fieldLines] = split.lines;
  const m = /^HTTP\/1\.([01]) ([0-9]{3})(?: ([\t\x20-\x7e\x80-\xff]*))?$/.exec(statusLine ?? '');
  if (!m) return { kind: 'invalid', reason: 'a malformed status line' };
  const status = Number(m[2]);
  if (status < 100) return { kind: 'invalid', reason: 'a status code below 100' };
  const fields = parseFields(fieldLines, limits.maxHeaders ?? DEFAULT_MAX_HEADERS);
  if (!fields.ok) return { kind: 'invalid', reason: fields.reason };
  const headers = fields.headers;
  const cl = contentLength(all(headers, 'content-length'));
  const te = all(headers, 'transfer-encoding');
  const informational = status < 200;
  const tunnel = status === 101 || (requestMethod === 'CONNECT' && status >= 200 && status < 300);

  let framing: ResponseFraming;
  if (informational || tunnel || requestMethod === 'HEAD' || status === 204 || status === 304) {
    framing = { kind: 'none' };
  } else {
    if (!cl.ok) return { kind: 'invalid', reason: cl.reason };
    if (te.length > 0 && cl.length !== null) return { kind: 'invalid', reason: 'both Content-Length and Transfer-Encoding' };
    if (te.length > 1) return { kind: 'invalid', reason: 'more than one Transfer-Encoding field' };
    if (te.length === 1) {
      const codings = listValues([te[0]![1]]).map((c) => c.toLowerCase());
      const at = codings.indexOf('chunked');
      if (at >= 0 && at !== codings.length - 1) return { kind: 'invalid', reason: '"chunked" is not the final transfer coding' };
      framing = at === codings.length - 1 ? { kind: 'chunked' } : { kind: 'close' };
    } else framing = cl.length === null ? { kind: 'close' } : { kind: 'length', length: cl.length };
  }
  return {
    kind: 'parsed',
    version: m[1] === '1' ? '1.1' : '1.0',
    status,
    reason: m[3] ?? '',
    headers,
    headerBytes: split.headerBytes,
    framing,
    informational,
    tunnel,
  };
}

// ---------------------------------------------------------------------------
// Chunked bodies

export type ChunkEvent =
  | { kind: 'chunk'; size: number; extensions: string }
  /** Body bytes: a view into the pushed input, not a copy. */
  | { kind: 'data'; bytes: Uint8Array }
  | { kind: 'trailers'; headers: Header[] }
  /** The message ended `consumed` bytes into the last pushed input; the rest is the next message. */
  | { kind: 'end'; consumed: number }
  | { kind: 'error'; reason: string };

export interface ChunkedLimits {
  /** Longest chunk-size line, extensions included (default 4096). */
  maxLineBytes?: number;
  /** Largest trailer section (default 16 KiB). */
  maxTrailerBytes?: number;
}

export interface ChunkedStreamParser {
  /** Feed the next bytes; events describe them in order. After 'end' or 'error' nothing more is read. */
  push(input: Uint8Array): ChunkEvent[];
  readonly state: 'size' | 'data' | 'data-crlf' | 'trailer' | 'done' | 'error';
  /** Body bytes seen so far. */
  readonly bodyBytes: number;
}

const CHUNK_EXT = /^(?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"))?)*$/;

/**
 * An incremental parser of a chunked body, for relaying it without buffering:
 * it reports chunk boundaries, body bytes as views into the input, trailers
 * and the end. Errors: invalid or over-long sizes, extensions with bad
 * characters, missing CRLF after a size line or chunk data, bare LF, bad or
 * forbidden trailer fields (Content-Length, Transfer-Encoding, Host).
 */
export function parseChunkedStream(limits: ChunkedLimits = {}): ChunkedStreamParser {
  const maxLine = limits.maxLineBytes ?? 4096;
  const maxTrailer = limits.maxTrailerBytes ?? 16 * 1024;
  let state: ChunkedStreamParser['state'] = 'size';
  let line = '';
  let pendingCr = false;
  let remaining = 0;
  let crlfSeen = 0; // bytes of the CRLF after chunk data
  let trailerLines: string[] = [];
  let trailerBytes = 0;
  let body = 0;

  const fail = (events: ChunkEvent[], reason: string): ChunkEvent[] => {
    state = 'error';
    events.push({ kind: 'error', reason });
    return events;
  };

  return {
    get state() {
      return state;
    },
    get bodyBytes() {
      return body;
    },
    push(input: Uint8Array): ChunkEvent[] {
      const events: ChunkEvent[] = [];
      let i = 0;
      while (i < input.length) {
        if (state === 'done' || state === 'error') return events;
        if (state === 'data') {
          const n = Math.min(remaining, input.length - i);
          events.push({ kind: 'data', bytes: input.subarray(i, i + n) });
          remaining -= n;
          body += n;
          i += n;
          if (remaining === 0) {
            state = 'data-crlf';
            crlfSeen = 0;
          }
          continue;
        }
        const c = input[i++]!;
        if (state === 'data-crlf') {
          if (crlfSeen === 0 && c === CR) crlfSeen = 1;
          else if (crlfSeen === 1 && c === LF) state = 'size';
          else return fail(events, 'chunk data is not followed by CRLF');
          continue;
        }
        // 'size' and 'trailer' read lines
        if (pendingCr) {
          if (c !== LF) return fail(events, 'a bare CR in chunked framing');
          pendingCr = false;
          if (state === 'size') {
            const r = sizeLine(line);
            line = '';
            if (typeof r === 'string') return fail(events, r);
            if (r.size === 0) {
              state = 'trailer';
              trailerLines = [];
              trailerBytes = 0;
            } else {
              events.push({ kind: 'chunk', size: r.size, extensions: r.extensions });
              remaining = r.size;
              state = 'data';
            }
          } else if (line === '') {
            const f = parseFields(trailerLines, DEFAULT_MAX_HEADERS);
            if (!f.ok) return fail(events, `trailer: ${f.reason}`);
            const bad = f.headers.find(([n]) => ['content-length', 'transfer-encoding', 'host'].includes(n.toLowerCase()));
            if (bad) return fail(events, `a forbidden trailer field (${bad[0]})`);
            events.push({ kind: 'trailers', headers: f.headers });
            events.push({ kind: 'end', consumed: i });
            state = 'done';
            return events;
          } else {
            trailerLines.push(line);
            line = '';
          }
          continue;
        }
        if (c === CR) {
          pendingCr = true;
          continue;
        }
        if (c === LF) return fail(events, 'a bare LF in chunked framing (CRLF is required)');
        if ((c < 0x20 && c !== 0x09) || c === 0x7f) return fail(events, 'a control byte in chunked framing');
        line += String.fromCharCode(c);
        if (state === 'size' && line.length > maxLine) return fail(events, 'a chunk-size line is too long');
        if (state === 'trailer' && ++trailerBytes > maxTrailer) return fail(events, 'the trailer section is too large');
      }
      return events;
    },
  };
}

function sizeLine(line: string): { size: number; extensions: string } | string {
  const m = /^([0-9a-fA-F]+)(.*)$/.exec(line);
  if (!m) return 'an invalid chunk size';
  const hex = m[1]!;
  if (hex.length > 16) return 'a chunk size with too many digits';
  const size = parseInt(hex, 16);
  if (!Number.isSafeInteger(size)) return 'a chunk size too large';
  const ext = m[2]!;
  if (ext !== '' && !CHUNK_EXT.test(ext)) return 'an invalid chunk extension';
  return { size, extensions: ext };
}
