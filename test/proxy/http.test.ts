// The HTTP/1.1 relay, over terminated TLS and over plain HTTP: per-request
// decisions, keep-alive, bodies and their limits, smuggling refusals,
// response framing, WebSocket upgrades, and what a denial looks like.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type http from 'node:http';
import net from 'node:net';
import type tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import {
  connectThrough,
  exchange,
  fakeServer,
  openExplicit,
  openFlow,
  readResponses,
  rule,
  startProxy,
  syntheticFor,
  tlsOver,
  type FakeServer,
  type TestProxy,
} from './helpers.ts';

const handler: http.RequestListener = (req, res) => {
  const url = req.url ?? '/';
  if (url === '/echo' || url === '/v1/upload') {
    const h = createHash('sha256');
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      h.update(c);
      if (url === '/echo') res.write(c);
    });
    req.on('end', () => {
      if (url === '/echo') res.end();
      else res.end(`got ${n} ${h.digest('hex')}`);
    });
    if (url === '/echo') res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
    return;
  }
  if (url === '/r/204') {
    res.writeHead(204);
    res.end();
    return;
  }
  if (url === '/r/304') {
    res.writeHead(304, { ETag: '"x"' });
    res.end();
    return;
  }
  if (url === '/r/chunked') {
    res.write('part1-');
    setTimeout(() => res.end('part2'), 10);
    return;
  }
  if (url === '/r/hints') {
    res.writeEarlyHints({ link: '</style.css>; rel=preload' });
    res.end('after hints');
    return;
  }
  if (url === '/r/headers') {
    res.end(JSON.stringify(req.headers));
    return;
  }
  const body = `ok ${req.method} ${url}`;
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
};

