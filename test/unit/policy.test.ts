import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CordonError } from '../../src/errors.ts';
import { hostPaths } from '../../src/paths.ts';
import { loadPolicy } from '../../src/policy/load.ts';
import { expandExtends, mergeLayers, narrowWithWorkspace } from '../../src/policy/merge.ts';
import { parsePolicyText } from '../../src/policy/parse.ts';
import { sha256, TrustStore } from '../../src/policy/trust.ts';
import { parseDuration, parseSize } from '../../src/policy/units.ts';

const origin = (source = '/p.yaml') => ({ role: 'user' as const, source });

function parseError(text: string): CordonError {
  try {
    parsePolicyText(text, origin());
  } catch (e) {
    assert.ok(e instanceof CordonError, `expected CordonError, got ${e}`);
    return e;
  }
  assert.fail('expected a policy error');
}

describe('units', () => {
  for (const [input, want] of [
    ['512MiB', 512 * 1024 ** 2],
    ['2GB', 2e9],
    ['4096', 4096],
    [4096, 4096],
    ['1.5KiB', 1536],
    ['12 parsecs', undefined],
    ['-1', undefined],
    ['', undefined],
  ] as const) {
    it(`parseSize(${JSON.stringify(input)})`, () => assert.equal(parseSize(input), want));
  }
  for (const [input, want] of [
    ['90s', 90_000],
    ['1h30m', 5_400_000],
    ['250ms', 250],
    ['2', 2000],
    [1.5, 1500],
    ['1x', undefined],
    ['h', undefined],
  ] as const) {
    it(`parseDuration(${JSON.stringify(input)})`, () => assert.equal(parseDuration(input), want));
  }
});

describe('policy parsing', () => {
  it('accepts a full valid policy', () => {
    const layer = parsePolicyText(
      `version: 1
extends: claude-code
filesystem:
  read: [~/tools, /opt/sdk]
  write: [~/.cache/pip]
env:
  pass: [GOPATH, MY_*]
  set: { FOO: bar }
limits:
  memory: 2GiB
  timeout: 1h
  processes: 256
`,
      origin(),
    );
    assert.equal(layer.file.limits?.memory, '2GiB');
    assert.deepEqual(layer.locate(['limits', 'memory']), { line: 10, col: 11 });
  });

  it('names file, line and field for an unknown key', () => {
    const e = parseError('version: 1\nfilesystem:\n  reed: [/x]\n');
    assert.equal(e.code, 'CORDON_POLICY_INVALID');
    assert.match(e.message, /\/p\.yaml:3:3: filesystem\.reed: unknown field "reed"/);
    assert.equal(e.detail.line, 3);
  });

  it('names the line of a bad value', () => {
    const e = parseError('version: 1\nlimits:\n  memory: lots\n');
    assert.match(e.message, /\/p\.yaml:3:11: limits\.memory: expected a size/);
  });

  it('rejects relative and dot-dot paths', () => {
    assert.match(parseError('version: 1\nfilesystem:\n  read: [tools]\n').message, /read\[0\]: expected an absolute path/);
    assert.match(parseError('version: 1\nfilesystem:\n  write: [~/a/../.ssh]\n').message, /".." is not allowed/);
  });

  it('reports YAML syntax errors with a position', () => {
    const e = parseError('version: 1\nfilesystem: [\n');
    assert.match(e.message, /\/p\.yaml:\d+:\d+: invalid YAML/);
  });

  it('rejects duplicate keys (a second value must not silently win)', () => {
    assert.match(parseError('version: 1\nlimits:\n  memory: 1GiB\n  memory: 9GiB\n').message, /invalid YAML/);
  });

  it('requires a version and refuses an empty file', () => {
    assert.match(parseError('limits: {}\n').message, /version/);
    assert.match(parseError('').message, /empty/);
  });

  it('refuses secret-looking env.pass names unless dangerously allowed', () => {
    const layer = parsePolicyText('version: 1\nenv:\n  pass: [GITHUB_TOKEN]\n', origin());
    assert.throws(() => mergeLayers([layer]), (e: CordonError) => e.code === 'CORDON_POLICY_INVALID' && /looks like a secret/.test(e.message) && e.detail.line === 3);
    const ok = parsePolicyText('version: 1\nenv:\n  pass: [GITHUB_TOKEN]\n  dangerouslyPassSecrets: [GITHUB_TOKEN]\n', origin());
    assert.deepEqual(mergeLayers([ok]).policy.env.pass, ['GITHUB_TOKEN']);
  });

  it('refuses an unknown profile, naming the line', () => {
    const layer = parsePolicyText('version: 1\nextends: clod-code\n', origin());
    assert.throws(() => expandExtends(layer), (e: CordonError) => /unknown profile "clod-code"/.test(e.message) && e.detail.line === 2);
  });
});

