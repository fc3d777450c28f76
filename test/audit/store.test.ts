import assert from 'node:assert/strict';
import { chmodSync, existsSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isCordonError } from '../../src/errors.ts';
import { AuditStore, GENESIS, formatRecord, verifyAudit } from '../../src/audit/index.ts';
import { filledLog, stateDir } from './helpers.ts';

const code = (c: string) => (e: unknown) => isCordonError(e) && e.code === c;

test('append, iterate and tail round-trip', (t) => {
  const dir = stateDir(t);
  const store = AuditStore.open(dir);
  t.after(() => store.close());
  const a = store.append('sess-a', 'session.start', { argv: ['true'], cwd: '/w' });
  const b = store.append('sess-b', 'proxy.flow', { host: 'api.example.com', status: 200 });
  const c = store.append('sess-a', 'session.end', { status: 0, when: new Date(Date.UTC(2026, 0, 1)), gone: undefined });

  const all = [...store.records()];
  assert.equal(all.length, 4);
  assert.equal(all[0]!.type, 'audit.init'); // every log starts with one, so an emptied log is detectable
  assert.equal(all[0]!.prev, GENESIS);
  assert.deepEqual(all.slice(1), [a, b, c]);
  assert.deepEqual(all.map((r) => r.seq), [1, 2, 3, 4]);
  for (let i = 1; i < all.length; i++) assert.equal(all[i]!.prev, all[i - 1]!.mac);
  assert.match(a.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual(c.data, { status: 0, when: '2026-01-01T00:00:00.000Z' }); // stored as JSON, as returned

  assert.deepEqual(store.tail(2), [b, c]);
  assert.deepEqual(store.tail(10, { session: 'sess-a' }), [a, c]);
  assert.deepEqual(store.tail(1, { session: 'sess-a', type: 'session.start' }), [a]);
  assert.deepEqual(store.tail(0), []);
  assert.deepEqual([...store.records({ afterSeq: 2 })], [b, c]);
  assert.deepEqual([...store.records({ afterSeq: 4 })], []);
  assert.deepEqual([...store.records({ type: 'proxy.flow' })], [b]);

  // A second store (another session in the same process) sees and extends the same chain.
  const other = AuditStore.open(dir);
  const d = other.append('sess-c', 'session.start', {});
  other.close();
  assert.equal(d.seq, 5);
  assert.equal(d.prev, c.mac);
  assert.deepEqual(store.tail(1), [d]);
  assert.deepEqual(verifyAudit(dir), { ok: true, records: 5, head: 5, problems: [], omitted: 0 });
});

test('two stores in one process interleave into one chain (no shared module state)', (t) => {
  const dir = stateDir(t);
  const s1 = AuditStore.open(dir);
  const s2 = AuditStore.open(dir);
  s1.addRedactor((s) => s.replaceAll('one-secret', '[redacted]'));
  for (let i = 0; i < 20; i++) (i % 2 ? s1 : s2).append(i % 2 ? 's1' : 's2', 'test.event', { i, v: 'one-secret' });
  s1.close();
  s2.close();
  const result = verifyAudit(dir);
  assert.equal(result.ok, true);
  assert.equal(result.records, 21);
  const reader = AuditStore.open(dir);
  const values = [...reader.records({ type: 'test.event' })].map((r) => `${r.session}:${String(r.data.v)}`);
  reader.close();
  // Only s1's redactor applies to s1's records.
  assert.deepEqual(values.slice(0, 2), ['s2:one-secret', 's1:[redacted]']);
});

test('files are private: dir 0700, key and db 0600, key is 32 bytes', (t) => {
  const dir = stateDir(t);
  AuditStore.open(dir).close();
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dir, 'audit.key')).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'audit.key')).size, 32);
  assert.equal(statSync(join(dir, 'audit.db')).mode & 0o777, 0o600);
});

test('a key file open to group or other is refused', (t) => {
  const { dir } = filledLog(t, 2);
  chmodSync(join(dir, 'audit.key'), 0o640);
  assert.throws(() => AuditStore.open(dir), code('CORDON_AUDIT_UNAVAILABLE'));
  const v = verifyAudit(dir);
  assert.equal(v.ok, false);
  assert.ok(v.problems.some((p) => p.kind === 'key' && /group or other/.test(p.message)));
  chmodSync(join(dir, 'audit.key'), 0o600);
  assert.equal(verifyAudit(dir).ok, true);
});

test('a state directory writable by others is refused', (t) => {
  const dir = stateDir(t);
  AuditStore.open(dir).close();
  chmodSync(dir, 0o777);
  assert.throws(() => AuditStore.open(dir), code('CORDON_AUDIT_UNAVAILABLE'));
});

test('a missing key is not silently replaced while a log exists', (t) => {
  const { dir } = filledLog(t, 2);
  renameSync(join(dir, 'audit.key'), join(dir, 'saved.key'));
  assert.throws(() => AuditStore.open(dir), code('CORDON_AUDIT_UNAVAILABLE'));
  assert.equal(existsSync(join(dir, 'audit.key')), false);
  renameSync(join(dir, 'saved.key'), join(dir, 'audit.key'));
  const store = AuditStore.open(dir);
  assert.equal(store.append('s', 'test.event').seq, 4);
  store.close();
});

test('bad arguments are refused with a CordonError', (t) => {
  const store = AuditStore.open(stateDir(t));
  t.after(() => store.close());
  assert.throws(() => store.append('', 'test.event'), code('CORDON_INTERNAL'));
  assert.throws(() => store.append('s 1', 'test.event'), code('CORDON_INTERNAL'));
  assert.throws(() => store.append('s', 'bad\ntype'), code('CORDON_INTERNAL'));
  assert.throws(() => store.append('s', 't', [] as unknown as Record<string, unknown>), code('CORDON_INTERNAL'));
  assert.throws(() => store.append('s', 't', { n: 1n }), code('CORDON_INTERNAL'));
  assert.throws(() => store.append('s', 't', { big: 'x'.repeat(300_000) }), code('CORDON_INTERNAL'));
  assert.throws(() => store.tail(-1), code('CORDON_INTERNAL'));
  assert.equal([...store.records()].length, 1); // nothing was written
});

test('formatRecord gives one line and defuses terminal escapes', () => {
  const line = formatRecord({
    seq: 42,
    ts: '2026-05-25T10:00:00.123Z',
    session: 's-7f3a',
    type: 'proxy.flow',
    data: { host: 'api.example.com', status: 200, path: '/a b\n\u001b[2J\u202egnp.exe', list: [1, 'x'] },
    prev: GENESIS,
    mac: GENESIS,
  });
  assert.equal(
    line,
    '2026-05-25T10:00:00.123Z #42 s-7f3a proxy.flow host=api.example.com list=[1,"x"] path="/a b\\n\\u001b[2J\\u202egnp.exe" status=200',
  );
  assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\u009f\u202e]/);
});

test('open + 2 appends + close is cheap', (t) => {
  const dir = stateDir(t);
  AuditStore.open(dir).close();
  const times: number[] = [];
  for (let i = 0; i < 15; i++) {
    const start = performance.now();
    const store = AuditStore.open(dir);
    store.append('bench', 'session.start', { argv: ['true'] });
    store.append('bench', 'session.end', { status: 0 });
    store.close();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  t.diagnostic(`open + 2 appends + close: median ${median.toFixed(2)} ms, first ${times[0]!.toFixed(2)}..max ${times.at(-1)!.toFixed(2)} ms`);
  assert.ok(median < 20, `median ${median} ms`); // budget for the whole of \`cordon run -- true\` is ~60 ms
});
