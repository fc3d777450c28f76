// WebSocket frames (RFC 6455 section 5) rewritten in one direction of an
// upgraded connection, with bounded memory. The proxy splices a WebSocket
// after the 101; when an inspector needs to see the messages (the broker:
// real values scrubbed on the way to the agent, placeholders and canaries
// looked for on the way out), each direction goes through a WsFrameRewriter.
//
// What it does:
//   - Parses frames as they arrive (a frame's payload may span many reads),
//     unmasking client frames.
//   - Feeds each data message's payload, across its fragments, to one
//     `MessageRewriter` (so a value cut across two frames is still seen), and
//     emits what it returns as new frames: a message may come out in more or
//     fewer fragments than it went in (RFC 6455 5.4 lets an intermediary
//     refragment when no extension is in use). Client frames are masked again
//     with a fresh key.
//   - Control frames (close, ping, pong) are rewritten whole; a result longer
//     than 125 bytes is a failure (a close frame keeps its code and loses the
//     reason instead).
//   - Anything it does not understand fails: reserved bits (an extension such
//     as permessage-deflate, which the broker keeps from being negotiated),
//     reserved opcodes, fragmented or oversized control frames, a
//     continuation with no message, a new message inside one, wrong masking,
//     a stream that ends inside a frame. A throw from here (or from the
//     MessageRewriter) tears the connection down.

import { randomFillSync } from 'node:crypto';

/** The payload of one message (text or binary), in order, across fragments. */
export interface MessageRewriter {
  /** Payload bytes in; the bytes now safe to send (possibly rewritten). */
  push(chunk: Buffer): Buffer;
  /** The message is complete: whatever is still held back. */
  end(): Buffer;
}

/** A filter over one direction of a spliced stream (splice.ts). */
export interface ByteFilter {
  push(chunk: Buffer): Buffer;
  /** The source ended; throws if that is not a clean place to end. */
  end(): Buffer;
}

export class WsProtocolError extends Error {}

export interface WsRewriterOptions {
  /** Frames from the client (masked on the wire) or from the server (never masked). */
  from: 'client' | 'server';
  /** A rewriter for each data message. */
  message: () => MessageRewriter;
  /** Rewrites a control frame's payload (close: code and reason; ping, pong: data). */
  control: (payload: Buffer) => Buffer;
}

const OP_CONT = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;
const DATA_OPS = new Set([OP_TEXT, OP_BINARY]);
const CONTROL_OPS = new Set([OP_CLOSE, OP_PING, OP_PONG]);

/** One frame, serialised; `masked`: with a fresh random key (client to server). */
export function encodeFrame(fin: boolean, opcode: number, payload: Buffer, masked: boolean): Buffer {
  const len = payload.length;
  const lenBytes = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + lenBytes + (masked ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = (masked ? 0x80 : 0) | (lenBytes === 0 ? len : lenBytes === 2 ? 126 : 127);
  if (lenBytes === 2) head.writeUInt16BE(len, 2);
  else if (lenBytes === 8) head.writeBigUInt64BE(BigInt(len), 2);
  if (!masked) return Buffer.concat([head, payload]);
  const key = head.subarray(2 + lenBytes);
  randomFillSync(key);
  const body = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) body[i] = payload[i]! ^ key[i & 3]!;
  return Buffer.concat([head, body]);
}

interface FrameHead {
  fin: boolean;
  opcode: number;
  mask: Buffer | null;
  length: number;
}

export class WsFrameRewriter implements ByteFilter {
  readonly #o: WsRewriterOptions;
  #buf: Buffer = Buffer.alloc(0);
  /** The frame whose payload is being read, and how much of it has been. */
  #frame: FrameHead | null = null;
  #read = 0;
  /** Control frame payload collected whole. */
  #control: Buffer[] = [];
  /** The data message in progress: its rewriter, its opcode, whether a frame of it went out. */
  #message: { rw: MessageRewriter; opcode: number; started: boolean } | null = null;
  #closed = false;

  constructor(o: WsRewriterOptions) {
    this.#o = o;
  }

