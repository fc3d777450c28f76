// `cordon policy show|check|explain|profiles|init`.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { CordonError, EXIT, isCordonError } from '../errors.ts';
import { expandHostPath, hostPaths } from '../paths.ts';
import { loadPolicy } from '../policy/load.ts';
import type { LoadedPolicy, Origin } from '../policy/types.ts';
import { formatDuration, formatSize } from '../policy/units.ts';
import { buildEtc } from '../sandbox/etc-files.ts';
import { explainPath } from '../sandbox/explain-path.ts';
import { emptySources, planMounts, resolveWorkspace } from '../sandbox/mount-plan.ts';
import { printJson, style } from './output.ts';

interface Common {
  policy?: string;
  workspace?: string;
  json?: boolean;
}

async function load(o: Common): Promise<{ loaded: LoadedPolicy; workspace: string }> {
  const paths = hostPaths();
  const workspace = resolveWorkspace(o.workspace ?? process.cwd());
  const loaded = await loadPolicy({ paths, policyFile: o.policy, workspace, noCache: true });
  return { loaded, workspace };
}

export function formatOrigin(o: Origin | undefined): string {
  if (!o) return 'default';
  if (o.role === 'default') return 'default';
  if (o.role === 'profile') return `profile:${o.source}`;
  return `${o.role}:${o.source}${o.line ? `:${o.line}` : ''}`;
}

export async function cmdPolicyShow(o: Common): Promise<number> {
  const { loaded } = await load(o);
  if (o.json) {
    printJson({ hash: loaded.hash, layers: loaded.layers, policy: loaded.policy, origins: loaded.origins, warnings: loaded.warnings });
    return EXIT.ok;
  }
  const out: string[] = [];
  out.push(style.bold('Layers') + ' (later override earlier; a workspace layer can only narrow)');
  loaded.layers.forEach((l, i) => {
    const state = l.applied ? '' : style.yellow(' [ignored]');
    out.push(`  ${i + 1}. ${l.role.padEnd(9)} ${l.source}${l.sha256 ? style.dim(` sha256:${l.sha256.slice(0, 12)}`) : ''}${state}${l.note ? style.dim(`  (${l.note})`) : ''}`);
  });
  out.push(`policy hash: ${loaded.hash}`, '');
  const p = loaded.policy;
  const rows: [string, string, string][] = [];
  const row = (key: string, value: string, originKey = key) => rows.push([key, value, formatOrigin(loaded.origins[originKey])]);
  row('sandbox.backend', p.sandbox.backend);
  row('sandbox.hostname', p.sandbox.hostname);
  const lim = p.limits;
  row('limits.processes', lim.processes === null ? 'unlimited' : String(lim.processes));
  row('limits.memory', lim.memoryBytes === null ? 'unlimited' : formatSize(lim.memoryBytes), 'limits.memoryBytes');
  row('limits.cpuTime', lim.cpuTimeMs === null ? 'unlimited' : formatDuration(lim.cpuTimeMs), 'limits.cpuTimeMs');
  row('limits.fileSize', lim.fileSizeBytes === null ? 'unlimited' : formatSize(lim.fileSizeBytes), 'limits.fileSizeBytes');
  row('limits.openFiles', lim.openFiles === null ? 'unlimited' : String(lim.openFiles));
  row('limits.timeout', lim.timeoutMs === null ? 'unlimited' : formatDuration(lim.timeoutMs), 'limits.timeoutMs');
  for (const key of ['read', 'write', 'hide', 'protect', 'dangerouslyAllowSecretPaths', 'dangerouslyUnprotect'] as const) {
    const list = p.filesystem[key];
    if (list.length === 0) row(`filesystem.${key}`, '(none)');
    list.forEach((v, i) => row(`filesystem.${key}[${i}]`, v));
  }
  p.env.pass.forEach((v, i) => row(`env.pass[${i}]`, v));
  for (const k of Object.keys(p.env.set)) row(`env.set.${k}`, JSON.stringify(p.env.set[k]));
  p.env.dangerouslyPassSecrets.forEach((v, i) => row(`env.dangerouslyPassSecrets[${i}]`, v));
  row('network.mode', p.network.mode);
  const b = p.network.budget;
  row('network.budget.bytesUp', b.bytesUp === null ? 'unlimited' : formatSize(b.bytesUp));
  row('network.budget.requests', b.requests === null ? 'unlimited' : String(b.requests));
  row('network.budget.destinations', b.destinations === null ? 'unlimited' : String(b.destinations));
  p.network.rules.forEach((r, i) => {
    const parts = [`${r.decision} ${r.host}`, `ports ${r.ports.length ? r.ports.join(',') : 'all'}`];
    if (r.methods) parts.push(`methods ${r.methods.join(',')}`);
    if (r.paths) parts.push(`paths ${r.paths.join(',')}`);
    if (r.maxBodyBytes !== null) parts.push(`body <= ${formatSize(r.maxBodyBytes)}`);
    if (r.protocol !== 'http') parts.push(r.protocol);
    row(`network.rules[${i}]`, parts.join('; '));
  });
  const w1 = Math.max(...rows.map((r) => r[0].length));
  const w2 = Math.min(60, Math.max(...rows.map((r) => r[1].length)));
  for (const [k, v, src] of rows) out.push(`${k.padEnd(w1)}  ${v.padEnd(w2)}  ${style.dim(src)}`);
  for (const w of loaded.warnings) out.push('', style.yellow(`warning: ${w}`));
  process.stdout.write(out.join('\n') + '\n');
  return EXIT.ok;
}

