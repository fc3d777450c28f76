// Response heads other than the final one, and WebSocket connections, through
// a real proxy with the broker: a bound host that quotes the injected value in
// a 103 Early Hints head, in its 101, or in WebSocket frames (whole, cut
// across fragments, in a ping) hands the agent the placeholder, never the real
// value; extensions are kept from being negotiated (and refused if the server
// insists); the agent's frames to any host are scanned like a request body.

import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { encodeFrame, WsFrameRewriter, type MessageRewriter } from '../../src/proxy/ws-frames.ts';
import { fakeServer, type FakeServer } from '../proxy/helpers.ts';
import { req, session, until, type Session } from './helpers.ts';

const REAL = 'sk-test-REALwebsocketKey0123456789abcdefghijklmnopqrstuvwxyz';

interface Message {
  opcode: number;
  payload: Buffer;
}

/** Decodes frames with the code under test in identity mode, collecting whole messages (with their opcode) and control frames. */
function decoder(from: 'client' | 'server'): { push(b: Buffer): void; messages: Message[] } {
  const messages: Message[] = [];
  let parts: Buffer[] = [];
  // The opcode of each data message, in order, read off the frame heads the rewriter re-emits.
  const opcodes: number[] = [];
  const rw = new WsFrameRewriter({
    from,
    message: (): MessageRewriter => ({
      push: (b) => (parts.push(Buffer.from(b)), b),
      end: () => {
        messages.push({ opcode: -1, payload: Buffer.concat(parts) });
        parts = [];
        return Buffer.alloc(0);
      },
    }),
    control: (p) => (messages.push({ opcode: 9, payload: Buffer.from(p) }), p),
  });
  return {
    messages,
    push(b) {
      const out = rw.push(b);
      // Re-emitted frames are unmasked for 'server'; for 'client' only the opcodes are needed (first byte).
      for (let at = 0; at < out.length; ) {
        const op = out[at]! & 0x0f;
        if (op === 1 || op === 2) opcodes.push(op);
        let len = out[at + 1]! & 0x7f;
        let p = at + 2;
        if (len === 126) (len = out.readUInt16BE(p)), (p += 2);
        else if (len === 127) (len = Number(out.readBigUInt64BE(p))), (p += 8);
        if (out[at + 1]! & 0x80) p += 4;
        at = p + len;
      }
      for (const m of messages) if (m.opcode === -1) m.opcode = opcodes.shift() ?? -1;
    },
  };
}

interface WsPeer {
  req: IncomingMessage;
  socket: Duplex;
  got: ReturnType<typeof decoder>;
}

