// Streaming message bodies without holding them: read by the received framing
// (Content-Length, chunked, or until close), check the chunked framing with
// the strict parser as it passes, enforce a body limit while streaming, and
// write either the received bytes unchanged or the decoded body re-framed
// (after an inspector's transform).

import { pipeline } from 'node:stream/promises';
import { Readable, type Transform, type Writable } from 'node:stream';
import { CordonError } from '../errors.ts';
import { parseChunkedStream, type Framing, type ResponseFraming } from './http-head.ts';
import type { BodyMode } from './http-message.ts';
import type { StreamReader } from './stream-reader.ts';

/** truncated: the sender ended early; malformed: bad chunked framing; too-large: over the limit; peer-gone: the receiver went away. */
export type BodyErrorKind = 'truncated' | 'malformed' | 'too-large' | 'peer-gone' | 'budget';

export class BodyError extends CordonError {
  readonly kind: BodyErrorKind;
  constructor(kind: BodyErrorKind, message: string) {
    super('CORDON_INTERNAL', message, { detail: { kind } });
    this.kind = kind;
  }
}

/** One read's worth of body: the bytes as received and the payload inside them. */
export interface BodyPiece {
  raw: Buffer;
  data: Buffer[];
}

export interface BodyReadOptions {
  /** Largest payload accepted (null: no limit). Exceeding it throws BodyError('too-large') before the piece is yielded. */
  limit: number | null;
  /** Longest wait for the next read. */
  idleMs: number;
}

/** The body's pieces, in order. Bytes after the body are pushed back into the reader. */
export async function* readBody(reader: StreamReader, framing: Framing | ResponseFraming, o: BodyReadOptions): AsyncGenerator<BodyPiece> {
  const over = (n: number) => o.limit !== null && n > o.limit;
  if (framing.kind === 'none') return;
  if (framing.kind === 'length') {
    if (over(framing.length)) throw new BodyError('too-large', 'the body is larger than allowed');
    let remaining = framing.length;
    while (remaining > 0) {
      const chunk = await reader.read(o.idleMs, 'the message body');
      if (chunk === null) throw new BodyError('truncated', `the body ended ${remaining} bytes early`);
      if (chunk.length > remaining) {
        reader.unshift(chunk.subarray(remaining));
        const piece = chunk.subarray(0, remaining);
        remaining = 0;
        yield { raw: piece, data: [piece] };
      } else {
        remaining -= chunk.length;
        yield { raw: chunk, data: [chunk] };
      }
    }
    return;
  }
  if (framing.kind === 'chunked') {
    const parser = parseChunkedStream();
    for (;;) {
      const chunk = await reader.read(o.idleMs, 'the message body');
      if (chunk === null) throw new BodyError('truncated', 'the chunked body ended before its last chunk');
      const data: Buffer[] = [];
      let end = -1;
      for (const ev of parser.push(chunk)) {
        if (ev.kind === 'data') data.push(Buffer.from(ev.bytes.buffer, ev.bytes.byteOffset, ev.bytes.length));
        else if (ev.kind === 'error') throw new BodyError('malformed', `bad chunked framing: ${ev.reason}`);
        else if (ev.kind === 'end') end = ev.consumed;
      }
      if (over(parser.bodyBytes)) throw new BodyError('too-large', 'the body is larger than allowed');
      if (end >= 0) {
        reader.unshift(chunk.subarray(end));
        yield { raw: chunk.subarray(0, end), data };
        return;
      }
      yield { raw: chunk, data };
    }
  }
  // close-delimited (responses only): everything until the peer ends.
  let total = 0;
  for (;;) {
    const chunk = await reader.read(o.idleMs, 'the message body');
    if (chunk === null) return;
    total += chunk.length;
    if (over(total)) throw new BodyError('too-large', 'the body is larger than allowed');
    yield { raw: chunk, data: [chunk] };
  }
}

/** Write, waiting for drain when the stream's buffer is full; rejects if it closes first. */
export function write(out: Writable, bytes: Buffer): Promise<void> | void {
  if (out.destroyed || out.writableEnded) return Promise.reject(new BodyError('peer-gone', 'the peer went away'));
  if (out.write(bytes)) return;
  return new Promise((resolve, reject) => {
    const done = (e?: Error) => {
      out.off('drain', onDrain);
      out.off('close', onClose);
      out.off('error', onError);
      if (e) reject(e);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new BodyError('peer-gone', 'the peer went away'));
    const onError = (e: Error) => done(new BodyError('peer-gone', `the peer failed: ${e.message}`));
    out.on('drain', onDrain);
    out.on('close', onClose);
    out.on('error', onError);
  });
}

const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');

async function writeData(out: Writable, mode: 'chunked' | 'close' | 'length', data: Buffer): Promise<void> {
  if (data.length === 0) return;
  if (mode !== 'chunked') return write(out, data);
  out.write(Buffer.from(`${data.length.toString(16)}\r\n`, 'latin1'));
  out.write(data);
  await write(out, CRLF);
}

/**
 * Send a body: received bytes unchanged ('verbatim'), or the payload re-framed
 * ('chunked' / 'close') after the transforms, or ('length') the transformed
 * payload under the received Content-Length, which must be `length` bytes
 * exactly: a transform that writes more or less is a BodyError('malformed'),
 * and nothing past `length` is ever written. Returns the payload bytes read.
 */
export async function sendBody(pieces: AsyncIterable<BodyPiece>, out: Writable, mode: BodyMode, transforms: readonly Transform[], length = 0): Promise<number> {
  let payload = 0;
  if (mode === 'none') {
    for await (const p of pieces) for (const d of p.data) payload += d.length;
    return payload;
  }
  if (transforms.length === 0) {
    for await (const p of pieces) {
      for (const d of p.data) payload += d.length;
      if (mode === 'verbatim') await write(out, p.raw);
      else for (const d of p.data) await writeData(out, mode, d);
    }
    if (mode === 'chunked') await write(out, LAST_CHUNK);
    return payload;
  }
  if (mode === 'verbatim') throw new CordonError('CORDON_INTERNAL', 'a transformed body must be re-framed');
  async function* source() {
    for await (const p of pieces) {
      for (const d of p.data) {
        payload += d.length;
        yield d;
      }
    }
  }
  let sent = 0;
  const sink = async (src: AsyncIterable<Buffer | string>) => {
    for await (const c of src) {
      const b = typeof c === 'string' ? Buffer.from(c) : c;
      sent += b.length;
      if (mode === 'length' && sent > length) throw new BodyError('malformed', 'a body transform wrote more than the Content-Length');
      await writeData(out, mode, b);
    }
  };
  const stages: unknown[] = [Readable.from(source()), ...transforms, sink];
  await (pipeline as (...s: unknown[]) => Promise<void>)(...stages);
  if (mode === 'length' && sent !== length) throw new BodyError('malformed', 'a body transform changed the length of a Content-Length body');
  if (mode === 'chunked') await write(out, LAST_CHUNK);
  return payload;
}
