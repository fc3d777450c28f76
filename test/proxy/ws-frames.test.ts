// WebSocket frame rewriting (src/proxy/ws-frames.ts): messages keep their
// content and order whatever the fragmentation and however the bytes arrive;
// a value cut across fragments is still rewritten; control frames interleave;
// masking follows the direction; anything outside RFC 6455 without
// extensions fails.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeFrame, WsFrameRewriter, WsProtocolError, type MessageRewriter } from '../../src/proxy/ws-frames.ts';

interface Frame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** A test-side decoder of whole frames (independent of the code under test). */
function parseFrames(buf: Buffer): Frame[] {
  const out: Frame[] = [];
  let at = 0;
  while (at < buf.length) {
    const b0 = buf[at]!;
    const b1 = buf[at + 1]!;
    let len = b1 & 0x7f;
    let p = at + 2;
    if (len === 126) {
      len = buf.readUInt16BE(p);
      p += 2;
    } else if (len === 127) {
      len = Number(buf.readBigUInt64BE(p));
      p += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    const key = masked ? buf.subarray(p, p + 4) : null;
    if (masked) p += 4;
    const payload = Buffer.from(buf.subarray(p, p + len));
    assert.equal(payload.length, len, 'frame complete');
    if (key) for (let i = 0; i < len; i++) payload[i] = payload[i]! ^ key[i & 3]!;
    out.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, payload });
    at = p + len;
  }
  return out;
}

/** Messages (opcode, whole payload) and control frames, in order, from frames. */
function messages(frames: Frame[]): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  let cur: { op: number; parts: Buffer[] } | null = null;
  for (const f of frames) {
    if (f.opcode >= 8) {
      out.push([f.opcode, f.payload.toString('latin1')]);
      continue;
    }
    if (f.opcode !== 0) {
      assert.equal(cur, null, 'no new message inside another');
      cur = { op: f.opcode, parts: [] };
    }
    assert.ok(cur, 'a continuation belongs to a message');
    cur.parts.push(f.payload);
    if (f.fin) {
      out.push([cur.op, Buffer.concat(cur.parts).toString('latin1')]);
      cur = null;
    }
  }
  assert.equal(cur, null, 'every message finished');
  return out;
}

/** Replaces every "SECRET" (however it is cut across pushes) with "[gone]". */
function replacer(): MessageRewriter {
  let held = '';
  return {
    push(b) {
      const s = (held + b.toString('latin1')).replaceAll('SECRET', '[gone]');
      // Hold back a tail that could start "SECRET".
      let keep = 0;
      for (let k = Math.min(5, s.length); k > 0; k--) if ('SECRET'.startsWith(s.slice(-k))) {
        keep = k;
        break;
      }
      held = s.slice(s.length - keep);
      return Buffer.from(s.slice(0, s.length - keep), 'latin1');
    },
    end() {
      const s = held;
      held = '';
      return Buffer.from(s, 'latin1');
    },
  };
}

const identity = (): MessageRewriter => ({ push: (b) => b, end: () => Buffer.alloc(0) });

function run(from: 'client' | 'server', input: Buffer, pieces: number[] | 'bytewise', message = replacer): Buffer {
  const rw = new WsFrameRewriter({ from, message, control: (p) => Buffer.from(p.toString('latin1').replaceAll('SECRET', '[gone]'), 'latin1') });
  const out: Buffer[] = [];
  if (pieces === 'bytewise') for (let i = 0; i < input.length; i++) out.push(rw.push(input.subarray(i, i + 1)));
  else {
    let at = 0;
    for (const n of [...pieces, input.length]) {
      out.push(rw.push(input.subarray(at, Math.min(n, input.length))));
      at = Math.min(n, input.length);
    }
  }
  out.push(rw.end());
  return Buffer.concat(out);
}

const f = (fin: boolean, op: number, s: string | Buffer, masked = false) => encodeFrame(fin, op, typeof s === 'string' ? Buffer.from(s, 'latin1') : s, masked);

