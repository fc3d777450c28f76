// 100 MB through the proxy, byte-exact (sha256 at both ends): spliced TLS,
// terminated TLS (download and upload), with the byte counts in the audit.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fakeServer, openFlow, rule, startProxy, syntheticFor, tlsOver, upstreamCa, type FakeServer, type TestProxy } from './helpers.ts';

const MB = 1024 * 1024;
const TOTAL_MB = 100;
const base = randomBytes(MB);
const block = (i: number) => {
  const b = Buffer.from(base);
  b.writeUInt32BE(i, 0); // every block differs: a dropped or repeated block changes the hash
  return b;
};
const expected = (() => {
  const h = createHash('sha256');
  for (let i = 0; i < TOTAL_MB; i++) h.update(block(i));
  return h.digest('hex');
})();

function serve(res: http.ServerResponse, withLength: boolean) {
  if (withLength) res.setHeader('Content-Length', TOTAL_MB * MB);
  const h = createHash('sha256');
  let i = 0;
  const pump = () => {
    while (i < TOTAL_MB) {
      const b = block(i++);
      h.update(b);
      if (!res.write(b)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
    sentHashes.push(h.digest('hex'));
  };
  pump();
}
const sentHashes: string[] = [];

/** An agent whose one connection is the given stream. */
function agentOver(stream: Duplex): http.Agent {
  const agent = new http.Agent();
  (agent as unknown as { createConnection: () => Duplex }).createConnection = () => stream;
  return agent;
}

/** An HTTP request over an already-connected stream, with Node's own client parser. */
function requestOver(stream: Duplex, opts: http.RequestOptions, body?: (req: http.ClientRequest) => void): Promise<{ status: number; sha256: string; bytes: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...opts, agent: agentOver(stream) }, (res) => {
      const h = createHash('sha256');
      let bytes = 0;
      const head: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        h.update(c);
        if (head.length < 4) head.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode!, sha256: h.digest('hex'), bytes, text: Buffer.concat(head).toString('latin1').slice(0, 200) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body) body(req);
    else req.end();
  });
}

describe('100 MB byte-exact', { timeout: 240_000 }, () => {
  let srv: FakeServer;
  let tp: TestProxy;
  let addrSplice: string;
  let addrTerm: string;
  before(async () => {
    srv = await fakeServer((req, res) => {
      if (req.url === '/big-length') return serve(res, true);
      if (req.url === '/big-chunked') return serve(res, false);
      if (req.url === '/upload') {
        const h = createHash('sha256');
        let n = 0;
        req.on('data', (c: Buffer) => {
          n += c.length;
          h.update(c);
        });
        req.on('end', () => res.end(`${n} ${h.digest('hex')}`));
        return;
      }
      res.end('?');
    });
    tp = await startProxy({
      rules: [rule('allow', 'splice.test', [srv.port]), rule('allow', 'api.test', [srv.port], { paths: ['/big-chunked', '/big-length', '/upload'] }), rule('allow', '127.0.0.1', [])],
      hosts: { 'splice.test': ['127.0.0.1'], 'api.test': ['127.0.0.1'] },
    });
    addrSplice = await syntheticFor(tp.socketPath, 'splice.test');
    addrTerm = await syntheticFor(tp.socketPath, 'api.test');
  });
  after(async () => {
    await tp.close();
    await srv.close();
  });

  it('through a splice (end-to-end TLS)', async () => {
    const s = await openFlow(tp.socketPath, addrSplice, srv.port);
    // The fake server's certificate names api.test; the client checks the chain, not the name.
    const t = await tlsOver(s, 'splice.test', (await upstreamCa()).caPem);
    const r = await requestOver(t, { path: '/big-length', headers: { host: 'splice.test', connection: 'close' } });
    assert.equal(r.status, 200);
    assert.equal(r.bytes, TOTAL_MB * MB);
    assert.equal(r.sha256, expected);
    assert.equal(sentHashes.at(-1), expected);
    t.destroy();
    const rec = await tp.flowRecord((d) => d.host === 'splice.test');
    assert.equal(rec.protocol, 'tls-splice');
    assert.ok((rec.bytesDown as number) > TOTAL_MB * MB);
  });

  for (const path of ['/big-length', '/big-chunked']) {
    it(`through termination (${path === '/big-length' ? 'Content-Length' : 'chunked'})`, async () => {
      const s = await openFlow(tp.socketPath, addrTerm, srv.port);
      const t = await tlsOver(s, 'api.test', tp.ca.caPem);
      const r = await requestOver(t, { path, headers: { host: 'api.test', connection: 'close' } });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.bytes, TOTAL_MB * MB);
      assert.equal(r.sha256, expected);
      t.destroy();
      const rec = await tp.flowRecord((d) => d.host === 'api.test' && (d.bytesDown as number) > TOTAL_MB * MB && d.requests === 1 && !d.checked);
      rec.checked = true;
      assert.equal(rec.protocol, 'tls-terminate');
      const req = tp.records.filter((x) => x.type === 'net.request' && x.data.path === path).at(-1)!;
      assert.equal(req.data.bytesDown, TOTAL_MB * MB);
    });
  }

  it('upload through termination (chunked, streamed)', async () => {
    const s = await openFlow(tp.socketPath, addrTerm, srv.port);
    const t = await tlsOver(s, 'api.test', tp.ca.caPem);
    let r!: { status: number; text: string };
    await new Promise<void>((resolve, reject) => {
      const req = http.request({ method: 'POST', path: '/upload', headers: { host: 'api.test' }, agent: agentOver(t) }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          r = { status: res.statusCode!, text: Buffer.concat(parts).toString() };
          resolve();
        });
      });
      req.on('error', reject);
      let i = 0;
      const pump = () => {
        while (i < TOTAL_MB) {
          if (!req.write(block(i++))) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    assert.equal(r.status, 200);
    assert.equal(r.text, `${TOTAL_MB * MB} ${expected}`);
    t.destroy();
    const req = tp.records.filter((x) => x.type === 'net.request' && x.data.path === '/upload').at(-1)!;
    assert.equal(req.data.bytesUp, TOTAL_MB * MB);
  });
});
