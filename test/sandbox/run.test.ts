// cordon run: exit status, signals, stdio, environment, timeout and set-up failures.

import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { AuditStore } from '../../src/audit/index.ts';
import { assertFreshBuild, cordonSync, isolated } from '../helpers/cordon.ts';

before(() => assertFreshBuild());

describe('cordon run: exit status', () => {
  const t = isolated();
  const run = (cmd: string[], extra: Partial<{ input: string; env: NodeJS.ProcessEnv }> = {}) =>
    cordonSync(['run', '--no-tty', '--', ...cmd], { env: { ...t.env, ...extra.env }, cwd: t.workspace, input: extra.input });

  for (const code of [0, 1, 42, 255]) {
    it(`passes exit ${code} through`, () => assert.equal(run(['sh', '-c', `exit ${code}`]).status, code));
  }
  it('reports 128+n when the command is killed by signal n', () => {
    assert.equal(run(['sh', '-c', 'kill -TERM $$']).status, 143);
    assert.equal(run(['sh', '-c', 'kill -KILL $$']).status, 137);
  });
  it('127 for a command not found, 126 for one that cannot be executed', () => {
    const nf = run(['no-such-command']);
    assert.equal(nf.status, 127);
    assert.match(nf.stderr, /no-such-command: command not found/);
    writeFileSync(join(t.workspace, 'notexec'), 'echo hi\n', { mode: 0o644 });
    assert.equal(run(['./notexec']).status, 126);
  });
  it('relays stdin and stdout, and runs in the workspace', () => {
    const r = run(['sh', '-c', 'cat; pwd'], { input: 'hello from stdin\n' });
    assert.equal(r.status, 0);
    assert.equal(r.stdout, `hello from stdin\n${t.workspace}\n`);
  });
  it('125 when the sandbox cannot be set up, with the reason', () => {
    const fake = join(t.root, 'bad-bwrap');
    writeFileSync(fake, '#!/bin/sh\necho "bwrap: simulated set-up failure" >&2\nexit 1\n');
    chmodSync(fake, 0o755);
    const r = run(['true'], { env: { CORDON_BWRAP: fake } });
    assert.equal(r.status, 125);
    assert.match(r.stderr, /simulated set-up failure/);
    assert.match(r.stderr, /could not be set up/);
  });
  it('125 and a pointer to the line for an invalid policy', () => {
    const p = join(t.root, 'bad.yaml');
    writeFileSync(p, 'version: 1\nlimits:\n  memroy: 1GiB\n');
    const r = cordonSync(['run', '--policy', p, '--', 'true'], { env: t.env, cwd: t.workspace });
    assert.equal(r.status, 125);
    assert.match(r.stderr, /bad\.yaml:3:3: limits\.memroy: unknown field "memroy"/);
  });
  it('2 for a usage error', () => {
    assert.equal(cordonSync(['run'], { env: t.env, cwd: t.workspace }).status, 2);
    assert.equal(cordonSync(['run', '--bogus', '--', 'true'], { env: t.env, cwd: t.workspace }).status, 2);
  });
});

describe('cordon run: environment', () => {
  const t = isolated();
  it('clears the environment to the allowlist', () => {
    const r = cordonSync(['run', '--', 'env'], { env: { ...t.env, MY_TOKEN: 'should-not-pass', SOME_SETTING: 'x', LANG: 'C.UTF-8' }, cwd: t.workspace });
    assert.equal(r.status, 0);
    const names = r.stdout.trim().split('\n').map((l) => l.split('=')[0]).sort();
    assert.deepEqual(names.filter((n) => !['PWD', 'SHLVL', '_'].includes(n!)), ['CORDON_SANDBOX', 'CORDON_SESSION', 'HOME', 'LANG', 'LOGNAME', 'PATH', 'TERM', 'USER'].filter((n) => n !== 'TERM' || t.env.TERM !== undefined));
    assert.doesNotMatch(r.stdout, /should-not-pass/);
  });
  it('passes what the policy names, refuses secret-looking names', () => {
    const p = join(t.root, 'env.yaml');
    writeFileSync(p, 'version: 1\nenv:\n  pass: [SOME_SETTING, PREFIX_*]\n  set: {FIXED: value}\n');
    const r = cordonSync(['run', '--policy', p, '--', 'env'], { env: { ...t.env, SOME_SETTING: 'x', PREFIX_A: 'a', PREFIX_TOKEN: 'no' }, cwd: t.workspace });
    assert.match(r.stdout, /^SOME_SETTING=x$/m);
    assert.match(r.stdout, /^PREFIX_A=a$/m);
    assert.match(r.stdout, /^FIXED=value$/m);
    assert.doesNotMatch(r.stdout, /PREFIX_TOKEN/, 'a wildcard never sweeps in a secret-looking name');
    writeFileSync(p, 'version: 1\nenv:\n  pass: [GITHUB_TOKEN]\n');
    const refused = cordonSync(['run', '--policy', p, '--', 'env'], { env: { ...t.env, GITHUB_TOKEN: 'x' }, cwd: t.workspace });
    assert.equal(refused.status, 125);
    assert.match(refused.stderr, /looks like a secret/);
  });
});

describe('cordon run: timeout', () => {
  const t = isolated();
  it('kills the sandbox at the wall-clock limit, exits 124 and audits the hit', () => {
    const started = Date.now();
    const r = cordonSync(['run', '--timeout', '1s', '--', 'sh', '-c', 'sleep 30 & sleep 30; echo never'], { env: t.env, cwd: t.workspace });
    assert.equal(r.status, 124);
    assert.ok(Date.now() - started < 10_000);
    assert.doesNotMatch(r.stdout, /never/);
    const store = AuditStore.open(join(t.root, 'state'));
    try {
      const hits = store.tail(10, { type: 'limit.hit' });
      assert.equal(hits.at(-1)?.data.limit, 'timeout');
      assert.equal(store.tail(1, { type: 'session.end' })[0]?.data.status, 124);
    } finally {
      store.close();
    }
  });
});

describe('cordon run: workspace policy', () => {
  it('ignores an untrusted workspace policy and says so; applies it once trusted', () => {
    const t = isolated();
    mkdirSync(join(t.workspace, '.cordon'));
    writeFileSync(join(t.workspace, '.cordon', 'policy.yaml'), 'version: 1\nlimits:\n  openFiles: 77\n');
    let r = cordonSync(['run', '--', 'sh', '-c', 'ulimit -n'], { env: t.env, cwd: t.workspace });
    assert.equal(r.stdout.trim(), '4096');
    assert.match(r.stderr, /not trusted/);
    assert.equal(cordonSync(['trust', '--yes'], { env: t.env, cwd: t.workspace }).status, 0);
    r = cordonSync(['run', '--', 'sh', '-c', 'ulimit -n'], { env: t.env, cwd: t.workspace });
    assert.equal(r.stdout.trim(), '77');
    writeFileSync(join(t.workspace, '.cordon', 'policy.yaml'), 'version: 1\nfilesystem:\n  read: [/etc]\n');
    assert.equal(cordonSync(['trust', '--yes'], { env: t.env, cwd: t.workspace }).status, 125, 'a widening workspace policy cannot be trusted');
  });
});