describe('WebSocket frame rewriting', () => {
  it('messages survive unchanged in content and order, whole or byte by byte, from either side', () => {
    const big = 'x'.repeat(70_000);
    const mid = 'y'.repeat(300);
    for (const from of ['server', 'client'] as const) {
      const m = from === 'client';
      const input = Buffer.concat([f(true, 1, 'hello', m), f(true, 2, mid, m), f(true, 1, big, m), f(true, 9, 'ping!', m), f(true, 1, '', m), f(true, 8, '\x03\xe8bye', m)]);
      const want: Array<[number, string]> = [
        [1, 'hello'],
        [2, mid],
        [1, big],
        [9, 'ping!'],
        [1, ''],
        [8, '\x03\xe8bye'],
      ];
      for (const pieces of [[], [1, 3, 7, 200, 70_010], 'bytewise'] as const) {
        const out = parseFrames(run(from, input, pieces === 'bytewise' ? 'bytewise' : [...pieces], identity));
        assert.deepEqual(messages(out), want, `${from} ${String(pieces)}`);
        assert.ok(out.every((x) => x.masked === m), `${from}: frames ${m ? 'masked' : 'unmasked'} on the way out`);
        assert.ok(out.every((x) => x.rsv === 0));
      }
    }
  });

  it('a value is rewritten inside a frame, across fragments, across reads, and around an interleaved ping', () => {
    const input = Buffer.concat([
      f(true, 1, 'key=SECRET;'),
      f(false, 1, 'a=SEC'),
      f(true, 9, 'SECRET in a ping'),
      f(false, 0, 'R'),
      f(true, 0, 'ET end'),
      f(true, 2, Buffer.from('bin SECRET', 'latin1')),
    ]);
    for (const pieces of [[], [3, 9, 21, 22, 30], 'bytewise'] as const) {
      const out = messages(parseFrames(run('server', input, pieces === 'bytewise' ? 'bytewise' : [...pieces])));
      assert.deepEqual(
        out,
        [
          [1, 'key=[gone];'],
          [9, '[gone] in a ping'],
          [1, 'a=[gone] end'],
          [2, 'bin [gone]'],
        ],
        String(pieces),
      );
    }
  });

  it('client frames: unmasked input is refused; output is masked with a fresh key per frame', () => {
    assert.throws(() => run('client', f(true, 1, 'hi', false), []), /not masked/);
    assert.throws(() => run('server', f(true, 1, 'hi', true), []), /server is masked/);
    const out = run('client', Buffer.concat([f(true, 1, 'aaaa', true), f(true, 1, 'aaaa', true)]), [], identity);
    const raw = parseFrames(out);
    assert.deepEqual(messages(raw), [
      [1, 'aaaa'],
      [1, 'aaaa'],
    ]);
    // Same payload, different keys: the masked bytes differ (4 random bytes each: a clash is 1 in 2^32).
    assert.notDeepEqual(out.subarray(2, 10), out.subarray(12, 20));
  });

  it('a rewritten close reason that no longer fits is dropped (the code stays); a ping that no longer fits fails', () => {
    const grow = (p: Buffer) => Buffer.concat([p, Buffer.alloc(200, 0x61)]);
    const rw = new WsFrameRewriter({ from: 'server', message: identity, control: grow });
    const out = parseFrames(rw.push(f(true, 8, '\x03\xe8reason')));
    assert.deepEqual(
      out.map((x) => [x.opcode, x.payload.toString('latin1')]),
      [[8, '\x03\xe8']],
    );
    const rw2 = new WsFrameRewriter({ from: 'server', message: identity, control: grow });
    assert.throws(() => rw2.push(f(true, 9, 'x')), /exceed 125/);
  });

  it('fails on what it cannot inspect or what breaks the protocol', () => {
    const rsv1 = f(true, 1, 'compressed?');
    rsv1[0] = rsv1[0]! | 0x40;
    const cases: Array<[string, Buffer, RegExp]> = [
      ['reserved bits (permessage-deflate)', rsv1, /extension/],
      ['reserved opcode', f(true, 3, 'x'), /reserved opcode 3/],
      ['fragmented control frame', f(false, 9, 'x'), /fragmented .*control/],
      ['continuation with no message', f(true, 0, 'x'), /continuation frame outside/],
      ['a new message inside one', Buffer.concat([f(false, 1, 'a'), f(true, 1, 'b')]), /inside an unfinished one/],
      ['a frame after close', Buffer.concat([f(true, 8, '\x03\xe8'), f(true, 1, 'late')]), /after the close/],
    ];
    for (const [what, input, re] of cases) {
      assert.throws(() => run('server', input, []), (e: unknown) => e instanceof WsProtocolError && re.test(e.message), what);
    }
    const long = Buffer.concat([Buffer.from([0x89, 126, 0, 200]), Buffer.alloc(200)]);
    assert.throws(() => run('server', long, []), /longer than 125/);
    const huge = Buffer.from([0x82, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    assert.throws(() => run('server', huge, []), /out of range/);
  });

  it('the stream ending inside a frame is an error; a message cut short is not completed', () => {
    const whole = f(true, 1, 'abcdefgh');
    assert.throws(() => run('server', whole.subarray(0, 5), []), /ended inside a WebSocket frame/);
    const rw = new WsFrameRewriter({ from: 'server', message: replacer, control: (p) => p });
    const out = rw.push(f(false, 1, 'part SEC'));
    assert.doesNotThrow(() => rw.end());
    // What was held back (a possible start of the value) never went out.
    assert.deepEqual(
      parseFrames(out).map((x) => [x.fin, x.payload.toString('latin1')]),
      [[false, 'part ']],
    );
  });

  it('encodes 7-bit, 16-bit and 64-bit lengths', () => {
    for (const n of [0, 125, 126, 65535, 65536]) {
      const fr = encodeFrame(true, 2, Buffer.alloc(n, 1), false);
      assert.equal(fr.length, n + (n < 126 ? 2 : n < 65536 ? 4 : 10));
      assert.equal(parseFrames(fr)[0]!.payload.length, n);
    }
  });
});
