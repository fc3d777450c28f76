// The proxy hooks the broker relies on, held to their contract with small
// inspectors of their own: query edits only (the path the policy decided on
// is fixed), a length-preserving body transform keeps Content-Length and
// cannot smuggle bytes past it, bufferBody is bounded, a transform's denial
// reaches the agent as a 403 - and the broker never injects over plain HTTP.

import assert from 'node:assert/strict';
import { Transform } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { Inspector } from '../../src/proxy/index.ts';
import { fakeServer, openFlow, readResponses, rule, startProxy, syntheticFor, type FakeServer } from '../proxy/helpers.ts';
import { req, session, type Received } from './helpers.ts';

describe('proxy hooks for inspectors', () => {
  let srv: FakeServer;
  const bodies: Array<{ url: string; headers: Record<string, unknown>; body: string; complete: boolean }> = [];
  before(async () => {
    srv = await fakeServer(
      (rq, res) => {
        const rec = { url: rq.url!, headers: rq.headers, body: '', complete: false };
        bodies.push(rec);
        rq.on('data', (c: Buffer) => (rec.body += c.toString()));
        rq.on('end', () => {
          rec.complete = true;
          res.end('ok');
        });
        rq.on('error', () => {});
      },
      { tls: false },
    );
  });
  after(async () => {
    await srv.close();
  });

  const run = async (inspector: Inspector, raw: string) => {
    const tp = await startProxy({ rules: [rule('allow', 'plain.test', [srv.port]), rule('allow', '127.0.0.1', [])], hosts: { 'plain.test': ['127.0.0.1'] } }, { inspectors: [inspector] });
    try {
      const addr = await syntheticFor(tp.socketPath, 'plain.test');
      const s = await openFlow(tp.socketPath, addr, srv.port);
      s.on('error', () => {});
      const p = readResponses(s, 1);
      s.write(raw);
      const r = (await p)[0]!;
      s.destroy();
      return r;
    } finally {
      await tp.close();
    }
  };
  const base = { name: 'hook', wants: () => true };

  it('the query may change, the path may not', async () => {
    let r = await run({ ...base, onRequest: (q) => void (q.path = `${q.path}&added=1`) }, req('GET', '/p?a=1', 'plain.test'));
    assert.equal(r.status, 200);
    assert.equal(bodies.at(-1)!.url, '/p?a=1&added=1');
    r = await run({ ...base, onRequest: (q) => void (q.path = '/admin?a=1') }, req('GET', '/p?a=1', 'plain.test'));
    assert.equal(r.status, 403);
    r = await run({ ...base, onRequest: (q) => void (q.path = '/p?a=1 HTTP/1.1\r\nX: y') }, req('GET', '/p?a=1', 'plain.test'));
    assert.equal(r.status, 403);
  });

  it('a length-preserving transform keeps Content-Length; breaking the promise cuts the request', async () => {
    const upper = () => Object.assign(new Transform({ transform: (c: Buffer, _e, cb) => cb(null, Buffer.from(c.toString().toUpperCase())) }), { preservesLength: true });
    let r = await run({ ...base, requestBody: upper }, req('POST', '/u', 'plain.test', {}, 'hello'));
    assert.equal(r.status, 200);
    assert.equal(bodies.at(-1)!.headers['content-length'], '5');
    assert.equal(bodies.at(-1)!.body, 'HELLO');
    const liar = () => Object.assign(new Transform({ transform: (c: Buffer, _e, cb) => cb(null, Buffer.concat([c, Buffer.from('\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n')])) }), { preservesLength: true });
    const n = bodies.length;
    r = await run({ ...base, requestBody: liar }, req('POST', '/u', 'plain.test', {}, 'hello'));
    assert.notEqual(r.status, 200);
    assert.ok(!bodies.slice(n).some((b) => b.url === '/smuggled'), 'no byte past Content-Length');
  });

  it('bufferBody: the body is in onRequest; a larger one is refused', async () => {
    let seen = '';
    const ins: Inspector = { ...base, bufferBody: () => 10, onRequest: (q) => void (seen = q.body?.toString() ?? 'none') };
    let r = await run(ins, req('POST', '/b', 'plain.test', { 'Transfer-Encoding': 'chunked' }, '5\r\nhello\r\n0\r\n\r\n'));
    assert.equal(r.status, 200);
    assert.equal(seen, 'hello');
    assert.equal(bodies.at(-1)!.body, 'hello');
    r = await run(ins, req('POST', '/b', 'plain.test', {}, 'x'.repeat(11)));
    assert.equal(r.status, 403);
    assert.match(r.body.toString(), /larger than 10 bytes/);
  });

  it("a transform's denial is the agent's 403, with its reason", async () => {
    const deny = () =>
      new Transform({
        transform: (_c, _e, cb) => cb(Object.assign(new Error('nope'), { deny: 'the body carried something it must not' })),
      });
    const r = await run({ ...base, requestBody: deny }, req('POST', '/d', 'plain.test', {}, 'data'));
    assert.equal(r.status, 403);
    assert.match(r.body.toString(), /the body carried something it must not/);
  });
});

describe('the broker over plain HTTP', () => {
  it('never injects a real value into a cleartext request', async () => {
    const plain: Received[] = [];
    const srv = await fakeServer((rq, res) => {
      plain.push({ method: rq.method!, url: rq.url!, headers: rq.headers, rawHeaders: rq.rawHeaders, body: Buffer.alloc(0), aborted: false });
      res.end('ok');
    }, { tls: false });
    const s = await session({ bindings: [{ secret: 'k', hosts: ['api.test'], ports: [srv.port] }], secrets: { k: 'real-value-0123456789' }, hosts: { 'api.test': srv.port } });
    try {
      const addr = await syntheticFor(s.tp.socketPath, 'api.test');
      const c = await openFlow(s.tp.socketPath, addr, srv.port);
      const p = readResponses(c, 1);
      c.write(req('GET', '/', 'api.test', { Authorization: `Bearer ${s.ph(0)}` }));
      const r = (await p)[0]!;
      c.destroy();
      assert.equal(r.status, 403);
      assert.match(r.body.toString(), /only sent over TLS/);
      assert.equal(plain.length, 0);
    } finally {
      await s.close();
      await srv.close();
    }
  });
});