export async function cmdPolicyCheck(file: string, o: { json?: boolean }): Promise<number> {
  const abs = resolve(file);
  try {
    const text = readFileSync(abs, 'utf8');
    const { parsePolicyText } = await import('../policy/parse.ts');
    const { expandExtends, mergeLayers } = await import('../policy/merge.ts');
    const layer = parsePolicyText(text, { role: 'cli', source: abs });
    mergeLayers(expandExtends(layer));
    if (o.json) printJson({ ok: true, file: abs, problems: [] });
    else process.stdout.write(`${style.green('ok')} ${abs}\n`);
    return EXIT.ok;
  } catch (e) {
    if (!isCordonError(e) && (e as NodeJS.ErrnoException).code !== undefined) {
      throw new CordonError('CORDON_POLICY_NOT_FOUND', `cannot read ${abs}: ${(e as NodeJS.ErrnoException).code}`);
    }
    if (!isCordonError(e)) throw e;
    const problems = (e.detail.problems as unknown[] | undefined) ?? [{ line: e.detail.line, col: e.detail.col, field: e.detail.field, message: e.message }];
    if (o.json) printJson({ ok: false, file: abs, code: e.code, problems });
    else {
      process.stdout.write(`${e.message}\n`);
      if (e.hint) process.stdout.write(`${style.dim('hint:')} ${e.hint}\n`);
    }
    return EXIT.failed;
  }
}

export async function cmdPolicyExplain(target: string, o: Common & { method?: string }): Promise<number> {
  const { loaded, workspace } = await load(o);
  const looksLikePath = target.startsWith('/') || target.startsWith('~') || target.startsWith('.');
  if (!looksLikePath) {
    const { explainHost } = await import('./explain-host.ts');
    return explainHost(target, loaded, o);
  }
  const paths = hostPaths();
  const expanded = expandHostPath(target, paths) ?? target;
  const abs = resolve(expanded);
  const tmp = mkdtempSync(join(tmpdir(), 'cordon-explain-'));
  try {
    const plan = planMounts({
      policy: loaded.policy,
      paths,
      workspace,
      home: paths.home,
      sessionDir: tmp,
      empty: emptySources(tmp),
      etc: buildEtc({ dir: join(tmp, 'etc'), user: 'agent', uid: 1000, gid: 1000, home: paths.home, hostname: loaded.policy.sandbox.hostname, nameserver: null }),
      initBinary: join(tmp, 'init'),
    });
    let real = abs;
    try {
      real = (await import('node:fs')).realpathSync(abs);
    } catch {
      // explain a path that does not exist yet
    }
    const ex = explainPath(plan, real, join(tmp, 'empty-dir'), join(tmp, 'empty-file'));
    const originKey = /^filesystem\.\w+\[\d+\]$/.test(ex.decidedBy) ? ex.decidedBy : undefined;
    const origin = originKey ? formatOrigin(loaded.origins[originKey]) : undefined;
    if (o.json) printJson({ kind: 'path', target, path: real, access: ex.access, decidedBy: ex.decidedBy, origin, mount: ex.mount, workspace });
    else {
      process.stdout.write(`${real}${real !== abs ? style.dim(` (from ${abs})`) : ''}\n`);
      process.stdout.write(`  inside the sandbox: ${style.bold(ex.access)}\n`);
      process.stdout.write(`  decided by: ${ex.decidedBy}${origin ? style.dim(` (${origin})`) : ''}\n`);
    }
    return EXIT.ok;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export async function cmdPolicyProfiles(o: { json?: boolean }): Promise<number> {
  const { PROFILES, DEFAULT_PROFILE } = await import('../policy/profiles.ts');
  if (o.json) {
    printJson({ default: DEFAULT_PROFILE, profiles: PROFILES });
    return EXIT.ok;
  }
  for (const [name, p] of Object.entries(PROFILES)) {
    const ext = p.extends ? ` (extends ${[p.extends].flat().join(', ')})` : '';
    process.stdout.write(`${style.bold(name)}${name === DEFAULT_PROFILE ? ' [default]' : ''}${ext}\n`);
    for (const k of ['read', 'write', 'hide'] as const) {
      const v = p.filesystem?.[k];
      if (v?.length) process.stdout.write(`  filesystem.${k}: ${v.join(', ')}\n`);
    }
    if (p.env?.pass?.length) process.stdout.write(`  env.pass: ${p.env.pass.join(', ')}\n`);
  }
  return EXIT.ok;
}

export async function cmdPolicyInit(o: { profile: string; output?: string; force?: boolean }): Promise<number> {
  const { PROFILES } = await import('../policy/profiles.ts');
  if (!PROFILES[o.profile]) throw new CordonError('CORDON_USAGE', `unknown profile "${o.profile}"`, { hint: `profiles: ${Object.keys(PROFILES).join(', ')}` });
  const file = o.output ? resolve(o.output) : join(hostPaths().config, 'policy.yaml');
  if (existsSync(file) && !o.force) throw new CordonError('CORDON_USAGE', `${file} exists`, { hint: 'use --force to overwrite, or --output FILE' });
  const text = `# cordon policy. Reference: docs/policy-reference.md; check with: cordon policy check ${file}
version: 1
extends: ${o.profile}

# filesystem:
#   read: [~/tools]            # mounted read-only
#   write: [~/.cache/pip]      # mounted read-write
# env:
#   pass: [GOPATH]
# limits:
#   memory: 4GiB
#   timeout: 2h
# network:
#   mode: none                 # loopback only
`;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, text, { mode: 0o600 });
  process.stdout.write(`wrote ${file}\n`);
  return EXIT.ok;
}