describe('policy merging', () => {
  it('applies defaults, profiles, then the file, with origins', () => {
    const layer = parsePolicyText('version: 1\nextends: claude-code\nlimits:\n  memory: 1GiB\nfilesystem:\n  read: [~/tools]\n', origin('/u.yaml'));
    const { policy, origins } = mergeLayers(expandExtends(layer));
    assert.equal(policy.limits.memoryBytes, 1024 ** 3);
    assert.deepEqual(origins['limits.memoryBytes'], { role: 'user', source: '/u.yaml', line: 4, col: 11 });
    assert.equal(policy.limits.processes, 1024);
    assert.equal(origins['limits.processes']?.role, 'default');
    assert.ok(policy.filesystem.write.includes('~/.claude'));
    const i = policy.filesystem.write.indexOf('~/.claude');
    assert.deepEqual(origins[`filesystem.write[${i}]`], { role: 'profile', source: 'claude-code' });
    assert.ok(policy.filesystem.read.includes('~/.gitconfig'), 'generic comes in through claude-code');
    const t = policy.filesystem.read.indexOf('~/tools');
    assert.equal(origins[`filesystem.read[${t}]`]?.line, 6);
    assert.equal(policy.network.mode, 'proxy', 'the claude-code profile needs its API');
    assert.ok(policy.network.rules.some((r) => r.decision === 'allow' && r.host === 'api.anthropic.com'));
    assert.ok(policy.network.rules.some((r) => r.host === '${npm.registry}' && r.methods?.join() === 'GET,HEAD'), 'the registry rule stays a token until load resolves it');
  });

  it('later layers override scalars and union lists', () => {
    const a = parsePolicyText('version: 1\nlimits: {timeout: 1h}\nfilesystem: {read: [/a]}\n', { role: 'system', source: '/etc/cordon/policy.yaml' });
    const b = parsePolicyText('version: 1\nlimits: {timeout: 10m}\nfilesystem: {read: [/b, /a]}\n', origin());
    const { policy, origins } = mergeLayers([a, b]);
    assert.equal(policy.limits.timeoutMs, 600_000);
    assert.equal(origins['limits.timeoutMs']?.role, 'user');
    assert.deepEqual(policy.filesystem.read, ['/a', '/b']);
    assert.equal(origins['filesystem.read[0]']?.role, 'system');
  });

  it('network.budget: sizes and counts, "unlimited", the last layer wins, with origins; unknown keys refused', () => {
    const a = parsePolicyText('version: 1\nnetwork: {mode: proxy, budget: {bytesUp: 10MiB, requests: 500}}\n', { role: 'system', source: '/etc/cordon/policy.yaml' });
    const b = parsePolicyText('version: 1\nnetwork:\n  budget:\n    requests: unlimited\n    destinations: 20\n', origin('/u.yaml'));
    const { policy, origins } = mergeLayers([a, b]);
    assert.deepEqual(policy.network.budget, { bytesUp: 10 * 1024 ** 2, requests: null, destinations: 20 });
    assert.equal(origins['network.budget.bytesUp']?.role, 'system');
    assert.deepEqual(origins['network.budget.destinations'], { role: 'user', source: '/u.yaml', line: 5, col: 19 });
    assert.deepEqual(mergeLayers([]).policy.network.budget, { bytesUp: null, requests: null, destinations: null }, 'no budget by default');
    assert.equal(parseError('version: 1\nnetwork:\n  budget:\n    bytes: 10\n').detail.line, 4);
    assert.equal(parseError('version: 1\nnetwork:\n  budget:\n    requests: -1\n').detail.line, 4);
  });

  it('"unlimited" clears a limit', () => {
    const { policy } = mergeLayers([parsePolicyText('version: 1\nlimits: {memory: unlimited, processes: unlimited}\n', origin())]);
    assert.equal(policy.limits.memoryBytes, null);
    assert.equal(policy.limits.processes, null);
  });
});

