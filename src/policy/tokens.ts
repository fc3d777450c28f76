// Host tokens in network rules, resolved from the user's own configuration at
// load time, so no public registry's host name is ever hard-coded:
//   ${npm.registry}  the host of `npm config get registry`
// A token that cannot be resolved drops its rule (narrower, never wider) with
// a warning.

import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { Layer } from './merge.ts';

export const NPM_REGISTRY_TOKEN = '${npm.registry}';

export interface TokenValues {
  [token: string]: string | null;
}

/** What the token values depend on, for the policy cache key (cheap: no process). */
export function tokenInputs(env: NodeJS.ProcessEnv, home: string): string {
  const stamp = (p: string) => {
    const st = statSync(p, { throwIfNoEntry: false });
    return st ? `${st.ino}:${st.size}:${st.mtimeMs}` : '-';
  };
  return JSON.stringify([
    env.npm_config_registry ?? null,
    env.NPM_CONFIG_REGISTRY ?? null,
    env.NPM_CONFIG_USERCONFIG ?? null,
    stamp(join(home, '.npmrc')),
    stamp('/etc/npmrc'),
    stamp('/usr/local/etc/npmrc'),
  ]);
}

function npmRegistryHost(env: NodeJS.ProcessEnv): string | null {
  const r = spawnSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8', timeout: 15_000, env, stdio: ['ignore', 'pipe', 'ignore'] });
  if (r.status !== 0) return null;
  try {
    const url = new URL(r.stdout.trim());
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.hostname : null;
  } catch {
    return null;
  }
}

/** Replace tokens in the layers' network rules. Returns warnings. */
export function resolveTokens(layers: Layer[], env: NodeJS.ProcessEnv): { layers: Layer[]; warnings: string[] } {
  const warnings: string[] = [];
  const uses = layers.some((l) => (l.file.network?.rules ?? []).some((r) => [r.allow, r.deny, r.ask].includes(NPM_REGISTRY_TOKEN)));
  if (!uses) return { layers, warnings };
  const host = npmRegistryHost(env);
  if (host === null) warnings.push(`${NPM_REGISTRY_TOKEN}: npm is not installed or has no registry configured; rules naming it are skipped`);
  const out = layers.map((l) => {
    const rules = l.file.network?.rules;
    if (!rules) return l;
    const next = rules
      .filter((r) => host !== null || ![r.allow, r.deny, r.ask].includes(NPM_REGISTRY_TOKEN))
      .map((r) => ({
        ...r,
        ...(r.allow === NPM_REGISTRY_TOKEN ? { allow: host! } : {}),
        ...(r.deny === NPM_REGISTRY_TOKEN ? { deny: host! } : {}),
        ...(r.ask === NPM_REGISTRY_TOKEN ? { ask: host! } : {}),
      }));
    return { ...l, file: { ...l.file, network: { ...l.file.network, rules: next } } };
  });
  return { layers: out, warnings };
}
