// Bypass matrix class 11, leaks: a placeholder headed to an unbound host in a
// header, the query, the path or the body - raw, base64 at each alignment,
// base64url, URL-encoded, hex - split across headers, across chunks of a
// chunked body and across TCP writes; a redirect from the bound host to an
// unbound one carrying Authorization. Each is blocked before the upstream
// sees the value, alerted (cred.leak, no value) and revokes the placeholder.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chunked, req, session, upstream, type Session, type Upstream } from './helpers.ts';

const REAL = 'sk-REALkey0123456789abcdefghijklmnopqrstuvwxyzABCD';

const b64at = (ph: string, k: number, url = false) => Buffer.from('xy'.slice(0, k) + ph).toString(url ? 'base64url' : 'base64');
const pct = (s: string, upper = true) => [...Buffer.from(s)].map((b) => `%${b.toString(16).padStart(2, '0')}`).map((x) => (upper ? x.toUpperCase() : x)).join('');

describe('class 11: placeholder leaks to an unbound host', () => {
  let api: Upstream;
  let other: Upstream;
  let s: Session;
  let ph: string;
  before(async () => {
    api = await upstream('api.test', {
      '/redirect': (_rq, res) => {
        res.writeHead(302, { Location: `https://other.test:${other.port}/landing` });
        res.end();
      },
    });
    other = await upstream('other.test');
    s = await session({
      bindings: [{ secret: 'key', hosts: ['api.test'], ports: [api.port], placeholderPrefix: 'sk-', env: 'API_KEY' }],
      // A canary keeps the inspector watching every flow after the first leak revokes the placeholder.
      canaries: [{ env: 'GITHUB_TOKEN' }],
      secrets: { key: REAL },
      hosts: { 'api.test': api.port, 'other.test': other.port },
    });
    ph = s.ph(0);
  });
  after(async () => {
    await s.close();
    await api.server.close();
    await other.server.close();
  });

  /** No request that reached other.test holds the placeholder in any spelling we sent. */
  const otherClean = () => {
    for (const r of other.received) {
      const all = `${r.url}\n${r.rawHeaders.join('\n')}\n${r.body.toString('latin1')}`;
      for (const spelled of [ph, ph.slice(4), Buffer.from(ph).toString('hex'), b64at(ph, 0).slice(0, 20), pct(ph).slice(0, 30)]) {
        assert.ok(!all.includes(spelled), `other.test received ${spelled.slice(0, 12)}...`);
      }
    }
  };

  const blocked = async (writes: Array<string | Buffer>, where: string | RegExp, encoding: string | RegExp, gapMs?: number) => {
    const before = s.records('cred.leak').length;
    const r = await s.send('other.test', other.port, writes, gapMs === undefined ? {} : { gapMs });
    assert.equal(r.status, 403, `status for ${String(where)}`);
    assert.match(r.body.toString(), /credential was headed to a host it is not bound to/);
    assert.ok(!r.body.toString().includes(REAL));
    const leaks = s.records('cred.leak');
    assert.equal(leaks.length, before + 1, 'one cred.leak record');
    const rec = leaks.at(-1)!;
    if (typeof where === 'string') assert.equal(rec.where, where);
    else assert.match(String(rec.where), where);
    if (typeof encoding === 'string') assert.equal(rec.encoding, encoding, `encoding for ${String(where)}: ${JSON.stringify(rec)}`);
    else assert.match(String(rec.encoding), encoding);
    assert.equal(rec.secretName, 'key');
    assert.equal(rec.destination, `other.test:${other.port}`);
    assert.equal(rec.revoked, true);
    assert.ok(!JSON.stringify(rec).includes(ph) && !JSON.stringify(rec).includes(REAL));
    otherClean();
  };

  it('header, query, path: raw', async () => {
    await blocked([req('GET', '/', 'other.test', { 'X-Data': ph })], 'header:x-data', 'raw');
    await blocked([req('GET', '/', 'other.test', { Authorization: `Bearer ${ph}` })], 'header:authorization', 'raw');
    await blocked([req('GET', `/search?q=${ph}&x=1`, 'other.test')], 'query', 'raw');
    await blocked([req('GET', `/files/${ph}/x`, 'other.test')], 'path', 'raw');
    await blocked([req(Buffer.from(ph).toString('hex').toUpperCase(), '/', 'other.test')], 'method', 'hex');
    assert.equal(s.creds.list()[0]!.revoked, true, 'the first leak revoked the placeholder');
  });

  it('base64 at all three alignments, base64url, URL-encoded, hex', async () => {
    for (const k of [0, 1, 2]) await blocked([req('GET', '/', 'other.test', { 'X-Trace': b64at(ph, k) })], 'header:x-trace', 'base64');
    for (const k of [0, 1, 2]) await blocked([req('POST', '/', 'other.test', {}, `data=${b64at(`{"k":"${ph}"}`, k)}&z=1`)], 'body', 'base64');
    // (a base64url spelling without "-" or "_" is the same as base64: either label)
    await blocked([req('GET', `/?d=${b64at(`!${ph}`, 0, true)}`, 'other.test')], 'query', /^base64(url)?$/);
    // base64 then URL-encoded ("+" "/" as %2B %2F when the encoding has them)
    for (const k of [0, 1, 2]) await blocked([req('GET', `/?d=${encodeURIComponent(b64at(`${ph}??>>`, k))}`, 'other.test')], 'query', 'base64');
    await blocked([req('GET', `/?d=${pct(ph)}`, 'other.test')], 'query', 'url');
    await blocked([req('GET', `/p/${pct(ph, false)}`, 'other.test')], 'path', 'url');
    await blocked([req('GET', '/', 'other.test', { Cookie: `sid=${Buffer.from(ph).toString('hex')}` })], 'header:cookie', 'hex');
    await blocked([req('POST', '/', 'other.test', {}, Buffer.from(`x${ph}`).toString('hex').toUpperCase())], 'body', 'hex');
  });

  it('split across two headers, and a head split across TCP writes', async () => {
    const half = Math.floor(ph.length / 2);
    await blocked([req('GET', '/', 'other.test', { 'X-A': ph.slice(0, half), 'X-B': ph.slice(half) })], 'split:header:x-a+header:x-b', 'raw');
    const head = req('GET', '/', 'other.test', { 'X-Data': ph });
    const at = head.indexOf(ph) + 7;
    await blocked([head.slice(0, at), head.slice(at)], 'header:x-data', 'raw', 40);
  });

  it('body: split across chunks of a chunked body, and across TCP writes', async () => {
    const cut = 9;
    const body = chunked(['{"payload":"', ph.slice(0, cut), `${ph.slice(cut)}"}`]);
    await blocked([req('POST', '/', 'other.test', { 'Transfer-Encoding': 'chunked' }), body], 'body', 'raw');
    const b64 = Buffer.from(`user=${ph}`).toString('base64');
    await blocked([req('POST', '/', 'other.test', { 'Transfer-Encoding': 'chunked' }), chunked([b64.slice(0, 11), b64.slice(11, 30), b64.slice(30)])], 'body', 'base64');
    const text = `${'A'.repeat(5000)}${ph}${'B'.repeat(100)}`;
    const w = req('POST', '/upload', 'other.test', {}, text);
    const split = w.indexOf(ph) + 5;
    await blocked([w.slice(0, split - 2000), w.slice(split - 2000, split), w.slice(split)], 'body', 'raw', 60);
  });

  it('a body leak mid-stream: the upstream never gets a byte of it, nor the end of the body', async () => {
    const n = other.received.length;
    const text = `${'A'.repeat(30_000)}${ph}${'B'.repeat(1000)}`;
    const w = req('POST', '/upload', 'other.test', {}, text);
    const at = w.indexOf(ph);
    await blocked([w.slice(0, at), w.slice(at)], 'body', 'raw', 150);
    const got = other.received.slice(n);
    assert.equal(got.length, 1, 'the head went upstream (the body streams, it is not held)');
    assert.ok(got[0]!.body.length > 20_000, `bytes before the placeholder streamed on (${got[0]!.body.length})`);
    for (const r of got) {
      assert.equal(r.aborted, true, 'the upstream request never completed');
      assert.match(r.body.toString(), /^A*$/, 'only bytes before the placeholder arrived');
    }
  });

  it('redirect from the bound host to an unbound one, carrying Authorization', async () => {
    const t = await session({
      bindings: [{ secret: 'key', hosts: ['api.test'], ports: [api.port], placeholderPrefix: 'sk-' }],
      secrets: { key: REAL },
      hosts: { 'api.test': api.port, 'other.test': other.port },
    });
    try {
      const p = t.ph(0);
      const first = await t.send('api.test', api.port, [req('GET', '/redirect', 'api.test', { Authorization: `Bearer ${p}` })]);
      assert.equal(first.status, 302);
      assert.equal(api.received.at(-1)!.headers.authorization, `Bearer ${REAL}`);
      const location = new URL(first.headers.location!);
      assert.equal(location.hostname, 'other.test');
      const before = other.received.length;
      const second = await t.send('other.test', Number(location.port), [req('GET', location.pathname, 'other.test', { Authorization: `Bearer ${p}` })]);
      assert.equal(second.status, 403);
      assert.equal(other.received.length, before);
      assert.equal(t.records('cred.leak').at(-1)!.where, 'header:authorization');
      // Revoked at once: the bound host refuses it now.
      const third = await t.send('api.test', api.port, [req('GET', '/v1/x', 'api.test', { Authorization: `Bearer ${p}` })]);
      assert.equal(third.status, 403);
      assert.match(third.body.toString(), /credential revoked/);
    } finally {
      await t.close();
    }
  });
});