describe('the broker on 1xx heads and WebSocket connections', { timeout: 30_000 }, () => {
  let bound: FakeServer;
  let other: FakeServer;
  let s: Session;
  const peers: WsPeer[] = [];

  /** The servers' upgrade handler: /ws-echo quotes the Authorization in its 101 and then in frames; /ws-ext insists on an extension. */
  const onUpgrade = (rq: IncomingMessage, socket: Duplex) => {
    const auth = String(rq.headers.authorization ?? '');
    const ext = rq.url === '/ws-ext' ? 'Sec-WebSocket-Extensions: permessage-deflate\r\n' : '';
    const reason = rq.url === '/ws-reason' ? `Switching ${auth}` : 'Switching Protocols';
    socket.write(`HTTP/1.1 101 ${reason}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\nX-Echo: ${auth}\r\n${ext}\r\n`);
    const peer: WsPeer = { req: rq, socket, got: decoder('client') };
    peers.push(peer);
    socket.on('data', (d: Buffer) => {
      try {
        peer.got.push(d);
      } catch {
        socket.destroy();
      }
    });
    socket.on('error', () => {});
    if (rq.url === '/ws-split') {
      // The value cut between two messages: the first can only go as it is; the second must not.
      const real = Buffer.from(auth, 'latin1');
      socket.write(encodeFrame(true, 1, Buffer.concat([Buffer.from('one: '), real.subarray(0, 30)]), false));
      setTimeout(() => socket.write(encodeFrame(true, 1, Buffer.concat([real.subarray(30), Buffer.from(' :two')]), false)), 20);
    }
    if (rq.url === '/ws-echo') {
      const real = Buffer.from(auth, 'latin1');
      const cut = 20;
      // Whole in a text frame; cut across two fragments (written separately); in a binary frame; in a ping.
      socket.write(encodeFrame(true, 1, Buffer.concat([Buffer.from('whole: '), real]), false));
      socket.write(encodeFrame(false, 1, Buffer.concat([Buffer.from('cut: '), real.subarray(0, cut)]), false));
      setTimeout(() => {
        socket.write(encodeFrame(true, 0, real.subarray(cut), false));
        socket.write(encodeFrame(true, 2, Buffer.concat([Buffer.from([0, 1]), real.subarray(7)]), false));
        socket.write(encodeFrame(true, 9, real, false));
      }, 20);
    }
  };

  before(async () => {
    bound = await fakeServer(
      (rq, res) => {
        if (rq.url === '/hints') res.writeEarlyHints({ link: '</a.css>; rel=preload', 'x-echo': String(rq.headers.authorization) });
        if (rq.url === '/reason') {
          res.writeHead(200, `OK ${String(rq.headers.authorization)}`);
          return void res.end('final');
        }
        res.end('final');
      },
      { name: 'bound.test', onUpgrade },
    );
    other = await fakeServer((_rq, res) => res.end('ok'), { name: 'other.test', onUpgrade });
    s = await session({
      bindings: [{ secret: 'api', hosts: ['bound.test'], ports: [bound.port], header: 'authorization', scheme: 'Bearer', placeholderPrefix: 'sk-test-', env: 'API_KEY' }],
      secrets: { api: REAL },
      hosts: { 'bound.test': bound.port, 'other.test': other.port },
    });
  });
  after(async () => {
    await s.close();
    await bound.close();
    await other.close();
  });

  /** Read until `pred` holds on everything received. */
  function readUntil(t: tls.TLSSocket, pred: (b: Buffer) => boolean, ms = 5000): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      let buf = Buffer.alloc(0);
      const timer = setTimeout(() => reject(new Error(`timed out; got ${buf.toString('latin1').slice(0, 400)}`)), ms);
      const done = () => {
        clearTimeout(timer);
        t.off('data', onData);
        resolve(buf);
      };
      const onData = (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (pred(buf)) done();
      };
      t.on('data', onData);
      t.on('close', done);
      t.on('end', done); // the harness's flow socket is half-open: a teardown arrives as an end
    });
  }

  const upgrade = (host: string, path: string, auth: string) =>
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${auth}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n`;

  it('a 103 Early Hints head quoting the injected value reaches the agent scrubbed', async () => {
    const t = await s.open('bound.test', bound.port);
    t.write(req('GET', '/hints', 'bound.test', { Authorization: `Bearer ${s.ph()}` }));
    const got = (await readUntil(t, (b) => b.includes('final'))).toString('latin1');
    t.destroy();
    assert.match(got, /^HTTP\/1\.1 103 /);
    assert.ok(got.includes(`x-echo: Bearer ${s.ph()}`), got.slice(0, 300));
    assert.ok(!got.includes(REAL), 'the real value is not in anything the agent got');
    assert.ok(s.records('cred.scrubbed').some((r) => r.status === 103 && r.in === 'headers'));
  });

  it('WebSocket to the bound host: the real value is injected; the 101 and every frame come back with the placeholder', async () => {
    const before = peers.length;
    const t = await s.open('bound.test', bound.port);
    t.write(upgrade('bound.test', '/ws-echo', s.ph()));
    const got = await readUntil(t, (b) => b.includes(Buffer.from([0x89]))); // the ping arrives last
    const peer = peers[before]!;
    assert.equal(peer.req.headers.authorization, `Bearer ${REAL}`, 'the bound host got the real value');
    assert.equal(peer.req.headers['sec-websocket-extensions'], undefined, 'no extension was offered upstream');
    const text = got.toString('latin1');
    assert.ok(!got.includes(REAL) && !got.includes(Buffer.from(REAL).subarray(7, 47)), 'no part of the real value reached the agent');
    const head = text.slice(0, text.indexOf('\r\n\r\n'));
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.ok(head.toLowerCase().includes(`x-echo: bearer ${s.ph().toLowerCase()}`), head);
    const frames = decoder('server');
    frames.push(got.subarray(head.length + 4));
    assert.deepEqual(
      frames.messages.map((m) => [m.opcode, m.payload.toString('latin1')]),
      [
        [1, `whole: Bearer ${s.ph()}`],
        [1, `cut: Bearer ${s.ph()}`],
        [2, `\x00\x01${s.ph()}`],
        [9, `Bearer ${s.ph()}`],
      ],
    );
    // The agent's own frames to the bound host pass (the placeholder there is no leak).
    t.write(encodeFrame(true, 1, Buffer.from(`hello with ${s.ph()}`), true));
    await until(() => peer.got.messages.length > 0);
    assert.equal(peer.got.messages[0]!.payload.toString(), `hello with ${s.ph()}`);
    t.destroy();
    const ws = s.records('cred.scrubbed').filter((r) => r.in === 'websocket');
    assert.ok(ws.length >= 4, `one record per scrubbed message or control frame: ${ws.length}`);
  });

  it('a reason phrase quoting the injected value (final response, 101) reaches the agent scrubbed', async () => {
    let t = await s.open('bound.test', bound.port);
    t.write(req('GET', '/reason', 'bound.test', { Authorization: `Bearer ${s.ph()}` }));
    let got = (await readUntil(t, (b) => b.includes('final'))).toString('latin1');
    t.destroy();
    assert.ok(got.startsWith(`HTTP/1.1 200 OK Bearer ${s.ph()}\r\n`), got.slice(0, 120));
    assert.ok(!got.includes(REAL));
    t = await s.open('bound.test', bound.port);
    t.write(upgrade('bound.test', '/ws-reason', s.ph()));
    got = (await readUntil(t, (b) => b.includes('\r\n\r\n'))).toString('latin1');
    t.destroy();
    assert.ok(got.startsWith(`HTTP/1.1 101 Switching Bearer ${s.ph()}\r\n`), got.slice(0, 120));
    assert.ok(!got.includes(REAL));
  });

  it('a value the server splits across two messages: the connection is cut before the second half', async () => {
    const t = await s.open('bound.test', bound.port);
    t.write(upgrade('bound.test', '/ws-split', s.ph()));
    const got = await readUntil(t, () => false, 5000).catch(() => assert.fail('the proxy did not end the connection'));
    t.destroy();
    const text = got.toString('latin1');
    assert.match(text, /one: /, 'the first message went through');
    const realTail = Buffer.from(`Bearer ${REAL}`).subarray(30);
    assert.ok(!got.includes(realTail.subarray(0, 12)), 'the second half never reached the agent');
    assert.ok(!text.includes(':two'));
    assert.ok(s.records('cred.refused').some((r) => /split a credential value across WebSocket messages/.test(String(r.reason))));
  });

  it('a server that negotiates an extension anyway is refused before the agent sees the 101', async () => {
    const t = await s.open('bound.test', bound.port);
    t.write(upgrade('bound.test', '/ws-ext', s.ph()));
    const got = (await readUntil(t, (b) => b.includes('\r\n\r\n'))).toString('latin1');
    t.destroy();
    assert.doesNotMatch(got, /^HTTP\/1\.1 101/);
    assert.match(got, /^HTTP\/1\.1 (403|502) /);
    assert.ok(!got.includes(REAL));
    assert.ok(s.records('cred.refused').some((r) => /WebSocket extension/.test(String(r.reason))));
  });

  it("the agent's frames to an unbound host are scanned: the placeholder cut across fragments ends the connection, and is revoked", async () => {
    const before = peers.length;
    const t = await s.open('other.test', other.port);
    t.write(upgrade('other.test', '/ws', 'nothing-here'));
    await readUntil(t, (b) => b.includes('\r\n\r\n'));
    const peer = peers[before]!;
    t.write(encodeFrame(true, 1, Buffer.from('harmless'), true));
    await until(() => peer.got.messages.length === 1);
    const ph = s.ph();
    t.write(encodeFrame(false, 1, Buffer.from(`exfil ${ph.slice(0, 15)}`), true));
    t.write(encodeFrame(true, 0, Buffer.from(`${ph.slice(15)} done`), true));
    // The proxy tears the connection down (the harness's flow socket is half-open: the end is what arrives).
    const ended = await new Promise<boolean>((r) => {
      if (t.destroyed || t.readableEnded) return r(true);
      const timer = setTimeout(() => r(false), 5000);
      const done = () => (clearTimeout(timer), r(true));
      t.once('end', done);
      t.once('close', done);
    });
    assert.ok(ended, 'the proxy ended the connection');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(peer.got.messages.length, 1, 'the message carrying the placeholder never completed upstream');
    // What did reach the server of that message: at most the bytes before the value.
    assert.ok(!peers.slice(before).some((p) => p.got.messages.some((m) => m.payload.includes(ph.slice(0, 15)))));
    const leak = s.records('cred.leak').find((r) => r.where === 'websocket');
    assert.ok(leak, 'a cred.leak record for the frame');
    assert.equal(leak.destination, `other.test:${other.port}`);
    assert.equal(leak.revoked, true);
    assert.equal(s.creds.issued()[0]!.revoked, true);
  });

  it("the agent's placeholder cut between two messages to an unbound host is found", async () => {
    // A session of its own: the test above revoked the first one's placeholder.
    const s2 = await session({
      bindings: [{ secret: 'api', hosts: ['bound.test'], ports: [bound.port], header: 'authorization', scheme: 'Bearer', placeholderPrefix: 'sk-test-', env: 'API_KEY' }],
      secrets: { api: REAL },
      hosts: { 'bound.test': bound.port, 'other.test': other.port },
      sessionId: 'sess-broker-2',
    });
    try {
      const before = peers.length;
      const t = await s2.open('other.test', other.port);
      t.write(upgrade('other.test', '/ws', 'nothing-here'));
      await readUntil(t, (b) => b.includes('\r\n\r\n'));
      const peer = peers[before]!;
      const ph = s2.ph();
      t.write(encodeFrame(true, 1, Buffer.from(`a ${ph.slice(0, 20)}`), true));
      t.write(encodeFrame(true, 1, Buffer.from(`${ph.slice(20)} b`), true));
      await readUntil(t, () => false, 5000).catch(() => assert.fail('the proxy did not end the connection'));
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(peer.got.messages.every((m) => !m.payload.includes(ph.slice(20))), 'the second half never reached the server');
      const leak = s2.records('cred.leak').find((r) => r.where === 'websocket');
      assert.ok(leak, 'a cred.leak record');
      assert.equal(leak.revoked, true);
    } finally {
      await s2.close();
    }
  });
});
