// Injection through a real proxy: the upstream gets the real value exactly
// where the binding says (header with scheme, query, body) and nowhere else;
// the sandbox side only ever holds the placeholder; responses echoing the
// real value are scrubbed; stripHeaders; method/path outside the binding.

import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { chunked, req, session, upstream, type Session, type Upstream } from './helpers.ts';

const REAL_ANT = 'sk-ant-api03-REALxAnthropicKey0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-AAAA';
const REAL_GH = 'ghp_REALgithubToken0123456789abcdefghij';

describe('injection on bound requests', () => {
  let api: Upstream;
  let other: Upstream;
  let s: Session;
  before(async () => {
    api = await upstream('api.test', {
      '/v1/echo-in-header': (rq, res) => {
        res.setHeader('X-Echo', String(rq.headers['x-api-key']));
        res.end('see header');
      },
      '/v1/echo-encoded': (rq, res) => {
        const k = Buffer.from(String(rq.headers['x-api-key']));
        res.end(`b64=${Buffer.concat([Buffer.from('x'), k]).toString('base64')} hex=${k.toString('hex')} url=${encodeURIComponent(`"${k}"`)}`);
      },
      '/v1/gzip': (_rq, res) => {
        res.setHeader('Content-Encoding', 'gzip');
        res.end(gzipSync('hello'));
      },
    });
    other = await upstream('other.test');
    s = await session({
      bindings: [
        {
          secret: 'anthropic',
          hosts: ['api.test'],
          ports: [api.port],
          header: 'x-api-key',
          placeholderPrefix: 'sk-ant-api03-',
          env: 'ANTHROPIC_API_KEY',
          paths: ['/v1/', '/echo-headers', '/echo-body'],
          stripHeaders: ['x-fetch-url'],
        },
        { secret: 'gh', hosts: ['api.test'], ports: [api.port], placeholderPrefix: 'ghp_', query: 'token', body: true, paths: ['/gh/'], methods: ['GET', 'POST'], file: '~/.config/gh/token' },
      ],
      secrets: { anthropic: REAL_ANT, gh: REAL_GH },
      hosts: { 'api.test': api.port, 'other.test': other.port },
    });
  });
  after(async () => {
    await s.close();
    await api.server.close();
    await other.server.close();
  });

  const upstreamSaw = (u: Upstream, secret: string) =>
    u.received.filter((r) => r.rawHeaders.some((h) => h.includes(secret)) || r.url.includes(secret) || r.body.includes(secret));

  it('the sandbox holds placeholders shaped like the real keys', () => {
    const env = s.creds.env();
    const ph = env.ANTHROPIC_API_KEY!;
    assert.equal(ph, s.ph(0));
    assert.match(ph, /^sk-ant-api03-cordonph[A-Za-z0-9]+$/);
    assert.equal(ph.length, REAL_ANT.length, 'same length as the real key (its prefix matches)');
    assert.match(s.ph(1), /^ghp_cordonph[A-Za-z0-9]+$/);
    assert.equal(s.ph(1).length, REAL_GH.length);
    assert.deepEqual(s.creds.files(), [{ path: '/home/agent/.config/gh/token', content: `${s.ph(1)}\n` }]);
    assert.ok(!JSON.stringify([env, s.creds.files(), s.creds.list(), s.creds.issued()]).includes('REAL'));
  });

  it('header: the real value replaces the placeholder in the bound header only', async () => {
    const r = await s.send('api.test', api.port, [req('GET', '/v1/messages', 'api.test', { 'x-api-key': s.ph(0), 'X-Other': s.ph(0), 'User-Agent': 'sdk' })]);
    assert.equal(r.status, 200);
    const got = api.received.at(-1)!;
    assert.equal(got.headers['x-api-key'], REAL_ANT);
    assert.equal(got.headers['x-other'], s.ph(0), 'a copy elsewhere is left as the placeholder');
    assert.equal(got.headers['accept-encoding'], 'identity');
    assert.ok(!r.body.toString().includes(REAL_ANT));
    const use = s.records('cred.use').at(-1)!;
    assert.deepEqual({ ...use }, { session: 'sess-broker', host: 'api.test', port: api.port, method: 'GET', path: '/v1/messages', secretName: 'anthropic', binding: 0, sites: ['header'] });
  });

  it('scheme: Bearer on authorization; query parameter; body (chunk-split placeholder)', async () => {
    await s.send('api.test', api.port, [req('GET', `/gh/repos?per_page=5&token=${s.ph(1)}`, 'api.test', { Authorization: `bearer ${s.ph(1)}` })]);
    let got = api.received.at(-1)!;
    assert.equal(got.headers.authorization, `Bearer ${REAL_GH}`);
    assert.equal(got.url, `/gh/repos?per_page=5&token=${REAL_GH}`);
    const p = s.ph(1);
    const body = chunked([`{"token":"${p.slice(0, 10)}`, `${p.slice(10)}","n":1}`]);
    const r = await s.send('api.test', api.port, [req('POST', '/gh/x', 'api.test', { 'Transfer-Encoding': 'chunked' }), body]);
    assert.equal(r.status, 200);
    got = api.received.at(-1)!;
    assert.equal(got.body.toString(), `{"token":"${REAL_GH}","n":1}`);
    assert.ok(s.records('cred.use').some((u) => (u.sites as string[]).includes('body') && u.count === 1));
  });

  it('the real value reaches nothing but the bound places', async () => {
    assert.equal(upstreamSaw(other, REAL_ANT).length + upstreamSaw(other, REAL_GH).length, 0);
    for (const r of api.received) {
      for (let i = 0; i < r.rawHeaders.length; i += 2) {
        if (r.rawHeaders[i + 1]!.includes('REAL')) assert.ok(['x-api-key', 'authorization'].includes(r.rawHeaders[i]!.toLowerCase()), `real value in ${r.rawHeaders[i]}`);
      }
      if (r.url.includes('REAL')) assert.ok(r.url.startsWith('/gh/repos?'), `real value in ${r.url.split('?')[0]}`);
      if (r.body.includes('REAL')) assert.equal(r.url, '/gh/x');
    }
  });

  it('echo endpoints: the real value comes back as the placeholder (body, header, encodings)', async () => {
    let r = await s.send('api.test', api.port, [req('GET', '/echo-headers', 'api.test', { 'x-api-key': s.ph(0) })]);
    assert.equal(JSON.parse(r.body.toString())['x-api-key'], s.ph(0));
    assert.ok(!r.body.includes(REAL_ANT));
    r = await s.send('api.test', api.port, [req('GET', '/v1/echo-in-header', 'api.test', { 'x-api-key': s.ph(0) })]);
    assert.equal(r.headers['x-echo'], s.ph(0));
    r = await s.send('api.test', api.port, [req('GET', '/v1/echo-encoded', 'api.test', { 'x-api-key': s.ph(0) })]);
    const text = r.body.toString();
    const real = Buffer.from(REAL_ANT);
    assert.ok(!text.includes(real.toString('hex')) && text.includes(Buffer.from(s.ph(0)).toString('hex')));
    assert.ok(!text.includes(Buffer.concat([Buffer.from('x'), real]).toString('base64').slice(4, 40)));
    assert.ok(!text.includes(REAL_ANT));
    assert.ok(s.records('cred.scrubbed').length >= 3);
  });

  it('stripHeaders and an uncompressed response are enforced on the credentialed host', async () => {
    await s.send('api.test', api.port, [req('GET', '/v1/x', 'api.test', { 'x-api-key': s.ph(0), 'X-Fetch-Url': 'http://169.254.169.254/', 'Accept-Encoding': 'gzip, br' })]);
    const got = api.received.at(-1)!;
    assert.equal(got.headers['x-fetch-url'], undefined);
    assert.equal(got.headers['accept-encoding'], 'identity');
    const r = await s.send('api.test', api.port, [req('GET', '/v1/gzip', 'api.test', { 'x-api-key': s.ph(0) })]);
    assert.equal(r.status, 403);
    assert.match(r.body.toString(), /compressed response from a credentialed host/);
  });

  it('a method or path outside the binding is refused, not injected', async () => {
    const before = api.received.length;
    const r = await s.send('api.test', api.port, [req('DELETE', '/gh/repos', 'api.test', { Authorization: `Bearer ${s.ph(1)}` })]);
    assert.equal(r.status, 403);
    assert.match(r.body.toString(), /not bound to DELETE \/gh\/repos/);
    const r2 = await s.send('api.test', api.port, [req('GET', '/admin', 'api.test', { 'x-api-key': s.ph(0) })]);
    assert.equal(r2.status, 403);
    assert.equal(api.received.length, before);
    assert.ok(s.records('cred.refused').length >= 2);
  });

  it('a body to any host keeps its Content-Length when nothing is injected', async () => {
    const r = await s.send('other.test', other.port, [req('POST', '/upload', 'other.test', { 'Content-Type': 'text/plain' }, 'hello world, nothing secret here')]);
    assert.equal(r.status, 200);
    const got = other.received.at(-1)!;
    assert.equal(got.headers['content-length'], '32');
    assert.equal(got.headers['transfer-encoding'], undefined);
    assert.equal(got.body.toString(), 'hello world, nothing secret here');
  });

  it('audit records and the redactor never hold a value', () => {
    const red = s.creds.redactor();
    const all = JSON.stringify(s.audit);
    for (const v of [REAL_ANT, REAL_GH, s.ph(0), s.ph(1)]) assert.ok(!all.includes(v));
    const line = `key=${REAL_ANT} ph=${s.ph(1)} b64=${Buffer.from(REAL_GH).toString('base64')} hex=${Buffer.from(REAL_ANT).toString('hex').toUpperCase()}`;
    assert.match(red(line), /^key=\[redacted\] ph=\[redacted\] b64=\[redacted\]\S{0,3} hex=\[redacted\]$/);
  });
});
