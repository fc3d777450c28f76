// Reading the TLS ClientHello from the first bytes of a connection, to learn
// the server name (SNI) and what the client offers before any byte goes
// upstream. Pure: no I/O.
//
// The hello may span several TLS records (large post-quantum key shares,
// padding, deliberate splitting) and several TCP reads; the parser collects
// handshake fragments across records and answers `need-more` until the whole
// message is there. It refuses, as `malformed`, what a strict server would:
// records that are not handshake records before the hello is complete, empty
// handshake fragments, records over 2^14 bytes, trailing bytes inside the
// hello, duplicate extensions, a pre_shared_key that is not last, several
// server names, server names with control or non-ASCII bytes. It never holds
// more than `maxBytes` (64 KiB by default): beyond that the hello is malformed.
// SSLv2-compatible hellos and anything else that is not a TLS handshake
// record are `not-tls`.

export interface ClientHelloInfo {
  /** The host_name from server_name, as sent (ASCII); null when absent. */
  sni: string | null;
  alpn: string[];
  /** encrypted_client_hello (0xfe0d) is present: the real SNI is hidden and `sni` is the ECH public name. */
  hasEch: boolean;
  legacyVersion: number;
  supportedVersions: number[];
  sessionIdLength: number;
  /** pre_shared_key, or session_ticket with data: the client tries to resume a session. */
  hasPskOrTicket: boolean;
  /** Extension types in the order sent. */
  extensions: number[];
  /** Bytes of the records that carried the hello; what follows belongs to the next records. */
  consumed: number;
  records: number;
}

export type ClientHelloResult =
  | { kind: 'need-more' }
  | { kind: 'not-tls'; reason: string }
  | { kind: 'malformed'; reason: string }
  | ({ kind: 'parsed' } & ClientHelloInfo);

export const DEFAULT_MAX_HELLO_BYTES = 64 * 1024;

const RECORD_HEADER = 5;
const MAX_RECORD = 16384;
const CT_HANDSHAKE = 22;
const HT_CLIENT_HELLO = 1;

export const EXT = {
  serverName: 0,
  alpn: 16,
  sessionTicket: 35,
  preSharedKey: 41,
  supportedVersions: 43,
  encryptedClientHello: 0xfe0d,
} as const;

class Malformed extends Error {}

/** A bounds-checked reader over one byte range. */
class Reader {
  private pos: number;
  private readonly bytes: Uint8Array;
  private readonly end: number;
  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.pos = start;
    this.end = end;
  }
  get remaining(): number {
    return this.end - this.pos;
  }
  u8(): number {
    if (this.remaining < 1) throw new Malformed('truncated field');
    return this.bytes[this.pos++]!;
  }
  u16(): number {
    return (this.u8() << 8) | this.u8();
  }
  u24(): number {
    return (this.u8() << 16) | (this.u8() << 8) | this.u8();
  }
  take(n: number): Uint8Array {
    if (this.remaining < n) throw new Malformed('a length runs past its container');
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  /** A sub-reader over a vector with an n-byte length prefix. */
  vector(lenBytes: 1 | 2 | 3): Reader {
    const len = lenBytes === 1 ? this.u8() : lenBytes === 2 ? this.u16() : this.u24();
    const body = this.take(len);
    return new Reader(body);
  }
}

