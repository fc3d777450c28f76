// Resource limits: each one enforced inside, and each hit reported and audited.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { AuditStore } from '../../src/audit/index.ts';
import { assertFreshBuild, CORDON, cordonSync, isolated, type Isolated } from '../helpers/cordon.ts';
import { asTestUser, ensureTestUser } from '../helpers/users.ts';

before(() => assertFreshBuild());

function withPolicy(t: Isolated, yaml: string): string {
  const p = join(t.root, `policy-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(p, `version: 1\n${yaml}`);
  return p;
}

function hits(t: Isolated): string[] {
  const store = AuditStore.open(join(t.root, 'state'));
  try {
    return store.tail(50, { type: 'limit.hit' }).map((r) => String(r.data.limit));
  } finally {
    store.close();
  }
}

const run = (t: Isolated, policy: string, script: string, env: NodeJS.ProcessEnv = {}) =>
  cordonSync(['run', '--no-tty', '--policy', policy, '--', 'sh', '-c', script], { env: { ...t.env, ...env }, cwd: t.workspace, timeout: 120_000 });

describe('limits (cgroups where the host has them)', () => {
  it('processes: forks beyond the limit fail, and the hit is audited', () => {
    const t = isolated();
    const r = run(t, withPolicy(t, 'limits: {processes: 16}\n'), 'n=0; for i in $(seq 40); do sleep 3 & n=$((n+1)); done 2>/dev/null; echo started; wait');
    assert.match(r.stderr, /limit reached: processes/);
    assert.ok(hits(t).includes('processes'));
  });

  it('memory: a process that outgrows the limit is stopped, and the hit is audited', () => {
    const t = isolated();
    const r = run(t, withPolicy(t, 'limits: {memory: 64MiB}\n'), 'python3 -c "b = bytearray(400 * 1024 * 1024); print(len(b))"');
    assert.notEqual(r.status, 0);
    assert.doesNotMatch(r.stdout, /419430400/);
    assert.ok(hits(t).includes('memory'), `audited hits: ${hits(t).join(',')}; stderr: ${r.stderr}`);
  });

  it('cpuTime: a busy loop is killed with SIGXCPU (152), and the hit is audited', () => {
    const t = isolated();
    const r = run(t, withPolicy(t, 'limits: {cpuTime: 1s}\n'), 'exec sh -c "while :; do :; done"');
    assert.equal(r.status, 152);
    assert.ok(hits(t).includes('cpuTime'));
  });

  it('fileSize: writing past the limit fails (SIGXFSZ, 153), and the hit is audited', () => {
    const t = isolated();
    const r = run(t, withPolicy(t, 'limits: {fileSize: 1MiB}\n'), 'exec dd if=/dev/zero of=big bs=1M count=4');
    assert.equal(r.status, 153);
    assert.ok(hits(t).includes('fileSize'));
  });

  it('openFiles: the descriptor limit applies inside', () => {
    const t = isolated();
    const r = run(t, withPolicy(t, 'limits: {openFiles: 64}\n'), 'ulimit -n; python3 -c "\nimport os\nfds=[]\ntry:\n  [fds.append(os.open(\'/dev/null\', 0)) for _ in range(200)]\nexcept OSError as e: print(\'EMFILE after\', len(fds))"');
    assert.match(r.stdout, /^64$/m);
    assert.match(r.stdout, /EMFILE after 6\d/);
  });
});

describe('limits (rlimits only)', () => {
  it('as root without cgroups, a process limit cannot be enforced: cordon refuses to start', () => {
    const t = isolated();
    const r = run(t, withPolicy(t, 'limits: {processes: 16}\n'), 'true', { CORDON_LIMITS_MODE: 'rlimit' });
    assert.equal(r.status, 125);
    assert.match(r.stderr, /cannot limit the number of processes/);
  });

  it('memory becomes a per-process address-space limit', () => {
    const t = isolated();
    const r = run(t, withPolicy(t, 'limits: {memory: 256MiB, processes: unlimited}\n'), 'python3 -c "b = bytearray(400 * 1024 * 1024)" 2>&1; echo status=$?', { CORDON_LIMITS_MODE: 'rlimit' });
    assert.match(r.stdout, /MemoryError/);
  });

  it('as an unprivileged user, RLIMIT_NPROC caps processes per sandbox', () => {
    const { uid, gid } = ensureTestUser();
    const t = isolated();
    for (const d of [t.root, t.home, t.workspace, join(t.root, 'state'), join(t.root, 'config'), join(t.root, 'run')]) chownSync(d, uid, gid);
    chmodSync(t.root, 0o755);
    const policy = withPolicy(t, 'limits: {processes: 16}\n');
    chownSync(policy, uid, gid);
    const env = { PATH: '/usr/bin:/bin', HOME: t.home, CORDON_STATE_DIR: join(t.root, 'state'), CORDON_CONFIG_DIR: join(t.root, 'config'), CORDON_RUNTIME_DIR: join(t.root, 'run'), CORDON_SYSTEM_DIR: join(t.root, 'system') };
    const forker = 'import os,time\nn=0\nfor i in range(40):\n  try:\n    if os.fork()==0:\n      time.sleep(2); os._exit(0)\n    n+=1\n  except OSError as e:\n    print("refused errno", e.errno); break\nprint("forked", n)';
    const argv = [...asTestUser(env), ...CORDON, 'run', '--no-tty', '--policy', policy, '--', 'python3', '-c', forker];
    const r = spawnSync(argv[0]!, argv.slice(1), { cwd: t.workspace, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `stdout: ${r.stdout} stderr: ${r.stderr}`);
    assert.match(r.stdout, /refused errno 11/, 'fork fails with EAGAIN at the limit');
    const forked = Number(/forked (\d+)/.exec(r.stdout)?.[1]);
    assert.ok(forked < 16, `forked ${forked} children under a limit of 16`);
  });
});
