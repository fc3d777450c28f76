// cordon selftest: it must pass on a sound setup, and it must catch leaks in a
// deliberately weakened one (otherwise it proves nothing).

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { assertFreshBuild, cordonSync, isolated } from '../helpers/cordon.ts';

before(() => assertFreshBuild());

interface Out {
  ok: boolean;
  summary: { contained: number; leaked: number; notApplicable: number; errors: number };
  results: { id: string; class: number; outcome: string; detail: string; sessionId: string | null; evidence: { seq: number; type: string }[] }[];
}

function selftest(t: ReturnType<typeof isolated>, args: string[]): { status: number; out: Out; stderr: string } {
  const r = cordonSync(['selftest', '--json', ...args], { env: t.env, timeout: 600_000 });
  return { status: r.status, out: JSON.parse(r.stdout) as Out, stderr: r.stderr };
}

describe('cordon selftest', () => {
  it('a sound setup: every probe contained, evidence from the audit log, an HTML report', () => {
    const t = isolated();
    const report = join(t.root, 'report.html');
    const r = selftest(t, ['--only', '13-15', '--report', report]);
    assert.equal(r.status, 0, JSON.stringify(r.out.summary));
    assert.equal(r.out.ok, true);
    assert.equal(r.out.summary.leaked, 0);
    assert.ok(r.out.results.length >= 20);
    assert.ok(r.out.results.some((x) => x.class === 15), 'the cross-session section ran');
    for (const x of r.out.results) {
      assert.equal(x.outcome, 'contained', `${x.id}: ${x.detail}`);
      assert.ok(x.evidence.some((e) => e.type === 'sandbox.plan'), `${x.id} cites the audit record of its session`);
    }
    const html = readFileSync(report, 'utf8');
    assert.match(html, /<title>cordon selftest: Nothing leaked<\/title>/);
    assert.match(html, /Cross-session isolation/);
    assert.doesNotMatch(html, /<script/i, 'self-contained and inert');
  });

  it('a weakened filesystem policy (a dangerously... override mounting ~/.ssh) is reported LEAKED, exit 1', () => {
    const t = isolated();
    const p = join(t.root, 'weak.yaml');
    writeFileSync(p, 'version: 1\nfilesystem:\n  read: [~/.ssh]\n  dangerouslyAllowSecretPaths: [~/.ssh]\n');
    const r = selftest(t, ['--policy', p, '--only', '14']);
    assert.equal(r.status, 1);
    assert.equal(r.out.ok, false);
    const leaked = r.out.results.filter((x) => x.outcome === 'LEAKED').map((x) => x.id);
    assert.ok(leaked.includes('fs.read-planted-secrets'), `leaked: ${leaked}`);
    assert.ok(leaked.includes('fs.planted-symlink'), `leaked: ${leaked}`);
    assert.ok(!leaked.includes('fs.git-hooks'), 'only the weakened part leaks');
  });

  it('an allow-all network rule for the attacker is reported LEAKED', () => {
    const t = isolated();
    const p = join(t.root, 'weak-net.yaml');
    writeFileSync(p, 'version: 1\nnetwork:\n  mode: proxy\n  rules:\n    - allow: attacker.cordon.test\n      ports: all\n    - allow: 127.66.0.1\n      ports: all\n');
    const r = selftest(t, ['--policy', p, '--only', '1-3']);
    assert.equal(r.status, 1);
    const leaked = r.out.results.filter((x) => x.outcome === 'LEAKED').map((x) => x.id);
    for (const id of ['net.env-proxy-unset', 'net.curl-noproxy', 'net.node-fetch', 'net.ip-literal-spellings']) assert.ok(leaked.includes(id), `${id} should leak; leaked: ${leaked}`);
  });

  it('network mode none: direct dials have nowhere to go', () => {
    const t = isolated();
    const r = selftest(t, ['--only', '1,7']);
    assert.equal(r.status, 0, JSON.stringify(r.out.results.filter((x) => x.outcome !== 'contained' && x.outcome !== 'not applicable')));
    assert.ok(r.out.results.some((x) => x.outcome === 'contained'));
  });

  it('the whole battery, every class, under a proxy policy: nothing leaks (the CI regression run)', () => {
    const t = isolated();
    const p = join(t.root, 'proxy.yaml');
    writeFileSync(p, 'version: 1\nnetwork:\n  mode: proxy\n  rules:\n    - allow: api.github.com\n      methods: [GET]\n');
    const r = selftest(t, ['--policy', p]);
    const bad = r.out.results.filter((x) => x.outcome === 'LEAKED' || x.outcome === 'error');
    assert.deepEqual(bad.map((x) => `${x.id}: ${x.detail}`), []);
    assert.equal(r.status, 0);
    for (const c of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15]) assert.ok(r.out.results.some((x) => x.class === c), `class ${c} ran`);
  });

  it('usage errors: unknown class, unknown backend', () => {
    const t = isolated();
    assert.equal(cordonSync(['selftest', '--only', '99'], { env: t.env }).status, 2);
    assert.equal(cordonSync(['selftest', '--backend', 'vm'], { env: t.env }).status, 125);
  });
});
