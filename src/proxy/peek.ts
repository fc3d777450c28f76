// What a captured flow speaks, from its first bytes, before anything goes
// upstream: a TLS ClientHello (read whole, across records), an HTTP/1.x
// request line, or neither (raw TCP). Every byte read is pushed back into the
// reader for whoever handles the flow next. Raw TCP is the strictest view the
// rules have of a flow (http allow rules do not cover it), so a flow that
// never becomes recognisable gains nothing by staying ambiguous.

import { ClientHelloReader, type ClientHelloInfo } from './tls-client-hello.ts';
import { ReadTimeout, type StreamReader } from './stream-reader.ts';

export type Peek =
  | { kind: 'tls'; hello: ClientHelloInfo }
  | { kind: 'http' }
  | { kind: 'raw' }
  /** The client sent nothing for `firstByteMs` (a server-speaks-first protocol, or a slow client). */
  | { kind: 'silent' }
  /** The client ended without sending a byte. */
  | { kind: 'empty' }
  | { kind: 'bad'; reason: string };

const MAX_METHOD = 32;
const MAX_LINE = 8192;
const TEMPLATE = 'HTTP/d.d\r\n';
const BARE_LF_AT = TEMPLATE.indexOf('\r');

const isTokenChar = (c: number) =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c));

/** Whether the bytes are (a prefix of) an HTTP/1.x request line "METHOD target HTTP/d.d\r\n". */
export function requestLineState(b: Uint8Array): 'yes' | 'no' | 'maybe' {
  let i = 0;
  while (i < b.length && isTokenChar(b[i]!)) i++;
  if (i === b.length) return i <= MAX_METHOD ? 'maybe' : 'no';
  if (i === 0 || i > MAX_METHOD || b[i] !== 0x20) return 'no';
  let j = ++i;
  while (j < b.length && b[j]! > 0x20 && b[j]! < 0x7f) j++;
  if (j === b.length) return j <= MAX_LINE ? 'maybe' : 'no';
  if (j === i || b[j] !== 0x20) return 'no';
  j++;
  for (let k = 0; k < TEMPLATE.length; k++, j++) {
    if (j === b.length) return 'maybe';
    const want = TEMPLATE[k]!;
    const c = b[j]!;
    // A bare LF still reads as HTTP: the strict parser then refuses it with a 400.
    if (k === BARE_LF_AT && c === 0x0a) return 'yes';
    if (want === 'd' ? !(c >= 0x30 && c <= 0x39) : c !== want.charCodeAt(0)) return 'no';
  }
  return 'yes';
}

export async function peekFlow(reader: StreamReader, firstByteMs: number, handshakeMs: number): Promise<Peek> {
  const chunks: Buffer[] = [];
  const giveBack = () => {
    for (let i = chunks.length - 1; i >= 0; i--) reader.unshift(chunks[i]!);
  };
  let first: Buffer | null;
  try {
    first = await reader.read(firstByteMs, 'the first bytes');
  } catch (e) {
    if (e instanceof ReadTimeout) return { kind: 'silent' };
    throw e;
  }
  if (first === null) return { kind: 'empty' };
  chunks.push(first);
  const tls = first[0] === 0x16 ? new ClientHelloReader() : null;
  let all: Buffer = first;
  let chunk: Buffer | null = first;
  // A ClientHello split across reads gets the handshake budget; a half request line only firstByteMs
  // (real HTTP clients send it in one write; raw protocols should not stall on looking like HTTP).
  const deadline = Date.now() + (tls ? handshakeMs : Math.min(firstByteMs, handshakeMs));
  try {
    for (;;) {
      if (tls) {
        const r = tls.push(chunk!);
        if (r.kind === 'parsed') return { kind: 'tls', hello: r };
        if (r.kind === 'malformed') return { kind: 'bad', reason: `a malformed TLS ClientHello: ${r.reason}` };
        if (r.kind === 'not-tls') return { kind: 'raw' };
      } else {
        const s = requestLineState(all);
        if (s === 'yes') return { kind: 'http' };
        if (s === 'no') return { kind: 'raw' };
      }
      const left = deadline - Date.now();
      try {
        chunk = left > 0 ? await reader.read(left, 'the first bytes') : null;
      } catch (e) {
        if (!(e instanceof ReadTimeout)) throw e;
        chunk = null;
      }
      if (chunk === null) return tls ? { kind: 'bad', reason: 'an incomplete TLS ClientHello' } : { kind: 'raw' };
      chunks.push(chunk);
      all = Buffer.concat([all, chunk]);
    }
  } finally {
    giveBack();
  }
}
