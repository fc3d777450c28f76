// cordon policy show / check / explain / profiles / init, and cordon trust.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { assertFreshBuild, cordonSync, isolated } from '../helpers/cordon.ts';

before(() => assertFreshBuild());

describe('cordon policy', () => {
  it('show: every value with its origin (text and JSON)', () => {
    const t = isolated();
    writeFileSync(join(t.root, 'config', 'policy.yaml'), 'version: 1\nextends: claude-code\nlimits:\n  memory: 2GiB\nnetwork:\n  budget: {bytesUp: 5MiB}\n');
    const j = cordonSync(['policy', 'show', '--json'], { env: t.env, cwd: t.workspace });
    assert.equal(j.status, 0, j.stderr);
    const out = JSON.parse(j.stdout);
    assert.equal(out.policy.limits.memoryBytes, 2 * 1024 ** 3);
    assert.deepEqual(out.origins['limits.memoryBytes'], { role: 'user', source: join(t.root, 'config', 'policy.yaml'), line: 4, col: 11 });
    assert.deepEqual(
      out.layers.map((l: { role: string; source: string }) => `${l.role}:${l.source.split('/').pop()}`),
      ['default:built-in defaults', 'profile:generic', 'profile:claude-code', 'user:policy.yaml'],
    );
    const text = cordonSync(['policy', 'show'], { env: t.env, cwd: t.workspace }).stdout;
    assert.match(text, /limits\.memory\s+2GiB\s+user:.*policy\.yaml:4/);
    assert.match(text, /filesystem\.write\[\d\]\s+~\/\.claude\s+profile:claude-code/);
    assert.match(text, /network\.budget\.bytesUp\s+5MiB\s+user:.*policy\.yaml:6/);
    assert.match(text, /network\.budget\.requests\s+unlimited/);
    assert.equal(out.policy.network.budget.bytesUp, 5 * 1024 ** 2);
  });

  it('check: ok for a good file; file, line and field for a bad one', () => {
    const t = isolated();
    const good = join(t.root, 'good.yaml');
    writeFileSync(good, 'version: 1\nnetwork:\n  mode: proxy\n  rules:\n    - allow: api.example.com\n      methods: [GET]\n');
    assert.equal(cordonSync(['policy', 'check', good], { env: t.env }).status, 0);
    const bad = join(t.root, 'bad.yaml');
    writeFileSync(bad, 'version: 1\nnetwork:\n  mode: proxy\n  rules:\n    - allow: "*.com"\n');
    const r = cordonSync(['policy', 'check', bad, '--json'], { env: t.env });
    assert.equal(r.status, 1);
    const res = JSON.parse(r.stdout);
    assert.equal(res.ok, false);
    assert.equal(res.problems[0].line, 5);
    const text = cordonSync(['policy', 'check', bad], { env: t.env });
    assert.match(text.stdout, /over-broad|public suffix/);
    writeFileSync(bad, 'version: 1\nlimits:\n  timeout: soon\n');
    assert.match(cordonSync(['policy', 'check', bad], { env: t.env }).stdout, /bad\.yaml:3:12: limits\.timeout: expected a duration/);
  });

  it('explain PATH: which rule decides what the sandbox sees', () => {
    const t = isolated();
    mkdirSync(join(t.home, '.ssh'));
    writeFileSync(join(t.home, '.ssh', 'id_ed25519'), 'fake');
    mkdirSync(join(t.workspace, '.git', 'hooks'), { recursive: true });
    writeFileSync(join(t.root, 'config', 'policy.yaml'), 'version: 1\nfilesystem:\n  read: [~/tools]\n');
    mkdirSync(join(t.home, 'tools'));
    const explain = (p: string) => JSON.parse(cordonSync(['policy', 'explain', p, '--json'], { env: t.env, cwd: t.workspace }).stdout);
    assert.equal(explain('~/.ssh/id_ed25519').access, 'empty (private tmpfs)');
    assert.equal(explain(join(t.workspace, 'src', 'main.ts')).access, 'read-write');
    const hooks = explain(join(t.workspace, '.git', 'hooks'));
    assert.equal(hooks.access, 'read-only');
    assert.match(hooks.decidedBy, /protected/);
    const tools = explain('~/tools');
    assert.equal(tools.access, 'read-only');
    assert.match(tools.decidedBy, /^filesystem\.read\[\d+\]$/);
    assert.match(tools.origin, /user:.*policy\.yaml:3/);
    assert.equal(explain('/etc/shadow').access, 'not mounted');
    assert.equal(explain('/usr/bin/env').access, 'read-only');
    assert.equal(explain('/opt/anything').access, 'not mounted');
  });

  it('explain PATH: a secret path inside a mounted directory is hidden', () => {
    const t = isolated();
    mkdirSync(join(t.home, '.aws'));
    writeFileSync(join(t.home, '.aws', 'credentials'), 'fake');
    writeFileSync(join(t.root, 'config', 'policy.yaml'), 'version: 1\nfilesystem:\n  read: ["~"]\n');
    const r = JSON.parse(cordonSync(['policy', 'explain', '~/.aws/credentials', '--json'], { env: t.env, cwd: t.workspace }).stdout);
    assert.equal(r.access, 'hidden');
    assert.match(r.decidedBy, /never mounted \(~\/\.aws\)/);
  });

  it('explain HOST: the deciding network rule and the precedence', () => {
    const t = isolated();
    writeFileSync(
      join(t.root, 'config', 'policy.yaml'),
      'version: 1\nnetwork:\n  mode: proxy\n  rules:\n    - allow: "*.example.com"\n    - deny: evil.example.com\n    - allow: api.example.org\n      methods: [GET]\n',
    );
    const explain = (target: string, extra: string[] = []) => JSON.parse(cordonSync(['policy', 'explain', target, '--json', ...extra], { env: t.env, cwd: t.workspace }).stdout);
    assert.equal(explain('www.example.com').decision, 'allow');
    const evil = explain('https://evil.example.com/x');
    assert.equal(evil.decision, 'deny');
    assert.equal(evil.decidedBy, 'network.rules[1]');
    assert.match(evil.origin, /policy\.yaml:6/);
    assert.equal(explain('other.test').decision, 'deny');
    assert.equal(explain('api.example.org', ['--method', 'GET']).decision, 'allow');
    assert.equal(explain('api.example.org', ['--method', 'POST']).decision, 'deny');
    writeFileSync(join(t.root, 'config', 'policy.yaml'), 'version: 1\n');
    assert.match(explain('www.example.com').decidedBy, /network\.mode is "none"/);
  });

  it('profiles and init', () => {
    const t = isolated();
    const p = cordonSync(['policy', 'profiles', '--json'], { env: t.env });
    assert.deepEqual(Object.keys(JSON.parse(p.stdout).profiles).sort(), ['claude-code', 'codex', 'gemini-cli', 'generic']);
    assert.equal(cordonSync(['policy', 'init', '--profile', 'codex'], { env: t.env }).status, 0);
    assert.equal(cordonSync(['policy', 'check', join(t.root, 'config', 'policy.yaml')], { env: t.env }).status, 0);
    assert.equal(cordonSync(['policy', 'init'], { env: t.env }).status, 2, 'refuses to overwrite');
  });
});

describe('cordon trust', () => {
  it('trusts exact content, lists, revokes', () => {
    const t = isolated();
    mkdirSync(join(t.workspace, '.cordon'));
    writeFileSync(join(t.workspace, '.cordon', 'policy.yaml'), 'version: 1\nlimits: {processes: 50}\n');
    assert.equal(cordonSync(['trust'], { env: t.env, cwd: t.workspace }).status, 2, 'no terminal to confirm: refuses');
    assert.equal(cordonSync(['trust', '--yes'], { env: t.env, cwd: t.workspace }).status, 0);
    const list = JSON.parse(cordonSync(['trust', '--list', '--json'], { env: t.env }).stdout);
    assert.equal(list.entries.length, 1);
    assert.equal(JSON.parse(cordonSync(['policy', 'show', '--json'], { env: t.env, cwd: t.workspace }).stdout).policy.limits.processes, 50);
    assert.equal(cordonSync(['trust', '--revoke'], { env: t.env, cwd: t.workspace }).status, 0);
    assert.equal(JSON.parse(cordonSync(['policy', 'show', '--json'], { env: t.env, cwd: t.workspace }).stdout).policy.limits.processes, 1024);
  });
});
