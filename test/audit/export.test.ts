import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { type AuditFilter, exportJsonl, verifyJsonl } from '../../src/audit/index.ts';
import { attacker, filledLog, summary } from './helpers.ts';

/** Export into a string, through a stream that applies backpressure. */
async function exported(dir: string, filter?: AuditFilter): Promise<string> {
  const chunks: string[] = [];
  const out = new Writable({
    highWaterMark: 64,
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      setImmediate(done);
    },
  });
  await exportJsonl(dir, out, filter);
  return chunks.join('');
}

const keyOf = (dir: string) => readFileSync(join(dir, 'audit.key'));
const lines = (text: string) => text.trimEnd().split('\n');
const join_ = (ls: string[]) => `${ls.join('\n')}\n`;

test('an export verifies with the key, record lines carry seq/prev/mac', async (t) => {
  const { dir, records } = filledLog(t);
  const text = await exported(dir);
  const ls = lines(text);
  assert.equal(ls.length, 11); // 10 records + trailer
  assert.deepEqual(JSON.parse(ls[3]!), records[2]);
  assert.deepEqual(verifyJsonl(text, keyOf(dir)), { ok: true, records: 10, head: 10, problems: [], omitted: 0 });
});

test('an edited line -> mac', async (t) => {
  const { dir } = filledLog(t);
  const ls = lines(await exported(dir));
  const edited = ls[4]!.replace('"note":"record 3"', '"note":"record three"');
  assert.notEqual(edited, ls[4]);
  ls[4] = edited;
  assert.deepEqual(summary(verifyJsonl(join_(ls), keyOf(dir))), ['mac@5']);
});

test('re-encoding a line (key order, spacing) is not tampering', async (t) => {
  const { dir } = filledLog(t);
  const ls = lines(await exported(dir));
  const rec = JSON.parse(ls[2]!) as Record<string, unknown>;
  ls[2] = JSON.stringify({ mac: rec.mac, data: rec.data, seq: rec.seq, prev: rec.prev, type: rec.type, session: rec.session, ts: rec.ts }, null, 0);
  assert.equal(verifyJsonl(join_(ls), keyOf(dir)).ok, true);
});

test('a deleted, a moved, a duplicated line, a lost tail and a lost trailer are detected', async (t) => {
  const { dir } = filledLog(t);
  const key = keyOf(dir);
  const ls = lines(await exported(dir));
  const trailer = ls.at(-1)!;
  assert.deepEqual(summary(verifyJsonl(join_([...ls.slice(0, 4), ...ls.slice(5)]), key)), ['gap@6', 'head@-', 'truncated@-']);
  assert.deepEqual(summary(verifyJsonl(join_([ls[0]!, ls[2]!, ls[1]!, ...ls.slice(3)]), key)), ['order@2', 'gap@3', 'head@-']);
  assert.deepEqual(summary(verifyJsonl(join_([...ls.slice(0, 5), ls[4]!, ...ls.slice(5)]), key)), ['order@5', 'head@-', 'truncated@-']);
  assert.deepEqual(summary(verifyJsonl(join_([...ls.slice(0, 8), trailer]), key)), ['head@-', 'truncated@-', 'truncated@9']);
  assert.deepEqual(summary(verifyJsonl(join_(ls.slice(0, -1)), key)), ['truncated@-']);
  assert.deepEqual(summary(verifyJsonl(join_(ls.slice(0, 6)), key)), ['truncated@-']);
});

test('a filtered export verifies, and dropping one of its lines is detected', async (t) => {
  const { dir } = filledLog(t);
  const key = keyOf(dir);
  const text = await exported(dir, { session: 'sess-b' });
  const ls = lines(text);
  assert.equal(ls.length, 5); // records 3, 5, 7, 9 + trailer
  assert.deepEqual(verifyJsonl(text, key), { ok: true, records: 4, head: 10, problems: [], omitted: 0 });
  assert.deepEqual(summary(verifyJsonl(join_([ls[0]!, ...ls.slice(2)]), key)), ['head@-', 'truncated@-']);
  const trailer = JSON.parse(ls.at(-1)!) as Record<string, unknown>;
  const widened = JSON.stringify({ ...trailer, filter: {} }); // pretend it is a complete export
  assert.equal(verifyJsonl(join_([...ls.slice(0, -1), widened]), key).ok, false);
});

test('an export after a seq (what a poller would fetch) verifies', async (t) => {
  const { dir } = filledLog(t);
  const text = await exported(dir, { afterSeq: 6 });
  assert.equal(lines(text).length, 5);
  assert.deepEqual(verifyJsonl(text, keyOf(dir)), { ok: true, records: 4, head: 10, problems: [], omitted: 0 });
  assert.equal((await exported(dir, { afterSeq: 10 })).split('\n').length, 2); // just the trailer
  assert.equal(verifyJsonl(await exported(dir, { afterSeq: 10 }), keyOf(dir)).ok, true);
});

test('the wrong key -> key; a tampered store exports evidence that still fails', async (t) => {
  const { dir } = filledLog(t);
  assert.deepEqual(summary(verifyJsonl(await exported(dir), randomBytes(32))), ['key@-']);
  const db = attacker(dir);
  db.prepare(`UPDATE records SET data = '{"i":0,"note":"nothing to see"}' WHERE seq = 8`).run();
  db.close();
  assert.deepEqual(summary(verifyJsonl(await exported(dir), keyOf(dir))), ['mac@8']);
});
