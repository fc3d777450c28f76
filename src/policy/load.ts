// Loading the effective policy from host locations only:
//   system  <system>/policy.yaml   (if present)
//   user    <config>/policy.yaml   (if present)
//   cli     --policy FILE          (must exist)
//   workspace <ws>/.cordon/policy.yaml: ignored unless trusted by hash; narrows only.
// When no file names a profile, the embedded default profile applies.
//
// Parsing YAML and validating with zod costs ~40 ms of start-up, so the result
// is cached in the state directory keyed by the sha256 of every input; the
// parser is only imported on a cache miss.

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CordonError } from '../errors.ts';
import type { HostPaths } from '../paths.ts';
import { resolveTokens, tokenInputs } from './tokens.ts';
import { sha256, TrustStore, WORKSPACE_POLICY } from './trust.ts';
import type { LayerInfo, LayerRole, LoadedPolicy, Origin } from './types.ts';

export interface LoadOptions {
  paths: HostPaths;
  /** --policy FILE */
  policyFile?: string;
  /** Workspace directory (absolute, real path). Omit to ignore workspace policies. */
  workspace?: string;
  /** Skip the cache (policy check/show do, to report fresh errors). */
  noCache?: boolean;
  env?: NodeJS.ProcessEnv;
}

interface Source {
  role: LayerRole;
  path: string;
  text: string;
  sha256: string;
  trusted?: boolean;
}

const CACHE_FORMAT = 'cordon-policy-cache/1';
// Set by the bundler to a hash of the sources; when running from source there is
// no stable build id, so the cache is off.
declare const __CORDON_BUILD__: string | undefined;
const BUILD_ID = typeof __CORDON_BUILD__ === 'string' ? __CORDON_BUILD__ : undefined;

export async function loadPolicy(opts: LoadOptions): Promise<LoadedPolicy> {
  const sources = readSources(opts);
  const useCache = !opts.noCache && BUILD_ID !== undefined;
  const env = opts.env ?? process.env;
  const key = sha256(JSON.stringify([CACHE_FORMAT, BUILD_ID, sources.map((s) => [s.role, s.path, s.sha256, s.trusted ?? null]), tokenInputs(env, opts.paths.home)]));
  const cacheFile = join(opts.paths.state, 'cache', `policy-${key}.json`);
  if (useCache) {
    try {
      return JSON.parse(readFileSync(cacheFile, 'utf8')) as LoadedPolicy;
    } catch {
      // miss: compile below
    }
  }
  const compiled = await compile(sources, env);
  if (useCache) writeCache(cacheFile, compiled);
  return compiled;
}

function readSources(opts: LoadOptions): Source[] {
  const out: Source[] = [];
  const add = (role: LayerRole, path: string, required: boolean) => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (!required && code === 'ENOENT') return;
      throw new CordonError('CORDON_POLICY_NOT_FOUND', `cannot read policy file ${path}: ${code ?? String(e)}`, {
        hint: role === 'cli' ? 'check the path given to --policy' : undefined,
        detail: { file: path },
      });
    }
    out.push({ role, path, text, sha256: sha256(text) });
  };
  add('system', join(opts.paths.system, 'policy.yaml'), false);
  add('user', join(opts.paths.config, 'policy.yaml'), false);
  if (opts.policyFile !== undefined) add('cli', resolve(opts.policyFile), true);
  if (opts.workspace !== undefined) {
    const wsFile = join(opts.workspace, WORKSPACE_POLICY);
    if (existsSync(wsFile)) {
      add('workspace', wsFile, true);
      const src = out[out.length - 1]!;
      src.trusted = new TrustStore(opts.paths.state).isTrusted(opts.workspace, src.sha256);
    }
  }
  return out;
}

async function compile(sources: Source[], env: NodeJS.ProcessEnv): Promise<LoadedPolicy> {
  const { parsePolicyText } = await import('./parse.ts');
  const { expandExtends, mergeLayers, narrowWithWorkspace } = await import('./merge.ts');
  const { DEFAULT_PROFILE } = await import('./profiles.ts');

  const layers = [];
  const infos: LayerInfo[] = [{ role: 'default', source: 'built-in defaults', applied: true }];
  const warnings: string[] = [];
  const hostSources = sources.filter((s) => s.role !== 'workspace');
  let namesProfile = false;
  for (const s of hostSources) {
    const origin: Origin = { role: s.role, source: s.path };
    const layer = parsePolicyText(s.text, origin);
    if (layer.file.extends !== undefined) namesProfile = true;
    for (const l of expandExtends(layer)) {
      layers.push(l);
      infos.push(l.origin.role === 'profile' ? { role: 'profile', source: l.origin.source, applied: true } : { role: s.role, source: s.path, sha256: s.sha256, applied: true });
    }
  }
  if (!namesProfile) {
    const via: Origin = { role: 'default', source: 'built-in defaults' };
    const expanded = expandExtends({ file: { version: 1, extends: DEFAULT_PROFILE }, origin: via, locate: () => ({}) });
    const profiles = expanded.slice(0, -1);
    layers.unshift(...profiles);
    infos.splice(1, 0, ...profiles.map((l) => ({ role: 'profile' as const, source: l.origin.source, applied: true, note: 'default profile (no policy file names one)' })));
  }
  const resolved = resolveTokens(layers, env);
  warnings.push(...resolved.warnings);
  let merged = mergeLayers(resolved.layers);

  const ws = sources.find((s) => s.role === 'workspace');
  if (ws) {
    if (ws.trusted) {
      const layer = parsePolicyText(ws.text, { role: 'workspace', source: ws.path });
      merged = narrowWithWorkspace(merged, layer);
      infos.push({ role: 'workspace', source: ws.path, sha256: ws.sha256, applied: true, note: 'trusted; may only narrow' });
    } else {
      infos.push({ role: 'workspace', source: ws.path, sha256: ws.sha256, applied: false, note: 'not trusted: ignored (run `cordon trust` to apply it)' });
      warnings.push(`ignoring ${ws.path}: this workspace policy is not trusted (review it, then run \`cordon trust\`)`);
    }
  }
  const hash = sha256(canonicalJson(merged.policy));
  return { policy: merged.policy, origins: merged.origins, layers: infos, hash, warnings };
}

function writeCache(file: string, value: LoadedPolicy): void {
  try {
    mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(value), { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    // A cache we cannot write only costs start-up time.
  }
}

/** JSON with object keys sorted, so equal policies hash equally. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
