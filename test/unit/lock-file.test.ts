// The shared lock file (src/lock-file.ts): one holder at a time, stale holders
// broken, and a stale holder judged by two processes at once broken only once.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { breakIfStale, lockToken, procStartTime, tryLock, unlock } from '../../src/lock-file.ts';

const dir = () => mkdtempSync(join(tmpdir(), 'cordon-lock-'));

describe('lock file', () => {
  it('one holder at a time; unlock only by the holder', () => {
    const f = join(dir(), 'l');
    const a = lockToken();
    const b = lockToken();
    assert.notEqual(a, b);
    assert.equal(tryLock(f, a), true);
    assert.equal(tryLock(f, b), false);
    assert.equal(breakIfStale(f, 1000), process.pid, 'a live holder is reported');
    unlock(f, b);
    assert.ok(existsSync(f), 'not the holder: nothing happens');
    unlock(f, a);
    assert.ok(!existsSync(f));
  });

  it('breaks a holder that is gone, a reused pid, and an empty file once it is old; not a fresh empty one', () => {
    const f = join(dir(), 'l');
    writeFileSync(f, '999999999 1 aa\n');
    assert.equal(breakIfStale(f, 1000), 0);
    assert.ok(!existsSync(f));
    writeFileSync(f, `${process.pid} not-my-start-time aa\n`);
    assert.equal(breakIfStale(f, 1000), 0, 'same pid, another process (start time differs)');
    writeFileSync(f, '');
    assert.equal(breakIfStale(f, 60_000), -1, 'being written');
    assert.equal(breakIfStale(f, 0), 0, 'left empty');
    assert.equal(procStartTime(999_999_999), null);
  });

  it('processes contending from a stale holder: never two inside at once (the takeover race itself is too narrow to provoke here)', async () => {
    const { spawn } = await import('node:child_process');
    const mod = new URL('../../src/lock-file.ts', import.meta.url).pathname;
    const script = `
      import { openSync, closeSync, unlinkSync } from 'node:fs';
      import { breakIfStale, lockToken, tryLock, unlock } from ${JSON.stringify(mod)};
      const [f, inside] = process.argv.slice(1);
      const token = lockToken();
      for (;;) { if (tryLock(f, token)) break; if (breakIfStale(f, 1000) !== 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); }
      try { closeSync(openSync(inside, 'wx')); } catch { console.log('OVERLAP'); process.exit(0); }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      unlinkSync(inside);
      unlock(f, token);
      console.log('ok');`;
    let overlaps = 0;
    for (let trial = 0; trial < 10; trial++) {
      const d = dir();
      const f = join(d, 'l');
      writeFileSync(f, '999999999 1 stale\n');
      const runs = Array.from({ length: 4 }, () =>
        new Promise<string>((resolve) => {
          const c = spawn(process.execPath, ['--input-type=module', '-e', script, f, join(d, 'inside')], { stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          c.stdout.on('data', (x) => (out += x));
          c.on('exit', () => resolve(out.trim()));
        }),
      );
      const outs = await Promise.all(runs);
      overlaps += outs.filter((o) => o === 'OVERLAP').length;
      assert.deepEqual(outs.filter((o) => o !== 'ok' && o !== 'OVERLAP'), []);
    }
    assert.equal(overlaps, 0);
  });
});