/** Parse the ClientHello at the start of `bytes` (everything the client sent so far). */
export function parseClientHello(bytes: Uint8Array, maxBytes = DEFAULT_MAX_HELLO_BYTES): ClientHelloResult {
  if (bytes.length === 0) return { kind: 'need-more' };
  const b0 = bytes[0]!;
  if (b0 !== CT_HANDSHAKE) {
    if (b0 & 0x80 && bytes.length >= 3 && bytes[2] === 1) return { kind: 'not-tls', reason: 'SSLv2-compatible ClientHello' };
    return { kind: 'not-tls', reason: 'the first byte is not a TLS handshake record' };
  }
  if (bytes.length >= 2 && bytes[1] !== 3) return { kind: 'not-tls', reason: 'not a TLS record version' };

  // Collect handshake fragments across records until the ClientHello is whole.
  const fragments: Uint8Array[] = [];
  let collected = 0;
  let needed = -1; // total handshake bytes (4-byte header + body), once known
  let off = 0;
  let records = 0;
  while (needed < 0 || collected < needed) {
    if (off + RECORD_HEADER > bytes.length) return off >= maxBytes ? tooBig() : { kind: 'need-more' };
    const type = bytes[off]!;
    const major = bytes[off + 1]!;
    const minor = bytes[off + 2]!;
    const len = (bytes[off + 3]! << 8) | bytes[off + 4]!;
    if (type !== CT_HANDSHAKE) return malformed(`a record of type ${type} arrived before the ClientHello was complete`);
    if (major !== 3 || minor > 4) return malformed('bad record version');
    if (len === 0) return malformed('an empty handshake record');
    if (len > MAX_RECORD) return malformed('a record longer than 2^14 bytes');
    if (off + RECORD_HEADER + len > maxBytes) return tooBig();
    if (off + RECORD_HEADER + len > bytes.length) return { kind: 'need-more' };
    fragments.push(bytes.subarray(off + RECORD_HEADER, off + RECORD_HEADER + len));
    collected += len;
    off += RECORD_HEADER + len;
    records++;
    if (needed < 0 && collected >= 4) {
      const head = concat(fragments, 4);
      if (head[0] !== HT_CLIENT_HELLO) return malformed(`the first handshake message is type ${head[0]}, not ClientHello`);
      const bodyLen = (head[1]! << 16) | (head[2]! << 8) | head[3]!;
      if (bodyLen + 4 > maxBytes) return tooBig();
      needed = bodyLen + 4;
    }
  }
  if (collected !== needed) return malformed('bytes after the ClientHello in its last record');
  const msg = concat(fragments, collected);
  try {
    return { kind: 'parsed', ...parseBody(new Reader(msg, 4)), consumed: off, records };
  } catch (e) {
    if (e instanceof Malformed) return malformed(e.message);
    throw e;
  }
}

function malformed(reason: string): ClientHelloResult {
  return { kind: 'malformed', reason };
}

function tooBig(): ClientHelloResult {
  return malformed('the ClientHello exceeds the size cordon accepts');
}

function concat(parts: Uint8Array[], upTo: number): Uint8Array {
  const out = new Uint8Array(upTo);
  let at = 0;
  for (const p of parts) {
    if (at >= upTo) break;
    const n = Math.min(p.length, upTo - at);
    out.set(p.subarray(0, n), at);
    at += n;
  }
  return out;
}

