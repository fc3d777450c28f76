// Placeholder ownership between sessions (src/session/journal.ts): the lock,
// adoption, release and the dead-session sweep, on journals written by hand.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { adoptPlaceholders, placeholdersInUse, procStartTime, releasePlaceholders, sessionsDir, sweepDeadSessions, withPlaceholderLock, writeJournal, type Journal } from '../../src/session/journal.ts';

function setup() {
  const root = mkdtempSync(join(tmpdir(), 'cordon-journal-'));
  const runtime = join(root, 'run');
  const ws = join(root, 'ws');
  mkdirSync(ws, { recursive: true });
  mkdirSync(sessionsDir(runtime), { recursive: true });
  const journal = (id: string, live: boolean, placeholders: string[], workspace = ws) => {
    const dir = join(sessionsDir(runtime), id);
    mkdirSync(dir, { recursive: true });
    const j: Journal = {
      pid: live ? process.pid : 999_999_999,
      startTime: live ? (procStartTime(process.pid) ?? '') : '1',
      sessionId: id,
      workspace,
      placeholders: placeholders.map((p) => ({ path: join(workspace, p), dir: false })),
    };
    writeJournal(dir, j);
    for (const p of placeholders) writeFileSync(join(workspace, p), '');
    return dir;
  };
  return { runtime, ws, journal };
}

const id = (n: number) => `smwyaaaa${n}-0123456789`;

describe('placeholder ownership', () => {
  it('release removes only what no other live session lists; adoption takes live sessions\' placeholders in the workspace', () => {
    const { runtime, ws, journal } = setup();
    journal(id(1), true, ['.mcp.json', '.envrc']);
    writeFileSync(join(ws, 'mine'), '');
    assert.deepEqual(placeholdersInUse(runtime, id(2)), new Set([join(ws, '.mcp.json'), join(ws, '.envrc')]));
    assert.deepEqual(adoptPlaceholders(runtime, ws, id(2)).map((p) => p.path).sort(), [join(ws, '.envrc'), join(ws, '.mcp.json')]);
    assert.deepEqual(adoptPlaceholders(runtime, join(ws, 'elsewhere'), id(2)), [], 'another workspace adopts nothing');
    releasePlaceholders(runtime, id(2), [{ path: join(ws, '.mcp.json'), dir: false }, { path: join(ws, 'mine'), dir: false }]);
    assert.ok(existsSync(join(ws, '.mcp.json')), 'still listed by a live session');
    assert.ok(!existsSync(join(ws, 'mine')), 'nobody else needs it');
  });

  it('the dead-session sweep removes a dead session\'s placeholders unless a live one lists them', () => {
    const { runtime, ws, journal } = setup();
    const dead = journal(id(1), false, ['.mcp.json', '.envrc']);
    journal(id(2), true, ['.envrc']);
    assert.deepEqual(sweepDeadSessions(runtime), [id(1)]);
    assert.ok(!existsSync(dead) && !existsSync(join(ws, '.mcp.json')));
    assert.ok(existsSync(join(ws, '.envrc')), 'the live session still depends on it');
  });

  it('the lock: released after use, a dead holder taken over, a live one waited for and then refused', () => {
    const { runtime } = setup();
    const lock = join(sessionsDir(runtime), '.placeholders.lock');
    assert.equal(withPlaceholderLock(runtime, () => existsSync(lock)), true);
    assert.ok(!existsSync(lock));
    writeFileSync(lock, '999999999 1');
    assert.equal(withPlaceholderLock(runtime, () => 7), 7, 'a holder that is gone does not block');
    writeFileSync(lock, `${process.pid} ${procStartTime(process.pid)}`);
    assert.throws(() => withPlaceholderLock(runtime, () => 1, 50), (e: Error & { code?: string }) => e.code === 'CORDON_SANDBOX_SETUP' && /holds the placeholder lock/.test(e.message));
  });
});
