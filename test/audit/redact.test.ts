import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isCordonError } from '../../src/errors.ts';
import { AuditStore, isSecretName, verifyAudit } from '../../src/audit/index.ts';
import { findSecretFields } from '../../src/audit/redact.ts';
import { stateDir } from './helpers.ts';

/** Every byte cordon left in the state directory: db, WAL, shm, key. */
function stateBytes(dir: string): Buffer {
  return Buffer.concat(readdirSync(dir).map((f) => readFileSync(join(dir, f))));
}

function contains(bytes: Buffer, s: string): boolean {
  return bytes.includes(Buffer.from(s, 'utf8'));
}

test('a registered secret never reaches the database files', (t) => {
  const dir = stateDir(t);
  const secret = 'sk-live-4f9a8b7c6d5e3f2a1b0c';
  const awkward = 'pa"ss\\wo\nrd-Zq81'; // characters JSON escapes: must be caught before encoding
  const store = AuditStore.open(dir);
  store.addRedactor((s) => s.replaceAll(secret, '[redacted]'));
  store.addRedactor((s) => s.replaceAll(awkward, '[redacted]'));
  const r = store.append('sess', 'proxy.inject', {
    marker: 'VISIBLE-MARKER-7731',
    header: `Bearer ${secret}`,
    nested: { list: ['a', secret, { deeper: awkward }] },
    [`key-${secret}`]: 1,
  });
  assert.deepEqual(r.data, {
    marker: 'VISIBLE-MARKER-7731',
    header: 'Bearer [redacted]',
    nested: { list: ['a', '[redacted]', { deeper: '[redacted]' }] },
    'key-[redacted]': 1,
  });
  for (let i = 0; i < 50; i++) store.append('sess', 'proxy.inject', { i, header: `Bearer ${secret}`, body: awkward });

  const forms = [secret, awkward, JSON.stringify(awkward).slice(1, -1), secret.slice(0, 12)];
  const live = stateBytes(dir); // while the WAL holds the records
  assert.ok(contains(live, 'VISIBLE-MARKER-7731'), 'control: the marker should be visible in the raw bytes');
  for (const f of forms) assert.ok(!contains(live, f), `found ${JSON.stringify(f)} in the WAL/db`);
  store.close();
  const closed = stateBytes(dir); // after the checkpoint into audit.db
  assert.ok(contains(closed, 'VISIBLE-MARKER-7731'), 'control: the marker should be visible in the raw bytes');
  for (const f of forms) assert.ok(!contains(closed, f), `found ${JSON.stringify(f)} in audit.db`);
  assert.equal(verifyAudit(dir).ok, true);
});

test('the secret-name guard refuses, records the field names only, and throws CORDON_SECRET', (t) => {
  const dir = stateDir(t);
  const store = AuditStore.open(dir);
  t.after(() => store.close());
  const cases: [Record<string, unknown>, string[]][] = [
    [{ password: 'hunter2-aaa' }, ['password']],
    [{ headers: { Authorization: 'Bearer hunter2-bbb', accept: '*/*' } }, ['headers.Authorization']],
    [{ 'X-Api-Key': 'hunter2-ccc' }, ['X-Api-Key']],
    [{ items: [{ ok: 1 }, { refresh_token: 'hunter2-ddd' }] }, ['items[1].refresh_token']],
    [{ CLIENT_SECRET: 42 }, ['CLIENT_SECRET']],
    [{ cookie: ['hunter2-eee'] }, ['cookie']],
    [{ privateKey: { pem: 'hunter2-fff' } }, ['privateKey']],
  ];
  for (const [data, fields] of cases) {
    assert.throws(
      () => store.append('sess', 'proxy.flow', data),
      (e) => isCordonError(e) && e.code === 'CORDON_SECRET' && !e.message.includes('hunter2'),
    );
    const [last] = store.tail(1);
    assert.equal(last!.type, 'audit.rejected');
    assert.deepEqual(last!.data, { type: 'proxy.flow', fields });
  }
  assert.equal([...store.records({ type: 'proxy.flow' })].length, 0);
  assert.ok(!contains(stateBytes(dir), 'hunter2'));
});

test('the guard lets through redacted, empty and non-secret fields', (t) => {
  const store = AuditStore.open(stateDir(t));
  t.after(() => store.close());
  const fine = [
    { password: '[redacted]', token: null, apiKey: '', hasAuthorization: true },
    { maxTokens: 4096, tokenCount: 12, secretName: 'github', credentialId: 'cred-1', tokens: ['a'] },
    { binding: { host: 'api.github.com', header: 'authorization-name-is-a-value-here' } },
  ];
  for (const data of fine) assert.equal(store.append('sess', 'broker.use', data).type, 'broker.use');
  // A redactor runs before the guard, so a broker that knows the value makes the record acceptable.
  store.addRedactor((s) => s.replaceAll('hunter2', '[redacted]'));
  assert.deepEqual(store.append('sess', 'broker.use', { password: 'hunter2' }).data, { password: '[redacted]' });
});

test('secret names: table', () => {
  const yes = ['password', 'PASSWORD', 'db_password', 'passwd', 'secret', 'clientSecret', 'AWS_SECRET_ACCESS_KEY', 'token', 'access-token', 'GITHUB_TOKEN', 'apiKey', 'api_key', 'x-api-key', 'Authorization', 'proxy-authorization', 'Cookie', 'set-cookie', 'privateKey', 'credentials', 'passphrase', 'cookies'];
  const no = ['tokens', 'maxTokens', 'tokenCount', 'secretName', 'credentialId', 'author', 'path', 'keyId', 'passwordPolicy'];
  for (const n of yes) assert.equal(isSecretName(n), true, n);
  for (const n of no) assert.equal(isSecretName(n), false, n);
  assert.equal(findSecretFields({ a: { b: [{ c: 1 }, { token: 'x' }] } }).join(), 'a.b[1].token');
});
