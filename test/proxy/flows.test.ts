// Flow handling around the relay: splice or terminate, inspectors, raw TCP
// with half-close, server-speaks-first protocols, reload, reserved
// addresses, concurrency and fault isolation.

import assert from 'node:assert/strict';
import net from 'node:net';
import { Transform } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  clientHello,
  connectThrough,
  exchange,
  fakeServer,
  headerInspector,
  openExplicit,
  openFlow,
  readResponses,
  rule,
  startProxy,
  syntheticFor,
  tlsOver,
  type FakeServer,
} from './helpers.ts';
import type { Inspector } from '../../src/proxy/index.ts';

const echoHeaders = () =>
  fakeServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res.end(JSON.stringify({ url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() })));
  });

describe('splice or terminate', () => {
  let srv: FakeServer;
  before(async () => {
    srv = await echoHeaders();
  });
  after(() => srv.close());

  it('an allow rule without content conditions splices: the client sees the real server', async () => {
    const tp = await startProxy({ rules: [rule('allow', 'api.test', [srv.port]), rule('allow', '127.0.0.1', [])], hosts: { 'api.test': ['127.0.0.1'] } });
    try {
      const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'api.test'), srv.port);
      const { upstreamCa } = await import('./helpers.ts');
      const t = await tlsOver(s, 'api.test', (await upstreamCa()).caPem);
      assert.match(String(t.getPeerCertificate().issuer.CN ?? ''), /test upstream/);
      const p = readResponses(t, 1);
      t.write('GET /spliced HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n');
      assert.equal((await p)[0]!.status, 200);
      t.end();
      const rec = await tp.flowRecord();
      assert.equal(rec.protocol, 'tls-splice');
      assert.equal(rec.decision, 'allow');
      assert.equal(rec.rule, 0);
      assert.equal(rec.sni, 'api.test');
      assert.equal(rec.dialed, `127.0.0.1:${srv.port}`);
      assert.equal(rec.requests, 0, 'a spliced flow has no visible requests');
      assert.ok((rec.bytesUp as number) > 200 && (rec.bytesDown as number) > 200);
    } finally {
      await tp.close();
    }
  });

  it('a rule with paths needs content: the client sees the session CA', async () => {
    const tp = await startProxy({ rules: [rule('allow', 'api.test', [srv.port], { paths: ['/x'] }), rule('allow', '127.0.0.1', [])], hosts: { 'api.test': ['127.0.0.1'] } });
    try {
      const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'api.test'), srv.port);
      const t = await tlsOver(s, 'api.test', tp.ca.caPem);
      assert.match(String(t.getPeerCertificate().issuer.CN ?? ''), /session CA/);
      const rec = tp.flowRecord();
      t.destroy();
      assert.equal((await rec).protocol, 'tls-terminate');
    } finally {
      await tp.close();
    }
  });

  it('a denied host is terminated only to answer 403 over TLS; nothing is dialled', async () => {
    const tp = await startProxy({ rules: [rule('deny', 'api.test', [srv.port]), rule('allow', '*.other.test', [443])], hosts: { 'api.test': ['127.0.0.1'] } });
    try {
      const before = srv.seen.length;
      const s = await openFlow(tp.socketPath, '127.0.0.1', srv.port);
      const t = await tlsOver(s, undefined, tp.ca.caPem);
      const p = readResponses(t, 1);
      t.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\n\r\n`);
      const r = (await p)[0]!;
      assert.equal(r.status, 403);
      assert.equal(r.headers.connection, 'close');
      const rec = await tp.flowRecord();
      assert.equal(rec.decision, 'deny');
      assert.equal(rec.dialed, null);
      assert.equal(srv.seen.length, before);
    } finally {
      await tp.close();
    }
  });

  it('an inspector that wants the flow forces termination and edits headers', async () => {
    const tp = await startProxy(
      { rules: [rule('allow', 'api.test', [srv.port]), rule('allow', '127.0.0.1', [])], hosts: { 'api.test': ['127.0.0.1'] } },
      { inspectors: [headerInspector(['api.test'])] },
    );
    try {
      const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'api.test'), srv.port);
      const t = await tlsOver(s, 'api.test', tp.ca.caPem);
      const p = readResponses(t, 1);
      t.write('GET /inspected HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n');
      const body = JSON.parse((await p)[0]!.body.toString());
      assert.equal(body.headers['x-cordon-test'], 'inspected');
      const rec = await tp.flowRecord();
      assert.equal(rec.protocol, 'tls-terminate');
      assert.match(String(rec.reason), /inspected by test-header/);
    } finally {
      await tp.close();
    }
  });

  it('inspectors: deny, illegal edits, throws and body transforms', async () => {
    const upper = (): Transform =>
      new Transform({
        transform(c: Buffer, _e, cb) {
          cb(null, Buffer.from(c.toString().toUpperCase()));
        },
      });
    const inspector: Inspector = {
      name: 'test-broker',
      wants: () => true,
      onRequest(req) {
        if (req.path === '/deny') return { deny: 'a foreign credential was sent to this host' };
        if (req.path === '/bad-edit') req.headers.push(['Host', 'evil.test']);
        if (req.path === '/inject') req.headers.push(['X-A', 'b\r\nX-Injected: 1']);
        if (req.path === '/throw') throw new Error('boom');
      },
      requestBody: (req) => (req.path === '/upper' ? upper() : null),
      responseBody: (res) => (res.request.path === '/upper' ? upper() : null),
    };
    const tp = await startProxy({ rules: [rule('allow', 'api.test', [srv.port]), rule('allow', '127.0.0.1', [])], hosts: { 'api.test': ['127.0.0.1'] } }, { inspectors: [inspector] });
    try {
      const addr = await syntheticFor(tp.socketPath, 'api.test');
      const req = async (raw: string) => {
        const t = await tlsOver(await openFlow(tp.socketPath, addr, srv.port), 'api.test', tp.ca.caPem);
        const p = readResponses(t, 1);
        t.write(raw);
        const r = (await p)[0]!;
        t.destroy();
        return r;
      };
      const before = srv.seen.length;
      const d = await req('GET /deny HTTP/1.1\r\nHost: api.test\r\n\r\n');
      assert.equal(d.status, 403);
      assert.match(d.body.toString(), /a foreign credential was sent to this host/);
      assert.equal((await req('GET /bad-edit HTTP/1.1\r\nHost: api.test\r\n\r\n')).status, 403);
      assert.equal((await req('GET /inject HTTP/1.1\r\nHost: api.test\r\n\r\n')).status, 403);
      assert.equal((await req('GET /throw HTTP/1.1\r\nHost: api.test\r\n\r\n')).status, 403);
      assert.equal(srv.seen.length, before, 'no refused request reached the server');
      const up = await req('POST /upper HTTP/1.1\r\nHost: api.test\r\nContent-Length: 11\r\n\r\nhello world');
      assert.equal(up.status, 200);
      assert.equal(up.headers['transfer-encoding'], 'chunked');
      const echoed = JSON.parse(up.body.toString().toLowerCase());
      assert.equal(echoed.body, 'hello world');
      assert.equal(echoed.headers['transfer-encoding'], 'chunked', 'a transformed request body goes upstream chunked');
      assert.match(up.body.toString(), /"BODY":"HELLO WORLD"/);
    } finally {
      await tp.close();
    }
  });

  it('a hello offering ECH is never spliced (its hidden name could front another origin)', async () => {
    const tp = await startProxy({ rules: [rule('allow', 'api.test', [srv.port]), rule('allow', '127.0.0.1', [])], hosts: { 'api.test': ['127.0.0.1'] } });
    try {
      const hello = clientHello('api.test');
      // Append an encrypted_client_hello extension (0xfe0d) to the hand-made hello.
      const ech = Buffer.from([0xfe, 0x0d, 0x00, 0x01, 0x00]);
      const body = Buffer.concat([hello.subarray(5), ech]);
      body.writeUIntBE(body.length - 4, 1, 3);
      const extLenAt = 4 + 2 + 32 + 1 + 32 + 2 + 4 + 2;
      body.writeUInt16BE(body.readUInt16BE(extLenAt) + ech.length, extLenAt);
      const rec = Buffer.concat([Buffer.from([22, 3, 1, body.length >> 8, body.length & 0xff]), body]);
      const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'api.test'), srv.port);
      await exchange(s, rec, 2000);
      const r = await tp.flowRecord();
      assert.equal(r.protocol, 'tls-terminate');
      assert.equal(r.dialed, null);
    } finally {
      await tp.close();
    }
  });
});

describe('raw TCP', () => {
  let echo: net.Server;
  let banner: net.Server;
  let echoPort: number;
  let bannerPort: number;
  let echoConnections = 0;
  before(async () => {
    echo = net.createServer({ allowHalfOpen: true }, (s) => {
      echoConnections++;
      s.on('error', () => {});
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      // Echo only after the client half-closes: proves half-close travels both ways.
      s.on('end', () => s.end(Buffer.concat([Buffer.from('echo:'), ...chunks])));
    });
    banner = net.createServer((s) => {
      s.on('error', () => {});
      s.write('220 banner.test ready\r\n');
      s.on('data', (c: Buffer) => s.end(`250 got ${c.toString().trim()}\r\n`));
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => banner.listen(0, '127.0.0.1', r));
    echoPort = (echo.address() as net.AddressInfo).port;
    bannerPort = (banner.address() as net.AddressInfo).port;
  });
  after(() => {
    echo.close();
    banner.close();
  });

  it('is relayed only for tcp rules, with half-close in both directions', async () => {
    const tp = await startProxy({
      rules: [rule('allow', 'db.test', [echoPort], { protocol: 'tcp' }), rule('allow', 'web.test', [echoPort]), rule('allow', '127.0.0.1', [])],
      hosts: { 'db.test': ['127.0.0.1'], 'web.test': ['127.0.0.1'] },
    });
    try {
      const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'db.test'), echoPort);
      const payload = Buffer.from([0, 1, 2, 255, 0x16, 0x03]);
      const out = await exchange(s, Buffer.concat([Buffer.from('\x00raw'), payload]), 5000, true);
      assert.deepEqual(out, Buffer.concat([Buffer.from('echo:\x00raw'), payload]));
      const rec = await tp.flowRecord((d) => d.host === 'db.test');
      assert.equal(rec.protocol, 'tcp');
      assert.equal(rec.decision, 'allow');
      assert.equal(rec.bytesUp, 10);
      assert.equal(rec.bytesDown, 15);

      const before = echoConnections;
      const s2 = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'web.test'), echoPort);
      const out2 = await exchange(s2, '\x00not http', 3000, true);
      assert.equal(out2.length, 0);
      const rec2 = await tp.flowRecord((d) => d.host === 'web.test');
      assert.equal(rec2.decision, 'deny');
      assert.match(String(rec2.reason), /no rule allows/);
      assert.equal(echoConnections, before, 'an http allow rule never carries raw TCP');
    } finally {
      await tp.close();
    }
  });

  it('inside CONNECT: raw bytes need a tcp rule; a denied authority gets a 403', async () => {
    const tp = await startProxy({
      rules: [rule('allow', 'db.test', [echoPort], { protocol: 'tcp' }), rule('allow', 'web.test', [echoPort]), rule('allow', '127.0.0.1', [])],
      hosts: { 'db.test': ['127.0.0.1'], 'web.test': ['127.0.0.1'] },
    });
    try {
      const a = await openExplicit(tp.socketPath);
      assert.equal((await connectThrough(a, `db.test:${echoPort}`)).status, 200);
      assert.equal((await exchange(a, '\x01raw', 5000, true)).toString(), 'echo:\x01raw');
      const b = await openExplicit(tp.socketPath);
      assert.equal((await connectThrough(b, `web.test:${echoPort}`)).status, 200);
      assert.equal((await exchange(b, '\x01raw', 3000, true)).length, 0);
      const rec = await tp.flowRecord((d) => d.mode === 'explicit' && d.host === 'web.test');
      assert.equal(rec.protocol, 'tcp');
      assert.equal(rec.decision, 'deny');
      const c = await openExplicit(tp.socketPath);
      const denied = await connectThrough(c, `nope.test:${echoPort}`);
      assert.equal(denied.status, 403);
      assert.match(denied.head, /CONNECT|nope\.test/);
    } finally {
      await tp.close();
    }
  });

  it('a server-speaks-first protocol works when a tcp rule allows it', async () => {
    const tp = await startProxy(
      { rules: [rule('allow', 'smtp.test', [bannerPort], { protocol: 'tcp' }), rule('allow', '127.0.0.1', [])], hosts: { 'smtp.test': ['127.0.0.1'] } },
      { timeouts: { firstByteMs: 150 } },
    );
    try {
      const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'smtp.test'), bannerPort);
      const bannerLine = await new Promise<string>((r) => s.once('data', (d) => r(d.toString())));
      assert.equal(bannerLine, '220 banner.test ready\r\n');
      const out = await exchange(s, 'HELO x\r\n');
      assert.equal(out.toString(), '250 got HELO x\r\n');
    } finally {
      await tp.close();
    }
  });

  it('reload closes every open flow; new flows use the new policy', async () => {
    const policy = { rules: [rule('allow', 'db.test', [echoPort], { protocol: 'tcp' }), rule('allow', '127.0.0.1', [])], hosts: { 'db.test': ['127.0.0.1'] } };
    const tp = await startProxy(policy);
    try {
      const addr = await syntheticFor(tp.socketPath, 'db.test');
      const open: net.Socket[] = [];
      for (let i = 0; i < 3; i++) {
        const s = await openFlow(tp.socketPath, addr, echoPort);
        s.write('\x00held open');
        open.push(s);
      }
      // A flow still waiting for its first bytes is closed too.
      open.push(await openFlow(tp.socketPath, addr, echoPort));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(tp.proxy.stats().flowsActive, 4);
      const closed = open.map((s) => new Promise((r) => (s.once('end', r), s.once('close', r))));
      tp.proxy.reload({ rules: [rule('allow', '127.0.0.1', [])], hosts: {} });
      await Promise.all(closed);
      const reloadRec = tp.records.find((r) => r.type === 'net.reload')!;
      assert.equal(reloadRec.data.closedFlows, 4);
      assert.equal(reloadRec.data.generation, 2);
      await new Promise((r) => setTimeout(r, 50));
      const flowRecs = tp.records.filter((r) => r.type === 'net.flow');
      assert.equal(flowRecs.length, 4);
      assert.ok(flowRecs.every((r) => r.data.stage === 'reload' && r.data.generation === 1));
      const after = await openFlow(tp.socketPath, addr, echoPort);
      const out = await exchange(after, 'x', 3000, true);
      assert.equal(out.length, 0);
      const rec = await tp.flowRecord((d) => d.generation === 2);
      assert.equal(rec.decision, 'deny');
      assert.equal(tp.proxy.stats().generation, 2);
      tp.proxy.reload(policy);
      const again = await openFlow(tp.socketPath, addr, echoPort);
      assert.equal((await exchange(again, 'y', 3000, true)).toString(), 'echo:y');
    } finally {
      await tp.close();
    }
  });
});

describe('robustness', () => {
  it('reserved addresses and bad forwarder headers are refused and audited', async () => {
    const tp = await startProxy({ rules: [], hosts: {} });
    try {
      for (const [ip, port] of [
        ['198.18.0.1', 80],
        ['198.18.0.53', 443],
        ['198.19.0.0', 443],
      ] as const) {
        const s = await openFlow(tp.socketPath, ip, port);
        assert.equal((await exchange(s, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 2000)).length, 0);
      }
      const bad = await new Promise<net.Socket>((r) => {
        const s = net.connect(tp.socketPath, () => r(s));
      });
      assert.equal((await exchange(bad, 'CORDON/1 TCP 127.1 80 1\n', 2000)).length, 0);
      await new Promise((r) => setTimeout(r, 50));
      const recs = tp.records.filter((r) => r.type === 'net.flow');
      assert.equal(recs.length, 4);
      assert.ok(recs.every((r) => r.data.decision === 'refused'));
      assert.ok(recs.some((r) => r.data.stage === 'header'));
    } finally {
      await tp.close();
    }
  });

  it('200 concurrent flows (spliced TLS), each with its own record', async () => {
    const srv = await echoHeaders();
    const tp = await startProxy({ rules: [rule('allow', 'api.test', [srv.port]), rule('allow', '127.0.0.1', [])], hosts: { 'api.test': ['127.0.0.1'] } });
    try {
      const { upstreamCa } = await import('./helpers.ts');
      const ca = (await upstreamCa()).caPem;
      const addr = await syntheticFor(tp.socketPath, 'api.test');
      const one = async (i: number) => {
        const t = await tlsOver(await openFlow(tp.socketPath, addr, srv.port, 10000 + i), 'api.test', ca);
        const p = readResponses(t, 1, 30_000);
        t.write(`GET /c${i} HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n`);
        const r = (await p)[0]!;
        t.destroy();
        return JSON.parse(r.body.toString()).url as string;
      };
      const urls = await Promise.all(Array.from({ length: 200 }, (_, i) => one(i)));
      assert.deepEqual(urls, Array.from({ length: 200 }, (_, i) => `/c${i}`));
      await new Promise((r) => setTimeout(r, 200));
      const recs = tp.records.filter((r) => r.type === 'net.flow' && r.data.protocol === 'tls-splice');
      assert.equal(recs.length, 200);
      assert.equal(new Set(recs.map((r) => r.data.flow)).size, 200);
      assert.equal(tp.proxy.stats().flowsActive, 0);
    } finally {
      await tp.close();
      await srv.close();
    }
  });

  it('an upstream that resets mid-response tears down the client; the proxy keeps serving', async () => {
    const raw = net.createServer((s) => {
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial');
        setTimeout(() => s.resetAndDestroy(), 20);
      });
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    const port = (raw.address() as net.AddressInfo).port;
    const tp = await startProxy({ rules: [rule('allow', 'raw.test', [port]), rule('allow', '127.0.0.1', [])], hosts: { 'raw.test': ['127.0.0.1'] } });
    try {
      const addr = await syntheticFor(tp.socketPath, 'raw.test');
      const s = await openFlow(tp.socketPath, addr, port);
      const out = (await exchange(s, 'GET / HTTP/1.1\r\nHost: raw.test\r\n\r\n')).toString('latin1');
      assert.match(out, /^HTTP\/1\.1 200 OK/);
      assert.ok(out.endsWith('partial'), 'the client sees a short body (Content-Length says 1000)');
      const rec = await tp.flowRecord();
      assert.match(String(rec.reason), /relay failed|truncated|ended/);
      const s2 = await openFlow(tp.socketPath, addr, port);
      assert.match((await exchange(s2, 'GET / HTTP/1.1\r\nHost: raw.test\r\n\r\n')).toString('latin1'), /^HTTP\/1\.1 200/);
      assert.equal(tp.proxy.stats().flowsActive, 0);
    } finally {
      await tp.close();
      raw.close();
    }
  });
});