  push(chunk: Buffer): Buffer {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      if (this.#frame === null) {
        const h = this.#parseHead();
        if (h === null) break;
        this.#frame = h;
        this.#read = 0;
        this.#begin(h);
      }
      const f = this.#frame;
      const take = Math.min(f.length - this.#read, this.#buf.length);
      if (take > 0 || f.length === 0) {
        const part = Buffer.from(this.#buf.subarray(0, take));
        this.#buf = this.#buf.subarray(take);
        if (f.mask) for (let i = 0; i < part.length; i++) part[i] = part[i]! ^ f.mask[(this.#read + i) & 3]!;
        this.#read += take;
        this.#payload(f, part, out);
      }
      if (this.#read < f.length) break;
      this.#finish(f, out);
      this.#frame = null;
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  end(): Buffer {
    if (this.#frame !== null || this.#buf.length > 0) throw new WsProtocolError('the connection ended inside a WebSocket frame');
    // A message cut short by the end of the stream is not completed for it: nothing held back is sent.
    return Buffer.alloc(0);
  }

  #parseHead(): FrameHead | null {
    const b = this.#buf;
    if (b.length < 2) return null;
    const fin = (b[0]! & 0x80) !== 0;
    if ((b[0]! & 0x70) !== 0) throw new WsProtocolError('a WebSocket frame uses an extension (reserved bits set); cordon does not relay extensions it cannot inspect');
    const opcode = b[0]! & 0x0f;
    const masked = (b[1]! & 0x80) !== 0;
    let len = b[1]! & 0x7f;
    let at = 2;
    if (len === 126) {
      if (b.length < 4) return null;
      len = b.readUInt16BE(2);
      at = 4;
    } else if (len === 127) {
      if (b.length < 10) return null;
      const big = b.readBigUInt64BE(2);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new WsProtocolError('a WebSocket frame length is out of range');
      len = Number(big);
      at = 10;
    }
    if (b.length < at + (masked ? 4 : 0)) return null;
    if (masked !== (this.#o.from === 'client')) {
      throw new WsProtocolError(this.#o.from === 'client' ? 'a WebSocket frame from the client is not masked' : 'a WebSocket frame from the server is masked');
    }
    const mask = masked ? Buffer.from(b.subarray(at, at + 4)) : null;
    this.#buf = b.subarray(at + (masked ? 4 : 0));
    if (this.#closed) throw new WsProtocolError('a WebSocket frame after the close frame');
    if (CONTROL_OPS.has(opcode)) {
      if (!fin) throw new WsProtocolError('a fragmented WebSocket control frame');
      if (len > 125) throw new WsProtocolError('a WebSocket control frame longer than 125 bytes');
    } else if (opcode === OP_CONT) {
      if (this.#message === null) throw new WsProtocolError('a WebSocket continuation frame outside a message');
    } else if (DATA_OPS.has(opcode)) {
      if (this.#message !== null) throw new WsProtocolError('a new WebSocket message inside an unfinished one');
    } else {
      throw new WsProtocolError(`a WebSocket frame with reserved opcode ${opcode}`);
    }
    return { fin, opcode, mask, length: len };
  }

  #begin(f: FrameHead): void {
    if (DATA_OPS.has(f.opcode)) this.#message = { rw: this.#o.message(), opcode: f.opcode, started: false };
    else if (CONTROL_OPS.has(f.opcode)) this.#control = [];
  }

  #payload(f: FrameHead, part: Buffer, out: Buffer[]): void {
    if (CONTROL_OPS.has(f.opcode)) {
      this.#control.push(part);
      return;
    }
    if (part.length === 0) return;
    const m = this.#message!;
    const data = m.rw.push(part);
    if (data.length > 0) this.#emit(false, data, out);
  }

  #finish(f: FrameHead, out: Buffer[]): void {
    if (CONTROL_OPS.has(f.opcode)) {
      let payload = this.#o.control(Buffer.concat(this.#control));
      this.#control = [];
      if (payload.length > 125) {
        if (f.opcode !== OP_CLOSE) throw new WsProtocolError('a rewritten WebSocket ping or pong would exceed 125 bytes');
        payload = payload.subarray(0, 2);
      }
      if (f.opcode === OP_CLOSE) this.#closed = true;
      out.push(encodeFrame(true, f.opcode, payload, this.#o.from === 'client'));
      return;
    }
    if (!f.fin) return;
    const m = this.#message!;
    this.#emit(true, m.rw.end(), out);
    this.#message = null;
  }

  /** A frame of the current message: the first carries its opcode, the rest are continuations. */
  #emit(fin: boolean, data: Buffer, out: Buffer[]): void {
    const m = this.#message!;
    out.push(encodeFrame(fin, m.started ? OP_CONT : m.opcode, data, this.#o.from === 'client'));
    m.started = true;
  }
}
