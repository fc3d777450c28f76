// Each test edits the database behind cordon's back, through a second raw
// SQLite connection, and checks that verifyAudit names what happened.
// The log: seq 1 is audit.init, seq 2..10 are test records.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isCordonError } from '../../src/errors.ts';
import { AuditStore, verifyAudit } from '../../src/audit/index.ts';
import { attacker, filledLog, stateDir, summary } from './helpers.ts';

test('an untouched log verifies', (t) => {
  const { dir } = filledLog(t);
  assert.deepEqual(verifyAudit(dir), { ok: true, records: 10, head: 10, problems: [], omitted: 0 });
});

test('verify changes nothing on disk', (t) => {
  const { dir } = filledLog(t);
  // A read-only SQLite connection may leave an empty -wal/-shm behind; the log's content must not change.
  const read = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f)) : Buffer.alloc(0));
  const snapshot = () => ['audit.db', 'audit.db-wal', 'audit.key'].map((f) => createHash('sha256').update(read(f)).digest('hex')).join(' ');
  const before = snapshot();
  assert.equal(verifyAudit(dir).ok, true);
  assert.equal(snapshot(), before);
});

test('edited data field -> mac', (t) => {
  const { dir } = filledLog(t);
  const db = attacker(dir);
  db.prepare(`UPDATE records SET data = json_set(data, '$.note', 'harmless') WHERE seq = 5`).run();
  db.close();
  assert.deepEqual(summary(verifyAudit(dir)), ['mac@5']);
});

test('every record edited, but the head row still vouches for the key -> mac, not key', (t) => {
  const { dir } = filledLog(t, 0);
  const db = attacker(dir);
  db.prepare(`UPDATE records SET data = '{"schema":2}' WHERE seq = 1`).run();
  db.close();
  assert.deepEqual(summary(verifyAudit(dir)), ['mac@1']);
});

test('edited type -> mac', (t) => {
  const { dir } = filledLog(t);
  const db = attacker(dir);
  db.prepare(`UPDATE records SET type = 'test.boring' WHERE seq = 4`).run();
  db.close();
  assert.deepEqual(summary(verifyAudit(dir)), ['mac@4']);
});

test('edited record with its mac replaced by a plain hash -> mac, and the break is not reported twice', (t) => {
  const { dir } = filledLog(t);
  const db = attacker(dir);
  db.prepare(`UPDATE records SET data = '{"i":0}', mac = lower(hex(randomblob(32))) WHERE seq = 6`).run();
  db.close();
  assert.deepEqual(summary(verifyAudit(dir)), ['mac@6']);
});

test('deleted middle record -> gap', (t) => {
  const { dir } = filledLog(t);
  const db = attacker(dir);
  db.prepare('DELETE FROM records WHERE seq = 5').run();
  db.close();
  const r = verifyAudit(dir);
  assert.deepEqual(summary(r), ['gap@6']);
  assert.match(r.problems[0]!.message, /record 5 is missing/);
});

test('deleted first record -> gap', (t) => {
  const { dir } = filledLog(t);
  const db = attacker(dir);
  db.prepare('DELETE FROM records WHERE seq = 1').run();
  db.close();
  assert.deepEqual(summary(verifyAudit(dir)), ['gap@2']);
});

test('two records with swapped content -> order', (t) => {
  const { dir } = filledLog(t);
  const db = attacker(dir);
  const cols = 'ts, session, type, data, prev, mac';
  const r3 = db.prepare(`SELECT ${cols} FROM records WHERE seq = 3`).get()!;
  const r7 = db.prepare(`SELECT ${cols} FROM records WHERE seq = 7`).get()!;
  const put = db.prepare('UPDATE records SET ts = ?, session = ?, type = ?, data = ?, prev = ?, mac = ? WHERE seq = ?');
  const vals = (r: typeof r3) => [r.ts, r.session, r.type, r.data, r.prev, r.mac] as string[];
  put.run(...vals(r7), 3);
  put.run(...vals(r3), 7);
  db.close();
  const r = verifyAudit(dir);
  assert.deepEqual(summary(r), ['order@3', 'order@7']);
  assert.match(r.problems[0]!.message, /holds the content of record 7/);
});

test('a genuine record spliced in from another log with the same key -> chain', (t) => {
  const a = filledLog(t);
  const b = stateDir(t);
  mkdirSync(b, { mode: 0o700 });
  copyFileSync(join(a.dir, 'audit.key'), join(b, 'audit.key'));
  const other = AuditStore.open(b);
  for (let i = 0; i < 3; i++) other.append('elsewhere', 'test.event', { i });
  other.close();
  const foreign = attacker(b).prepare('SELECT ts, session, type, data, prev, mac FROM records WHERE seq = 3').get()!;
  const db = attacker(a.dir);
  db.prepare('UPDATE records SET ts = ?, session = ?, type = ?, data = ?, prev = ?, mac = ? WHERE seq = 3').run(
    ...([foreign.ts, foreign.session, foreign.type, foreign.data, foreign.prev, foreign.mac] as string[]),
  );
  db.close();
  assert.equal(verifyAudit(b).ok, true);
  assert.deepEqual(summary(verifyAudit(a.dir)), ['chain@3']);
});

