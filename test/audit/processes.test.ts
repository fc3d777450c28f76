// Real processes against one audit.db: writers killed mid-append, and writers
// racing each other (including on the very first open of the log).

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { AuditStore, verifyAudit } from '../../src/audit/index.ts';
import { CHILD, stateDir } from './helpers.ts';

function writer(dir: string, session: string, count: number | 'forever', wait = false): ChildProcess {
  const args = [CHILD, dir, session, String(count), ...(wait ? ['wait'] : [])];
  return spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
}

async function ready(child: ChildProcess): Promise<void> {
  let out = '';
  for await (const chunk of child.stdout!) {
    out += String(chunk);
    if (out.includes('ready\n')) return;
  }
  throw new Error('writer exited before it was ready');
}

function seqs(dir: string): number[] {
  const store = AuditStore.open(dir);
  try {
    return [...store.records()].map((r) => r.seq);
  } finally {
    store.close();
  }
}

test('SIGKILL at a random moment always leaves a log that verifies', async (t) => {
  const dir = stateDir(t);
  let previous = 0;
  let grewMidLoop = 0;
  for (let round = 0; round < 20; round++) {
    const child = writer(dir, `crash-${round}`, 'forever');
    const exited = once(child, 'exit');
    // Mostly kill mid-loop; every fourth round, kill anywhere from start-up on (including during the first open).
    if (round % 4 === 0) await sleep(Math.random() * 80);
    else {
      await ready(child);
      await sleep(2 + Math.random() * 20);
    }
    child.kill('SIGKILL');
    const [code, signal] = await exited;
    assert.equal(signal, 'SIGKILL', `round ${round}: the writer ended by itself (code ${String(code)})`);

    const result = verifyAudit(dir);
    assert.deepEqual(result.problems, [], `round ${round}`);
    assert.equal(result.ok, true);
    if (result.records > 0) {
      const s = seqs(dir);
      assert.deepEqual(s, Array.from({ length: s.length }, (_, i) => i + 1), `round ${round}: seq not contiguous`);
      assert.equal(result.head, s.length);
    }
    assert.ok(result.records >= previous);
    if (result.records > previous + 1) grewMidLoop++;
    previous = result.records;
  }
  t.diagnostic(`${previous} records after 20 kills; ${grewMidLoop} rounds killed mid-loop`);
  assert.ok(grewMidLoop >= 8, 'most kills should land while the writer is appending');
});

test('two writer processes, 500 appends each, make one linear chain of 1000', async (t) => {
  const dir = stateDir(t); // neither has opened it before: both race to create key, schema and audit.init
  const children = [writer(dir, 'writer-a', 500, true), writer(dir, 'writer-b', 500, true)];
  const exits = children.map((c) => once(c, 'exit'));
  await Promise.all(children.map(ready));
  for (const c of children) c.stdin!.end('go\n');
  for (const [code] of await Promise.all(exits)) assert.equal(code, 0);

  const result = verifyAudit(dir);
  assert.deepEqual(result, { ok: true, records: 1001, head: 1001, problems: [], omitted: 0 });
  const store = AuditStore.open(dir);
  t.after(() => store.close());
  const records = [...store.records()];
  assert.deepEqual(records.map((r) => r.seq), Array.from({ length: 1001 }, (_, i) => i + 1));
  assert.equal(records.filter((r) => r.type === 'audit.init').length, 1);
  for (const session of ['writer-a', 'writer-b']) {
    const mine = records.filter((r) => r.session === session).map((r) => r.data.i);
    assert.deepEqual(mine, Array.from({ length: 500 }, (_, i) => i), `${session}: lost or reordered appends`);
  }
  let switches = 0;
  for (let i = 2; i < records.length; i++) if (records[i]!.session !== records[i - 1]!.session) switches++;
  t.diagnostic(`the writers alternated ${switches} times`);
  assert.ok(switches >= 2, 'the writers did not overlap, so this run proved little');
});