function parseBody(r: Reader): Omit<ClientHelloInfo, 'consumed' | 'records'> {
  const legacyVersion = r.u16();
  if (legacyVersion >> 8 !== 3) throw new Malformed('bad legacy_version');
  r.take(32); // random
  const sessionId = r.vector(1);
  if (sessionId.remaining > 32) throw new Malformed('session id longer than 32 bytes');
  const sessionIdLength = sessionId.remaining;
  const suites = r.vector(2);
  if (suites.remaining < 2 || suites.remaining % 2 !== 0) throw new Malformed('bad cipher_suites');
  const compression = r.vector(1);
  if (compression.remaining < 1) throw new Malformed('no compression methods');

  const info: Omit<ClientHelloInfo, 'consumed' | 'records'> = {
    sni: null,
    alpn: [],
    hasEch: false,
    legacyVersion,
    supportedVersions: [],
    sessionIdLength,
    hasPskOrTicket: false,
    extensions: [],
  };
  if (r.remaining === 0) return info; // no extensions (old TLS 1.0-1.2 clients)
  const exts = r.vector(2);
  if (r.remaining !== 0) throw new Malformed('bytes after the extensions');
  const seen = new Set<number>();
  while (exts.remaining > 0) {
    const type = exts.u16();
    const data = exts.vector(2);
    if (seen.has(type)) throw new Malformed(`extension ${type} appears twice`);
    if (seen.has(EXT.preSharedKey)) throw new Malformed('pre_shared_key is not the last extension');
    seen.add(type);
    info.extensions.push(type);
    switch (type) {
      case EXT.serverName:
        info.sni = parseServerNameExt(data);
        break;
      case EXT.alpn:
        info.alpn = parseAlpn(data);
        break;
      case EXT.supportedVersions: {
        const list = data.vector(1);
        if (list.remaining % 2 !== 0 || data.remaining !== 0) throw new Malformed('bad supported_versions');
        while (list.remaining > 0) info.supportedVersions.push(list.u16());
        break;
      }
      case EXT.encryptedClientHello:
        info.hasEch = true;
        break;
      case EXT.preSharedKey:
        if (data.remaining > 0) info.hasPskOrTicket = true;
        break;
      case EXT.sessionTicket:
        if (data.remaining > 0) info.hasPskOrTicket = true;
        break;
      default:
        break;
    }
  }
  return info;
}

function parseServerNameExt(data: Reader): string | null {
  if (data.remaining === 0) return null; // allowed only in a server's reply, but harmless
  const list = data.vector(2);
  if (data.remaining !== 0) throw new Malformed('bytes after the server_name list');
  let name: string | null = null;
  while (list.remaining > 0) {
    const nameType = list.u8();
    const raw = list.vector(2);
    if (nameType !== 0) throw new Malformed(`server_name type ${nameType} is not host_name`);
    if (name !== null) throw new Malformed('more than one server name');
    const bytes = raw.take(raw.remaining);
    if (bytes.length === 0) throw new Malformed('an empty server name');
    for (const c of bytes) {
      if (c < 0x21 || c > 0x7e) throw new Malformed('the server name has a control, space or non-ASCII byte');
    }
    name = latin1(bytes);
  }
  if (name === null) throw new Malformed('an empty server_name list');
  return name;
}

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (const c of bytes) s += String.fromCharCode(c);
  return s;
}

function parseAlpn(data: Reader): string[] {
  const list = data.vector(2);
  if (data.remaining !== 0 || list.remaining === 0) throw new Malformed('bad ALPN list');
  const out: string[] = [];
  while (list.remaining > 0) {
    const p = list.vector(1);
    if (p.remaining === 0) throw new Malformed('an empty ALPN protocol name');
    out.push(latin1(p.take(p.remaining)));
  }
  return out;
}

/**
 * Accumulates the first bytes of a connection and parses the hello. Holds at
 * most `maxBytes` plus one read while the hello is incomplete; one instance
 * per connection. After a final answer push() returns it again and ignores
 * its input: read what follows the hello from `buffered` and the socket.
 */
export class ClientHelloReader {
  private buf: Uint8Array = new Uint8Array(0);
  private readonly maxBytes: number;
  private final: ClientHelloResult | null = null;
  constructor(maxBytes = DEFAULT_MAX_HELLO_BYTES) {
    this.maxBytes = maxBytes;
  }
  /** Everything pushed so far (to replay upstream or into the TLS terminator). */
  get buffered(): Uint8Array {
    return this.buf;
  }
  push(chunk: Uint8Array): ClientHelloResult {
    if (this.final) return this.final;
    const next = new Uint8Array(this.buf.length + chunk.length);
    next.set(this.buf);
    next.set(chunk, this.buf.length);
    this.buf = next;
    const r = parseClientHello(this.buf, this.maxBytes);
    if (r.kind === 'need-more' && this.buf.length >= this.maxBytes) this.final = tooBig();
    else if (r.kind !== 'need-more') this.final = r;
    return this.final ?? r;
  }
}