test('deleted last record -> truncated', (t) => {
  const { dir } = filledLog(t);
  const db = attacker(dir);
  db.prepare('DELETE FROM records WHERE seq = 10').run();
  db.close();
  const r = verifyAudit(dir);
  assert.deepEqual(summary(r), ['truncated@10']);
  assert.equal(r.head, 10);
});

test('deleted last 3 records and head rewritten to the new last record -> head', (t) => {
  const { dir } = filledLog(t);
  const db = attacker(dir);
  db.prepare('DELETE FROM records WHERE seq > 7').run();
  db.prepare('UPDATE head SET seq = 7, mac = (SELECT mac FROM records WHERE seq = 7)').run();
  db.close();
  assert.deepEqual(summary(verifyAudit(dir)), ['head@7']);
});

test('deleted last 3 records and head rewritten with a freshly computed (wrong-key) head MAC -> head', (t) => {
  const { dir } = filledLog(t);
  const db = attacker(dir);
  db.prepare('DELETE FROM records WHERE seq > 7').run();
  db.prepare('UPDATE head SET seq = 7, mac = (SELECT mac FROM records WHERE seq = 7), head_mac = lower(hex(randomblob(32)))').run();
  db.close();
  assert.deepEqual(summary(verifyAudit(dir)), ['head@7']);
});

test('an old head row replayed over a longer log -> head, and appends are refused', (t) => {
  const { dir } = filledLog(t, 4);
  const old = attacker(dir).prepare('SELECT seq, mac, head_mac FROM head').get()!;
  const store = AuditStore.open(dir);
  for (let i = 0; i < 3; i++) store.append('s', 'test.event', { i });
  const db = attacker(dir);
  db.prepare('UPDATE head SET seq = ?, mac = ?, head_mac = ?').run(old.seq as number, old.mac as string, old.head_mac as string);
  db.close();
  assert.deepEqual(summary(verifyAudit(dir)), ['head@5']);
  assert.throws(() => store.append('s', 'test.event'), (e) => isCordonError(e) && e.code === 'CORDON_AUDIT_TAMPERED' && /already exists/.test(e.message));
  store.close();
});

test('deleted head row -> head, and appends are refused', (t) => {
  const { dir } = filledLog(t);
  const db = attacker(dir);
  db.prepare('DELETE FROM head').run();
  db.close();
  assert.deepEqual(summary(verifyAudit(dir)), ['head@-']);
  const store = AuditStore.open(dir);
  assert.throws(() => store.append('s', 'test.event'), (e) => isCordonError(e) && e.code === 'CORDON_AUDIT_TAMPERED');
  store.close();
});

test('everything deleted -> truncated', (t) => {
  const { dir } = filledLog(t);
  const db = attacker(dir);
  db.exec('DELETE FROM records; DELETE FROM head;');
  db.close();
  assert.deepEqual(summary(verifyAudit(dir)), ['truncated@-']);
});

test('audit.db deleted -> truncated', (t) => {
  const { dir } = filledLog(t);
  for (const suffix of ['', '-wal', '-shm']) rmSync(join(dir, `audit.db${suffix}`), { force: true });
  assert.deepEqual(summary(verifyAudit(dir)), ['truncated@-']);
});

test('replaced key file -> key (one problem, not one per record)', (t) => {
  const { dir } = filledLog(t);
  unlinkSync(join(dir, 'audit.key'));
  writeFileSync(join(dir, 'audit.key'), randomBytes(32), { mode: 0o600 });
  const r = verifyAudit(dir);
  assert.deepEqual(summary(r), ['key@-']);
  assert.match(r.problems[0]!.message, /no record verifies/);
  // and the writer refuses to extend a log it cannot vouch for
  const store = AuditStore.open(dir);
  assert.throws(() => store.append('s', 'test.event'), (e) => isCordonError(e) && e.code === 'CORDON_AUDIT_TAMPERED');
  store.close();
});

test('missing key -> key, structure still checked', (t) => {
  const { dir } = filledLog(t);
  unlinkSync(join(dir, 'audit.key'));
  assert.deepEqual(summary(verifyAudit(dir)), ['key@-']);
  const db = attacker(dir);
  db.prepare('DELETE FROM records WHERE seq = 4').run();
  db.close();
  assert.deepEqual(summary(verifyAudit(dir)), ['gap@5', 'key@-']);
});

test('malformed rows and a damaged file are reported, not thrown', (t) => {
  const { dir } = filledLog(t);
  const db = attacker(dir);
  db.prepare(`UPDATE records SET data = 'not json' WHERE seq = 3`).run();
  db.close();
  assert.deepEqual(summary(verifyAudit(dir)), ['schema@3']);
  for (const suffix of ['-wal', '-shm']) rmSync(join(dir, `audit.db${suffix}`), { force: true });
  writeFileSync(join(dir, 'audit.db'), 'this is not a database, it is a text file of some length'.repeat(100));
  const r = verifyAudit(dir);
  assert.equal(r.ok, false);
  assert.deepEqual(summary(r), ['schema@-']);
});