const wsUpgrade = (_req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => {
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: test\r\n\r\n');
  if (head.length > 0) socket.write(head);
  socket.pipe(socket);
};

for (const mode of ['tls', 'http'] as const) {
  describe(`HTTP relay over ${mode === 'tls' ? 'terminated TLS' : 'plain HTTP'}`, () => {
    let tp: TestProxy;
    let srv: FakeServer;
    let addr: string;
    before(async () => {
      srv = await fakeServer(handler, { tls: mode === 'tls', name: 'api.test', onUpgrade: wsUpgrade });
      const p = [srv.port];
      tp = await startProxy({
        rules: [
          rule('allow', 'api.test', p, { methods: ['GET', 'HEAD'], paths: ['/v1/items', '/r/'] }),
          rule('deny', 'api.test', p, { paths: ['/v1/items/secret'] }),
          rule('allow', 'api.test', p, { methods: ['POST'], paths: ['/v1/upload'], maxBodyBytes: 16 }),
          rule('allow', 'api.test', p, { methods: ['POST', 'PUT'], paths: ['/echo'] }),
          rule('allow', 'api.test', p, { methods: ['GET'], paths: ['/ws'] }),
          rule('ask', 'api.test', p, { paths: ['/v1/ask'] }),
          rule('allow', '127.0.0.1', []),
        ],
        hosts: { 'api.test': ['127.0.0.1'] },
      });
      addr = await syntheticFor(tp.socketPath, 'api.test');
    });
    after(async () => {
      await tp.close();
      await srv.close();
    });

    const open = async (): Promise<net.Socket | tls.TLSSocket> => {
      const s = await openFlow(tp.socketPath, addr, srv.port);
      return mode === 'tls' ? tlsOver(s, 'api.test', tp.ca.caPem) : s;
    };
    const one = async (raw: string) => {
      const c = await open();
      const p = readResponses(c, 1);
      c.write(raw);
      const r = (await p)[0]!;
      c.destroy();
      return r;
    };
    const seenUrls = () => srv.seen.map((x) => `${x.method} ${x.url}`);

    it('decides method and path per request', async () => {
      assert.equal((await one('GET /v1/items HTTP/1.1\r\nHost: api.test\r\n\r\n')).status, 200);
      assert.equal((await one('DELETE /v1/items HTTP/1.1\r\nHost: api.test\r\n\r\n')).status, 403);
      assert.equal((await one('GET /v1/other HTTP/1.1\r\nHost: api.test\r\n\r\n')).status, 403);
      assert.equal((await one('get /v1/items HTTP/1.1\r\nHost: api.test\r\n\r\n')).status, 403);
      const secret = await one('GET /v1/items/secret HTTP/1.1\r\nHost: api.test\r\n\r\n');
      assert.equal(secret.status, 403);
      assert.match(secret.body.toString(), /policy denies it/);
      assert.ok(!seenUrls().includes('DELETE /v1/items'));
      assert.ok(!seenUrls().includes('GET /v1/items/secret'));
    });

    it('an ask rule is a denial that says approval is needed', async () => {
      const r = await one('GET /v1/ask HTTP/1.1\r\nHost: api.test\r\n\r\n');
      assert.equal(r.status, 403);
      assert.match(r.body.toString(), /needs approval \(approvals are not available yet\)/);
      const rec = tp.records.find((x) => x.type === 'net.request' && x.data.path === '/v1/ask');
      assert.equal(rec?.data.decision, 'ask');
    });

    it('the 403 says what and how to ask, without policy internals', async () => {
      const r = await one('GET /v1/other?token=abc HTTP/1.1\r\nHost: api.test\r\n\r\n');
      const body = r.body.toString();
      assert.equal(r.status, 403);
      assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
      assert.match(body, new RegExp(`GET ${mode === 'tls' ? 'https' : 'http'}://api\\.test:${srv.port}/v1/other`));
      assert.match(body, /Why: no rule of this session's network policy allows it/);
      assert.match(body, /ask the user to allow api\.test on port/);
      assert.doesNotMatch(body, /rule #|127\.0\.0\.1|token=abc/);
      const rec = tp.records.find((x) => x.type === 'net.request' && x.data.path === '/v1/other' && x.data.queryBytes === 9);
      assert.ok(rec, 'the audit record keeps the path, not the query');
      assert.match(String(rec.data.reason), /no rule allows/);
    });

    it('keep-alive: pipelined requests decided one by one', async () => {
      const before = srv.seen.length;
      const c = await open();
      const p = readResponses(c, 5);
      c.write(
        'GET /v1/items HTTP/1.1\r\nHost: api.test\r\n\r\n' +
          'GET /v1/nope HTTP/1.1\r\nHost: api.test\r\n\r\n' +
          'GET /r/a HTTP/1.1\r\nHost: api.test\r\n\r\n' +
          'DELETE /v1/items HTTP/1.1\r\nHost: api.test\r\n\r\n' +
          'GET /r/b HTTP/1.1\r\nHost: api.test\r\n\r\n',
      );
      const rs = await p;
      assert.deepEqual(rs.map((r) => r.status), [200, 403, 200, 403, 200]);
      assert.deepEqual(rs.map((r) => r.body.toString().startsWith('ok')), [true, false, true, false, true]);
      assert.equal(srv.seen.length - before, 3);
      c.end();
      const rec = await tp.flowRecord((d) => d.requests === 5);
      assert.equal(rec.requestsDenied, 2);
      assert.equal(rec.protocol, mode === 'tls' ? 'tls-terminate' : 'http');
      assert.equal(rec.decision, 'per-request');
    });

    it('maxBodyBytes: within is relayed, over is 413 (Content-Length and chunked)', async () => {
      const ok = await one('POST /v1/upload HTTP/1.1\r\nHost: api.test\r\nContent-Length: 5\r\n\r\nhello');
      assert.equal(ok.status, 200);
      assert.match(ok.body.toString(), /^got 5 /);
      const before = srv.seen.length;
      const big = await one(`POST /v1/upload HTTP/1.1\r\nHost: api.test\r\nContent-Length: 17\r\n\r\n${'x'.repeat(17)}`);
      assert.equal(big.status, 413);
      assert.equal(srv.seen.length, before, 'nothing reached the server');
      const chunked = await one(`POST /v1/upload HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n9\r\n123456789\r\n0\r\n\r\n`);
      assert.equal(chunked.status, 413);
      const chunkedOk = await one(`POST /v1/upload HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n`);
      assert.equal(chunkedOk.status, 200);
      assert.match(chunkedOk.body.toString(), /^got 16 /);
    });

    it('Expect: 100-continue with a chunked body', async () => {
      const c = await open();
      const got100 = new Promise<string>((resolve) => {
        let b = '';
        const on = (d: Buffer) => {
          b += d.toString('latin1');
          if (b.includes('\r\n\r\n')) {
            c.off('data', on);
            resolve(b);
          }
        };
        c.on('data', on);
      });
      c.write('POST /echo HTTP/1.1\r\nHost: api.test\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n');
      assert.match(await got100, /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
      const p = readResponses(c, 1);
      c.write('5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
      const r = (await p)[0]!;
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'hello world');
      c.destroy();
    });

    it('denied requests with Expect get a final 403 without 100 and nothing upstream', async () => {
      const before = srv.seen.length;
      const r = await one('POST /v1/nope HTTP/1.1\r\nHost: api.test\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n');
      assert.equal(r.status, 403);
      assert.equal(srv.seen.length, before);
    });

    it('refuses ambiguous framing (CL.TE, TE.CL, duplicate CL, odd TE) with 400', async () => {
      const before = srv.seen.length;
      const bad = [
        'POST /echo HTTP/1.1\r\nHost: api.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX',
        'POST /echo HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n',
        'POST /echo HTTP/1.1\r\nHost: api.test\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
        'POST /echo HTTP/1.1\r\nHost: api.test\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc',
        'POST /echo HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n',
        'POST /echo HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n',
        'POST /echo HTTP/1.1\r\nHost: api.test\r\nTransfer_Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc',
        'GET /v1/items HTTP/1.1\r\nHost: api.test\r\n Folded: yes\r\n\r\n',
        'GET /v1/items HTTP/1.1\nHost: api.test\n\n',
      ];
      for (const raw of bad) {
        const c = await open();
        const out = (await exchange(c, raw)).toString('latin1');
        assert.match(out, /^HTTP\/1\.1 (400|501) /, JSON.stringify(raw));
        assert.match(out, /Connection: close/);
      }
      assert.equal(srv.seen.length, before, 'no smuggling attempt reached the server');
    });

    it('a bad chunk inside an allowed body aborts the request', async () => {
      const r = await one('POST /echo HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n');
      assert.ok(r.status === 400 || r.status === 200, String(r.status));
    });

    it('response framing: HEAD, 204, 304, chunked, 1xx, then keep-alive still works', async () => {
      const c = await open();
      const p = readResponses(c, 6, 10_000, 1);
      c.write(
        'HEAD /r/x HTTP/1.1\r\nHost: api.test\r\n\r\n' +
          'GET /r/204 HTTP/1.1\r\nHost: api.test\r\n\r\n' +
          'GET /r/304 HTTP/1.1\r\nHost: api.test\r\n\r\n' +
          'GET /r/chunked HTTP/1.1\r\nHost: api.test\r\n\r\n' +
          'GET /r/hints HTTP/1.1\r\nHost: api.test\r\n\r\n' +
          'GET /r/last HTTP/1.1\r\nHost: api.test\r\n\r\n',
      );
      const rs = await p;
      assert.deepEqual(rs.map((r) => r.status), [200, 204, 304, 200, 200, 200]);
      assert.equal(rs[0]!.headers['content-length'], String('ok HEAD /r/x'.length));
      assert.equal(rs[3]!.body.toString(), 'part1-part2');
      assert.equal(rs[3]!.headers['transfer-encoding'], 'chunked');
      assert.equal(rs[4]!.body.toString(), 'after hints');
      assert.equal(rs[5]!.body.toString(), 'ok GET /r/last');
      c.destroy();
    });

    it('hop-by-hop headers are not forwarded; Proxy-Authorization never leaves', async () => {
      const r = await one('GET /r/headers HTTP/1.1\r\nHost: api.test\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nProxy-Authorization: Basic eA==\r\nTE: trailers\r\nX-Keep: 2\r\n\r\n');
      const h = JSON.parse(r.body.toString()) as Record<string, string>;
      assert.equal(h['x-keep'], '2');
      assert.equal(h['x-hop'], undefined);
      assert.equal(h['proxy-authorization'], undefined);
      assert.equal(h.te, undefined);
    });

    it('HTTP/1.0 without Host is relayed (Host added) and the connection closes', async () => {
      const c = await open();
      const out = (await exchange(c, 'GET /v1/items HTTP/1.0\r\n\r\n')).toString('latin1');
      assert.match(out, /^HTTP\/1\.1 200 /);
      assert.match(out, /ok GET \/v1\/items$/);
    });

    it('h2c upgrade is refused; HTTP/2 prior knowledge is closed', async () => {
      const before = srv.seen.length;
      const h2c = await one('GET /v1/items HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n');
      assert.equal(h2c.status, 400);
      assert.match(h2c.body.toString(), /h2c/);
      const c = await open();
      const out = await exchange(c, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00');
      assert.equal(out.length, 0);
      assert.equal(srv.seen.length, before);
    });

    it('a nested CONNECT inside the connection is refused', async () => {
      const r = await one('CONNECT other.test:443 HTTP/1.1\r\nHost: api.test\r\n\r\n');
      assert.equal(r.status, 400);
    });

    it('WebSocket: the upgrade request is judged, then binary frames are relayed both ways', async () => {
      const c = await open();
      const head = new Promise<string>((resolve) => {
        let b = Buffer.alloc(0);
        const on = (d: Buffer) => {
          b = Buffer.concat([b, d]);
          const end = b.indexOf('\r\n\r\n');
          if (end >= 0) {
            c.off('data', on);
            if (b.length > end + 4) c.unshift(b.subarray(end + 4));
            resolve(b.subarray(0, end).toString('latin1'));
          }
        };
        c.on('data', on);
      });
      c.write('GET /ws HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
      assert.match(await head, /^HTTP\/1\.1 101 /);
      const frame = Buffer.from([0x82, 0x84, 1, 2, 3, 4, 0xff ^ 1, 0x00 ^ 2, 0x80 ^ 3, 0x0d ^ 4, 0x00, 0xff]);
      const echoed = await new Promise<Buffer>((resolve) => {
        let b = Buffer.alloc(0);
        c.on('data', (d: Buffer) => {
          b = Buffer.concat([b, d]);
          if (b.length >= frame.length) resolve(b);
        });
        c.write(frame);
      });
      assert.deepEqual(echoed, frame);
      c.end();
      const rec = await tp.flowRecord((d) => d.protocol === 'websocket');
      assert.equal(rec.host, 'api.test');
      assert.ok((rec.bytesUp as number) > frame.length);
    });

    it('WebSocket: a denied upgrade request gets 403 and never reaches the server', async () => {
      const before = srv.seen.length;
      const r = await one('GET /ws-denied HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
      assert.equal(r.status, 403);
      assert.equal(srv.seen.length, before);
    });

    it('every request has a net.request record with method, path, status, decision and bytes', async () => {
      await one('POST /echo HTTP/1.1\r\nHost: api.test\r\nContent-Length: 4\r\nAuthorization: Bearer s3cr3t\r\nCookie: a=b\r\n\r\nping');
      const rec = tp.records.filter((x) => x.type === 'net.request' && x.data.path === '/echo' && x.data.method === 'POST').at(-1)!;
      assert.equal(rec.data.status, 200);
      assert.equal(rec.data.decision, 'allow');
      assert.equal(rec.data.bytesUp, 4);
      assert.equal(rec.data.bytesDown, 4);
      assert.deepEqual(rec.data.headers, ['host', 'content-length', 'authorization', 'cookie']);
      const all = JSON.stringify(tp.records);
      assert.doesNotMatch(all, /s3cr3t|a=b/);
    });
  });
}

describe('HTTP relay: close-delimited responses and explicit-mode TLS', () => {
  it('a response without length is relayed until the server closes', async () => {
    const raw = net.createServer({ allowHalfOpen: true }, (s) => {
      s.once('data', () => {
        s.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close body');
      });
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    const port = (raw.address() as net.AddressInfo).port;
    const tp = await startProxy({ rules: [rule('allow', 'raw.test', [port]), rule('allow', '127.0.0.1', [])], hosts: { 'raw.test': ['127.0.0.1'] } });
    try {
      const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'raw.test'), port);
      const out = (await exchange(s, 'GET / HTTP/1.1\r\nHost: raw.test\r\n\r\n')).toString('latin1');
      assert.match(out, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(out, /Connection: close\r\n/);
      assert.match(out, /\r\n\r\nuntil-close body$/);
    } finally {
      await tp.close();
      raw.close();
    }
  });

  it('CONNECT then terminated TLS: requests judged inside the tunnel', async () => {
    const srv = await fakeServer((req, res) => res.end(`in ${req.url}`), { name: 'api.test' });
    const tp = await startProxy({ rules: [rule('allow', 'api.test', [srv.port], { paths: ['/in'] }), rule('allow', '127.0.0.1', [])], hosts: { 'api.test': ['127.0.0.1'] } });
    try {
      const s = await openExplicit(tp.socketPath);
      assert.equal((await connectThrough(s, `api.test:${srv.port}`)).status, 200);
      const t = await tlsOver(s, 'api.test', tp.ca.caPem);
      const p = readResponses(t, 2);
      t.write('GET /in HTTP/1.1\r\nHost: api.test\r\n\r\nGET /out HTTP/1.1\r\nHost: api.test\r\n\r\n');
      assert.deepEqual((await p).map((r) => r.status), [200, 403]);
      t.destroy();
      const rec = await tp.flowRecord((d) => d.mode === 'explicit');
      assert.equal(rec.protocol, 'tls-terminate');
    } finally {
      await tp.close();
      await srv.close();
    }
  });

  it('a client that offers only h2 cannot terminate (ALPN is pinned to http/1.1)', async () => {
    const srv = await fakeServer((_req, res) => res.end('x'), { name: 'api.test' });
    const tp = await startProxy({ rules: [rule('allow', 'api.test', [srv.port], { paths: ['/'] }), rule('allow', '127.0.0.1', [])], hosts: { 'api.test': ['127.0.0.1'] } });
    try {
      const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'api.test'), srv.port);
      let refused: boolean;
      try {
        const t = await tlsOver(s, 'api.test', tp.ca.caPem, ['h2']);
        refused = t.alpnProtocol !== 'h2';
        // Even if the handshake completed without ALPN, an h2 preface would be refused.
        const out = await exchange(t, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
        assert.equal(out.length, 0);
      } catch {
        refused = true;
      }
      assert.equal(refused, true);
      assert.equal(srv.seen.length, 0);
    } finally {
      await tp.close();
      await srv.close();
    }
  });
});


describe('HTTP relay: connection handling', () => {
  let srv: FakeServer;
  let tp: TestProxy;
  before(async () => {
    srv = await fakeServer((req, res) => {
      const body = `conn ${req.url}`;
      res.setHeader('Content-Length', body.length);
      res.end(body);
    }, { name: 'api.test' });
    tp = await startProxy({ rules: [rule('allow', 'api.test', [srv.port], { paths: ['/'] }), rule('allow', 'b.test', [srv.port], { paths: ['/'] }), rule('allow', '127.0.0.1', [])], hosts: { 'api.test': ['127.0.0.1'], 'b.test': ['127.0.0.1'] } });
  });
  after(async () => {
    await tp.close();
    await srv.close();
  });

  it('a client that half-closes right after its request still gets the response', async () => {
    const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'api.test'), srv.port);
    const t = await tlsOver(s, 'api.test', tp.ca.caPem);
    const out = (await exchange(t, 'GET /half HTTP/1.1\r\nHost: api.test\r\n\r\n', 5000, true)).toString('latin1');
    assert.match(out, /^HTTP\/1\.1 200 /);
    assert.match(out, /conn \/half$/);
  });

  it('reuses one upstream connection for the requests of a flow', async () => {
    const before = srv.seen.length;
    const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'api.test'), srv.port, 41000);
    const t = await tlsOver(s, 'api.test', tp.ca.caPem);
    const p = readResponses(t, 3);
    t.write('GET /1 HTTP/1.1\r\nHost: api.test\r\n\r\nGET /2 HTTP/1.1\r\nHost: api.test\r\n\r\nGET /3 HTTP/1.1\r\nHost: api.test\r\n\r\n');
    assert.deepEqual((await p).map((r) => r.body.toString()), ['conn /1', 'conn /2', 'conn /3']);
    assert.equal(srv.seen.length - before, 3);
    t.destroy();
  });

  it('explicit mode: absolute-form requests to two hosts on one connection are each judged and routed', async () => {
    const plain = await fakeServer((req, res) => res.end(`plain ${req.headers.host}`), { tls: false });
    const tp2 = await startProxy({ rules: [rule('allow', 'a.test', [plain.port]), rule('allow', 'b.test', [plain.port], { methods: ['POST'] }), rule('allow', '127.0.0.1', [])], hosts: { 'a.test': ['127.0.0.1'], 'b.test': ['127.0.0.1'] } });
    try {
      const s = await openExplicit(tp2.socketPath);
      const p = readResponses(s, 3);
      s.write(
        `GET http://a.test:${plain.port}/ HTTP/1.1\r\nHost: a.test:${plain.port}\r\n\r\n` +
          `GET http://b.test:${plain.port}/ HTTP/1.1\r\nHost: b.test:${plain.port}\r\n\r\n` +
          `POST http://b.test:${plain.port}/ HTTP/1.1\r\nHost: b.test:${plain.port}\r\nContent-Length: 0\r\n\r\n`,
      );
      const rs = await p;
      assert.deepEqual(rs.map((r) => r.status), [200, 403, 200]);
      assert.equal(rs[2]!.body.toString(), `plain b.test:${plain.port}`);
      s.destroy();
      const reqs = tp2.records.filter((r) => r.type === 'net.request').map((r) => `${r.data.host} ${r.data.decision}`);
      assert.deepEqual(reqs, ['a.test allow', 'b.test deny', 'b.test allow']);
    } finally {
      await tp2.close();
      await plain.close();
    }
  });

  it('a throwing audit callback never breaks a flow (counted in stats)', async () => {
    const tp3 = await startProxy({ rules: [rule('allow', 'api.test', [srv.port], { paths: ['/'] }), rule('allow', '127.0.0.1', [])], hosts: { 'api.test': ['127.0.0.1'] } }, {
      audit: () => {
        throw new Error('disk full');
      },
    });
    try {
      const s = await openFlow(tp3.socketPath, await syntheticFor(tp3.socketPath, 'api.test'), srv.port);
      const t = await tlsOver(s, 'api.test', tp3.ca.caPem);
      const p = readResponses(t, 1);
      t.write('GET /audit HTTP/1.1\r\nHost: api.test\r\n\r\n');
      assert.equal((await p)[0]!.status, 200);
      t.destroy();
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(tp3.proxy.stats().auditErrors >= 2);
    } finally {
      await tp3.close();
    }
  });
});
