// One identity per flow: the dialled address (or CONNECT authority), the TLS
// server name, the Host header and an absolute-form URI must agree.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  clientHello,
  connectThrough,
  drained,
  exchange,
  fakeServer,
  openExplicit,
  openFlow,
  readResponses,
  rule,
  startProxy,
  syntheticFor,
  tlsOver,
  tlsRefused,
  type FakeServer,
  type TestProxy,
} from './helpers.ts';

describe('flow identity', () => {
  let tp: TestProxy;
  let api: FakeServer;
  let ipSrv: FakeServer;
  let web: FakeServer;
  let apiAddr: string;
  before(async () => {
    api = await fakeServer((req, res) => res.end(`api ${req.headers.host} ${req.url}`), { name: 'api.test' });
    ipSrv = await fakeServer((req, res) => res.end(`ip ${req.url}`), { name: '127.0.0.1' });
    web = await fakeServer((req, res) => res.end(`web ${req.url}`), { tls: false });
    tp = await startProxy({
      rules: [
        rule('allow', 'api.test', [api.port], { paths: ['/'] }),
        rule('allow', 'other.test', [api.port], { paths: ['/'] }),
        rule('allow', 'web.test', [web.port]),
        rule('allow', '127.0.0.1', [ipSrv.port], { paths: ['/'] }),
        // The loopback exception for the named servers' ports (exceptions are per port).
        rule('allow', '127.0.0.1', [api.port, web.port], { paths: ['/exception-only'] }),
      ],
      hosts: { 'api.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'], 'web.test': ['127.0.0.1'] },
    });
    apiAddr = await syntheticFor(tp.socketPath, 'api.test');
    await syntheticFor(tp.socketPath, 'other.test');
  });
  after(async () => {
    await tp.close();
    await Promise.all([api.close(), ipSrv.close(), web.close()]);
  });

  const get = async (t: import('node:tls').TLSSocket | import('node:net').Socket, host: string, path = '/') => {
    const p = readResponses(t, 1);
    t.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    return (await p)[0]!;
  };

  it('CONNECT host and SNI agree: relayed', async () => {
    const s = await openExplicit(tp.socketPath);
    const c = await connectThrough(s, `api.test:${api.port}`);
    assert.equal(c.status, 200);
    const t = await tlsOver(s, 'api.test', tp.ca.caPem);
    const res = await get(t, 'api.test');
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'api api.test /');
  });

  it('CONNECT host != SNI: refused before any byte goes upstream', async () => {
    const before = api.seen.length;
    const s = await openExplicit(tp.socketPath);
    assert.equal((await connectThrough(s, `api.test:${api.port}`)).status, 200);
    assert.equal(await tlsRefused(s, 'other.test', tp.ca.caPem), true);
    const rec = await tp.flowRecord((d) => d.mode === 'explicit' && d.sni === 'other.test');
    assert.equal(rec.stage, 'identity');
    assert.match(String(rec.reason), /sni/);
    assert.equal(api.seen.length, before);
  });

  it('trailing dot, case and an explicit port are the same identity', async () => {
    const s = await openExplicit(tp.socketPath);
    assert.equal((await connectThrough(s, `API.Test.:${api.port}`)).status, 200);
    const t = await tlsOver(s, 'api.test', tp.ca.caPem);
    const res = await get(t, `Api.TEST.:${api.port}`);
    assert.equal(res.status, 200);
  });

  it('SNI != Host (terminated TLS): 400, nothing upstream', async () => {
    const before = api.seen.length;
    const s = await openFlow(tp.socketPath, apiAddr, api.port);
    const t = await tlsOver(s, 'api.test', tp.ca.caPem);
    const res = await get(t, 'other.test');
    assert.equal(res.status, 400);
    assert.match(res.body.toString(), /disagree/);
    assert.equal(api.seen.length, before);
  });

  it('Host naming another port than the dialled one: 400', async () => {
    const s = await openFlow(tp.socketPath, apiAddr, api.port);
    const t = await tlsOver(s, 'api.test', tp.ca.caPem);
    const res = await get(t, `api.test:${api.port + 1}`);
    assert.equal(res.status, 400);
  });

  it('no SNI on a flow to a name: refused', async () => {
    const s = await openFlow(tp.socketPath, apiAddr, api.port);
    assert.equal(await tlsRefused(s, undefined, tp.ca.caPem), true);
    const rec = await tp.flowRecord((d) => d.original === `${apiAddr}:${api.port}` && d.stage === 'identity' && d.sni === null);
    assert.match(String(rec.reason), /no server name/);
  });

  it('an IP literal in SNI: refused', async () => {
    const s = await openFlow(tp.socketPath, '127.0.0.1', ipSrv.port);
    const out = await exchange(s, clientHello('127.0.0.1'));
    assert.equal(out.length, 0);
    const rec = await tp.flowRecord((d) => d.sni === '127.0.0.1');
    assert.equal(rec.stage, 'identity');
    assert.match(String(rec.reason), /IP literal/);
  });

  it('a NUL byte in SNI: refused by the ClientHello parser', async () => {
    const s = await openFlow(tp.socketPath, apiAddr, api.port);
    const out = await exchange(s, clientHello('evil.test\x00.api.test'));
    assert.equal(out.length, 0);
  });

  it('an IP dial with no SNI is the IP identity (terminated with an IP certificate)', async () => {
    const s = await openFlow(tp.socketPath, '127.0.0.1', ipSrv.port);
    const t = await tlsOver(s, undefined, tp.ca.caPem);
    const leafSan = t.getPeerCertificate().subjectaltname;
    assert.equal(leafSan, 'IP Address:127.0.0.1');
    const res = await get(t, `127.0.0.1:${ipSrv.port}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'ip /');
  });

  it('an IP dial with a name in SNI (fronting): refused', async () => {
    const s = await openFlow(tp.socketPath, '127.0.0.1', api.port);
    assert.equal(await tlsRefused(s, 'api.test', tp.ca.caPem), true);
  });

  it('absolute-form with another Host: 400', async () => {
    const s = await openExplicit(tp.socketPath);
    const p = readResponses(s, 1);
    s.write(`GET http://web.test:${web.port}/x HTTP/1.1\r\nHost: other.test\r\n\r\n`);
    assert.equal((await p)[0]!.status, 400);
  });

  it('absolute-form with a matching Host: relayed', async () => {
    const s = await openExplicit(tp.socketPath);
    const p = readResponses(s, 1);
    s.write(`GET http://web.test:${web.port}/x?q=1 HTTP/1.1\r\nHost: WEB.test:${web.port}\r\n\r\n`);
    const res = (await p)[0]!;
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'web /x?q=1');
    assert.equal(web.seen.at(-1)!.url, '/x?q=1');
  });

  it('NUL and control bytes in a CONNECT target or Host: 400', async () => {
    for (const bad of [`CONNECT evil.test\x00.api.test:${api.port} HTTP/1.1\r\nHost: x\r\n\r\n`, `GET http://web.test:${web.port}/ HTTP/1.1\r\nHost: web.test\x01\r\n\r\n`]) {
      const s = await openExplicit(tp.socketPath);
      const out = (await exchange(s, bad)).toString('latin1');
      assert.match(out, /^HTTP\/1\.1 400 /);
    }
  });

  it('a duplicate Host: 400', async () => {
    const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'web.test'), web.port);
    const out = (await exchange(s, `GET / HTTP/1.1\r\nHost: web.test\r\nHost: other.test\r\n\r\n`)).toString('latin1');
    assert.match(out, /^HTTP\/1\.1 400 /);
  });

  it('plain HTTP on a transparent flow must name the dialled host', async () => {
    const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'web.test'), web.port);
    const res = await get(s, 'api.test');
    assert.equal(res.status, 400);
  });

  it('the upstream certificate is verified for the identity (proxy never trusts a wrong cert)', async () => {
    // other.test maps to the api.test server, whose certificate does not name other.test.
    const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'other.test'), api.port);
    const t = await tlsOver(s, 'other.test', tp.ca.caPem);
    const res = await get(t, 'other.test');
    assert.equal(res.status, 502);
    await drained(t);
  });
});
