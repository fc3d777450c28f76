// cordon doctor and the README's demo.

import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { assertFreshBuild, cordonSync, isolated } from '../helpers/cordon.ts';

before(() => assertFreshBuild());

describe('cordon doctor', () => {
  it('reports every prerequisite, and this machine has the required ones', () => {
    const t = isolated();
    const r = cordonSync(['doctor', '--json'], { env: t.env });
    const out = JSON.parse(r.stdout);
    const by = Object.fromEntries(out.checks.map((c: { id: string; status: string }) => [c.id, c.status]));
    for (const id of ['node', 'bwrap', 'userns', 'helpers', 'seccomp', 'landlock', 'cgroups', 'nftables', 'kvm', 'runsc']) assert.ok(id in by, `check ${id} is reported`);
    for (const id of ['node', 'bwrap', 'userns', 'helpers', 'seccomp', 'landlock']) assert.equal(by[id], 'works', `${id}: ${JSON.stringify(out.checks.find((c: { id: string }) => c.id === id))}`);
    assert.equal(out.ok, true);
    assert.equal(r.status, 0);
    for (const c of out.checks) if (c.status !== 'works') assert.ok(c.fix, `${c.id} says how to fix it`);
    const text = cordonSync(['doctor'], { env: t.env });
    assert.match(text.stdout, /works\s+bubblewrap/);
  });
});

describe('cordon demo', () => {
  it('contains every move and lets the agent do its job', () => {
    const t = isolated();
    const r = cordonSync(['demo'], { env: t.env, timeout: 120_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /(\d+) of \1 moves contained/);
    assert.doesNotMatch(r.stdout, /LEAKED/);
    assert.match(r.stdout, /audit tail --session s/);
  });
});