describe('workspace policy narrowing', () => {
  const base = () => mergeLayers([parsePolicyText('version: 1\nlimits: {memory: 4GiB}\nfilesystem: {read: [/opt]}\n', origin())]);
  const ws = (text: string) => parsePolicyText(text, { role: 'workspace', source: '/w/.cordon/policy.yaml' });

  it('may lower limits and protect more', () => {
    const r = narrowWithWorkspace(base(), ws('version: 1\nlimits: {memory: 1GiB, processes: 64}\nfilesystem: {protect: [scripts/deploy.sh]}\n'));
    assert.equal(r.policy.limits.memoryBytes, 1024 ** 3);
    assert.equal(r.policy.limits.processes, 64);
    assert.ok(r.policy.filesystem.protect.includes('scripts/deploy.sh'));
    assert.equal(r.origins['limits.memoryBytes']?.role, 'workspace');
  });

  it('may lower an egress budget, never raise or clear one', () => {
    const withBudget = () => mergeLayers([parsePolicyText('version: 1\nnetwork: {mode: proxy, budget: {bytesUp: 1MiB, requests: 100}}\n', origin())]);
    const r = narrowWithWorkspace(withBudget(), ws('version: 1\nnetwork: {budget: {bytesUp: 64KiB, requests: 1000, destinations: 3}}\n'));
    assert.deepEqual(r.policy.network.budget, { bytesUp: 64 * 1024, requests: 100, destinations: 3 });
    assert.equal(r.origins['network.budget.bytesUp']?.role, 'workspace');
    assert.notEqual(r.origins['network.budget.requests']?.role, 'workspace');
    const cleared = narrowWithWorkspace(withBudget(), ws('version: 1\nnetwork: {budget: {bytesUp: unlimited}}\n'));
    assert.equal(cleared.policy.network.budget.bytesUp, 1024 ** 2);
  });

  it('cannot raise a limit', () => {
    const r = narrowWithWorkspace(base(), ws('version: 1\nlimits: {memory: 64GiB}\n'));
    assert.equal(r.policy.limits.memoryBytes, 4 * 1024 ** 3);
  });

  for (const [what, text, field] of [
    ['mount host paths', 'version: 1\nfilesystem: {read: [/etc]}\n', 'filesystem.read'],
    ['add env', 'version: 1\nenv: {set: {A: b}}\n', 'env'],
    ['weaken invariants', 'version: 1\nfilesystem: {dangerouslyAllowSecretPaths: [~/.ssh]}\n', 'filesystem.dangerouslyAllowSecretPaths'],
    ['open the network', 'version: 1\nnetwork: {mode: proxy}\n', 'network.mode'],
    ['extend profiles', 'version: 1\nextends: claude-code\n', 'extends'],
    ['choose the backend', 'version: 1\nsandbox: {backend: bwrap}\n', 'sandbox'],
  ] as const) {
    it(`cannot ${what}`, () => {
      assert.throws(
        () => narrowWithWorkspace(base(), ws(text)),
        (e: CordonError) => e.code === 'CORDON_POLICY_WIDENS' && e.detail.field === field && typeof e.detail.line === 'number',
      );
    });
  }
});

