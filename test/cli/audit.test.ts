// cordon audit tail / verify / export on a real store, including tampering.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { before, describe, it } from 'node:test';
import { assertFreshBuild, cordonSync, isolated } from '../helpers/cordon.ts';

before(() => assertFreshBuild());

function withSessions() {
  const t = isolated();
  for (const code of [0, 3]) assert.equal(cordonSync(['run', '--', 'sh', '-c', `exit ${code}`], { env: t.env, cwd: t.workspace }).status, code);
  return { t, db: join(t.root, 'state', 'audit.db') };
}

describe('cordon audit', () => {
  it('tail shows each session from start to end, as text and JSON', () => {
    const { t } = withSessions();
    const text = cordonSync(['audit', 'tail', '-n', '50'], { env: t.env });
    assert.equal(text.status, 0);
    assert.match(text.stdout, /session\.start/);
    assert.match(text.stdout, /session\.end/);
    const json = cordonSync(['audit', 'tail', '--json', '--type', 'session.end'], { env: t.env });
    const ends = json.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(ends.map((e) => e.data.status), [0, 3]);
    const s = ends[1].session;
    const one = cordonSync(['audit', 'tail', '--json', '--session', s], { env: t.env }).stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(one.every((r) => r.session === s));
    assert.deepEqual(
      one.map((r) => r.type),
      ['session.start', 'sandbox.plan', 'env.filter', 'sandbox.limits', 'session.end'],
    );
    const start = one[0].data;
    assert.equal(typeof start.policyHash, 'string');
    assert.equal(start.backend, 'bwrap');
    assert.deepEqual(start.argv, ['sh', '-c', 'exit 3']);
  });

  it('verify passes on an untouched log', () => {
    const { t } = withSessions();
    const r = cordonSync(['audit', 'verify', '--json'], { env: t.env });
    assert.equal(r.status, 0);
    assert.equal(JSON.parse(r.stdout).ok, true);
  });

  const tampers: [string, (db: DatabaseSync) => void, RegExp][] = [
    ['an edited record', (db) => db.exec(`UPDATE records SET data = replace(data, '"status":3', '"status":0') WHERE type = 'session.end'`), /mac/],
    ['a deleted record', (db) => db.exec(`DELETE FROM records WHERE seq = 3`), /gap|chain/],
    ['reordered records', (db) => {
      const a = db.prepare('SELECT * FROM records WHERE seq = 3').get() as Record<string, unknown>;
      const b = db.prepare('SELECT * FROM records WHERE seq = 4').get() as Record<string, unknown>;
      const upd = db.prepare('UPDATE records SET ts = ?, session = ?, type = ?, data = ?, prev = ?, mac = ? WHERE seq = ?');
      upd.run(b.ts as string, b.session as string, b.type as string, b.data as string, b.prev as string, b.mac as string, 3);
      upd.run(a.ts as string, a.session as string, a.type as string, a.data as string, a.prev as string, a.mac as string, 4);
    }, /order|mac|chain/],
    ['a truncated tail', (db) => db.exec(`DELETE FROM records WHERE seq > (SELECT max(seq) - 2 FROM records)`), /truncated/],
  ];
  for (const [what, tamper, kind] of tampers) {
    it(`verify detects ${what}`, () => {
      const { t, db } = withSessions();
      const conn = new DatabaseSync(db);
      // A tamperer with file access drops the append-only triggers first.
      conn.exec('DROP TRIGGER IF EXISTS records_no_update; DROP TRIGGER IF EXISTS records_no_delete;');
      tamper(conn);
      conn.close();
      const r = cordonSync(['audit', 'verify', '--json'], { env: t.env });
      assert.equal(r.status, 1, r.stdout);
      const res = JSON.parse(r.stdout);
      assert.equal(res.ok, false);
      assert.ok(res.problems.some((p: { kind: string }) => kind.test(p.kind)), JSON.stringify(res.problems));
      const text = cordonSync(['audit', 'verify'], { env: t.env });
      assert.match(text.stdout, /TAMPERED/);
    });
  }

  it('export writes JSON Lines with the chain and an authenticated trailer', () => {
    const { t } = withSessions();
    const out = join(t.root, 'export.jsonl');
    const r = cordonSync(['audit', 'export', '--jsonl', '-o', out], { env: t.env });
    assert.equal(r.status, 0, r.stderr);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    assert.ok(lines.length > 10);
    const first = JSON.parse(lines[1]!);
    assert.ok('mac' in first && 'prev' in first && 'seq' in first, lines[1]);
    const stdout = cordonSync(['audit', 'export', '--jsonl'], { env: t.env }).stdout.trim().split('\n');
    assert.equal(stdout.length, lines.length);
  });
});