describe('loading from host locations', () => {
  function setup() {
    const root = mkdtempSync(join(tmpdir(), 'cordon-load-'));
    const env = { HOME: join(root, 'home'), CORDON_CONFIG_DIR: join(root, 'cfg'), CORDON_STATE_DIR: join(root, 'state'), CORDON_SYSTEM_DIR: join(root, 'sys') };
    for (const d of [env.HOME, env.CORDON_CONFIG_DIR, env.CORDON_STATE_DIR, env.CORDON_SYSTEM_DIR]) mkdirSync(d, { recursive: true });
    const ws = join(root, 'ws');
    mkdirSync(join(ws, '.cordon'), { recursive: true });
    return { root, paths: hostPaths(env as NodeJS.ProcessEnv), ws, env };
  }

  it('uses the embedded default profile when no file exists', async () => {
    const { paths, ws } = setup();
    const l = await loadPolicy({ paths, workspace: ws });
    assert.deepEqual(
      l.layers.map((x) => [x.role, x.source]),
      [
        ['default', 'built-in defaults'],
        ['profile', 'generic'],
      ],
    );
    assert.match(l.hash, /^[0-9a-f]{64}$/);
  });

  it('stacks system, user and --policy files', async () => {
    const { paths, ws, root } = setup();
    writeFileSync(join(paths.system, 'policy.yaml'), 'version: 1\nlimits: {timeout: 2h}\n');
    writeFileSync(join(paths.config, 'policy.yaml'), 'version: 1\nextends: codex\nlimits: {timeout: 1h}\n');
    const cli = join(root, 'cli.yaml');
    writeFileSync(cli, 'version: 1\nlimits: {memory: 1GiB}\n');
    const l = await loadPolicy({ paths, workspace: ws, policyFile: cli });
    assert.deepEqual(
      l.layers.map((x) => x.role),
      ['default', 'system', 'profile', 'profile', 'user', 'cli'],
    );
    assert.equal(l.policy.limits.timeoutMs, 3_600_000);
    assert.equal(l.policy.limits.memoryBytes, 1024 ** 3);
    assert.ok(l.policy.filesystem.write.includes('~/.codex'));
  });

  it('ignores an untrusted workspace policy, applies it once trusted, and forgets trust after an edit', async () => {
    const { paths, ws } = setup();
    const file = join(ws, '.cordon', 'policy.yaml');
    writeFileSync(file, 'version: 1\nlimits: {processes: 32}\n');
    let l = await loadPolicy({ paths, workspace: ws });
    assert.equal(l.policy.limits.processes, 1024);
    assert.equal(l.layers.at(-1)?.applied, false);
    assert.match(l.warnings[0] ?? '', /not trusted/);

    new TrustStore(paths.state).trust(ws, sha256('version: 1\nlimits: {processes: 32}\n'));
    l = await loadPolicy({ paths, workspace: ws });
    assert.equal(l.policy.limits.processes, 32);
    assert.equal(l.layers.at(-1)?.applied, true);

    writeFileSync(file, 'version: 1\nlimits: {processes: 16}\n');
    l = await loadPolicy({ paths, workspace: ws });
    assert.equal(l.policy.limits.processes, 1024, 'an edited file is untrusted again');
  });

  it('a missing --policy file is an error that names it', async () => {
    const { paths, ws } = setup();
    await assert.rejects(loadPolicy({ paths, workspace: ws, policyFile: '/nonexistent/p.yaml' }), (e: CordonError) => e.code === 'CORDON_POLICY_NOT_FOUND' && /\/nonexistent\/p\.yaml/.test(e.message));
  });
});

describe('network rule defaults', () => {
  it('a deny rule without ports covers every port; an allow rule 80 and 443', async () => {
    const { decideNetwork } = await import('../../src/policy/decide-network.ts');
    const layer = parsePolicyText('version: 1\nnetwork:\n  mode: proxy\n  rules:\n    - allow: "*.example.com"\n      ports: [8443, 443]\n    - deny: blocked.example.com\n', origin());
    const { policy } = mergeLayers([layer]);
    assert.deepEqual(policy.network.rules[1]!.ports, []);
    assert.equal(decideNetwork(policy.network.rules, { host: 'blocked.example.com', port: 8443, protocol: 'http' }).decision, 'deny');
    assert.equal(decideNetwork(policy.network.rules, { host: 'ok.example.com', port: 8443, protocol: 'http' }).decision, 'allow');
    const allow = mergeLayers([parsePolicyText('version: 1\nnetwork:\n  mode: proxy\n  rules:\n    - allow: a.example.com\n', origin())]);
    assert.deepEqual(allow.policy.network.rules[0]!.ports, [80, 443]);
  });
});
