// Merging policy layers into the effective policy. Pure: no I/O.
//
// Order: defaults, then for each host file (system, user, --policy) the
// profiles it extends followed by the file itself. Later layers override
// scalars; lists are unions; network rules are concatenated in layer order.
// The workspace layer is special: it may only narrow (see narrowWithWorkspace).

import { CordonError } from '../errors.ts';
import { looksSecret } from './invariants.ts';
import { compileBinding, compileCanary } from './bindings.ts';
import { compileNetworkRule } from './network-rules.ts';
import { DEFAULTS, PROFILES } from './profiles.ts';
import type { PolicyFile } from './schema.ts';
import type { EffectivePolicy, Origin } from './types.ts';
import { parseDuration, parseSize } from './units.ts';

/** One parsed, validated layer plus a way to say where a field came from. */
export interface Layer {
  file: PolicyFile;
  origin: Origin;
  /** Location of a field path (e.g. ['limits', 'memory']) in the layer's source. */
  locate: (path: (string | number)[]) => { line?: number; col?: number };
}

export interface MergeResult {
  policy: EffectivePolicy;
  origins: Record<string, Origin>;
}

export function profileLayer(name: string, via: Origin): Layer {
  const file = PROFILES[name];
  if (!file) {
    throw new CordonError('CORDON_POLICY_INVALID', `unknown profile "${name}"`, {
      hint: `built-in profiles: ${Object.keys(PROFILES).join(', ')}`,
      detail: { file: via.source, line: via.line, field: 'extends' },
    });
  }
  return { file, origin: { role: 'profile', source: name }, locate: () => ({}) };
}

/** Expand `extends` (depth-first, each profile once) so profiles precede the file naming them. */
export function expandExtends(layer: Layer, seen = new Set<string>()): Layer[] {
  const ext = layer.file.extends;
  const names = ext === undefined ? [] : Array.isArray(ext) ? ext : [ext];
  const out: Layer[] = [];
  for (const name of names) {
    if (seen.has(name)) continue;
    seen.add(name);
    const via = { ...layer.origin, ...layer.locate(['extends']) };
    out.push(...expandExtends(profileLayer(name, via), seen));
  }
  out.push(layer);
  return out;
}

export function mergeLayers(layers: Layer[]): MergeResult {
  const origins: Record<string, Origin> = {};
  const defaultOrigin: Origin = { role: 'default', source: 'built-in defaults' };
  const all: Layer[] = [{ file: DEFAULTS, origin: defaultOrigin, locate: () => ({}) }, ...layers];

  const at = (layer: Layer, path: (string | number)[]): Origin => ({ ...layer.origin, ...layer.locate(path) });

  // scalars: last writer wins
  const scalar = <T>(key: string, path: (string | number)[], get: (f: PolicyFile) => T | undefined): T => {
    let value: T | undefined;
    for (const layer of all) {
      const v = get(layer.file);
      if (v !== undefined) {
        value = v;
        origins[key] = at(layer, path);
      }
    }
    return value as T;
  };

  // lists: union in first-seen order
  const list = (key: string, path: string[], get: (f: PolicyFile) => string[] | undefined): string[] => {
    const out: string[] = [];
    for (const layer of all) {
      (get(layer.file) ?? []).forEach((v, i) => {
        if (out.includes(v)) return;
        origins[`${key}[${out.length}]`] = at(layer, [...path, i]);
        out.push(v);
      });
    }
    return out;
  };

  const envSet: Record<string, string> = {};
  for (const layer of all) {
    for (const [k, v] of Object.entries(layer.file.env?.set ?? {})) {
      envSet[k] = v;
      origins[`env.set.${k}`] = at(layer, ['env', 'set', k]);
    }
  }

  const networkHosts: Record<string, string[]> = {};
  for (const layer of all) {
    for (const [name, addrs] of Object.entries(layer.file.network?.hosts ?? {})) {
      networkHosts[name.toLowerCase().replace(/\.$/, '')] = addrs;
      origins[`network.hosts.${name}`] = at(layer, ['network', 'hosts', name]);
    }
  }

  const rules = [];
  for (const layer of all) {
    for (const [i, input] of (layer.file.network?.rules ?? []).entries()) {
      const origin = at(layer, ['network', 'rules', i]);
      origins[`network.rules[${rules.length}]`] = origin;
      rules.push(compileNetworkRule(input, rules.length, origin));
    }
  }

  const bindings = [];
  const canaries = [];
  for (const layer of all) {
    for (const [i, input] of (layer.file.credentials?.bindings ?? []).entries()) {
      const origin = at(layer, ['credentials', 'bindings', i]);
      origins[`credentials.bindings[${bindings.length}]`] = origin;
      bindings.push(compileBinding(input, bindings.length, origin));
    }
    for (const [i, input] of (layer.file.credentials?.canaries ?? []).entries()) {
      origins[`credentials.canaries[${canaries.length}]`] = at(layer, ['credentials', 'canaries', i]);
      canaries.push(compileCanary(input));
    }
  }

  const limit = (key: keyof NonNullable<PolicyFile['limits']>, effectiveKey: keyof EffectivePolicy['limits'], conv: (v: string | number) => number | undefined) => {
    const raw = scalar(`limits.${effectiveKey}`, ['limits', key], (f) => f.limits?.[key]);
    if (raw === 'unlimited' || raw === undefined) return null;
    const n = conv(raw);
    return n === undefined ? null : n;
  };
  const count = (v: string | number) => (typeof v === 'number' ? v : undefined);
  const budget = (key: keyof EffectivePolicy['network']['budget'], conv: (v: string | number) => number | undefined) => {
    const raw = scalar(`network.budget.${key}`, ['network', 'budget', key], (f) => f.network?.budget?.[key]);
    if (raw === 'unlimited' || raw === undefined) return null;
    return conv(raw) ?? null;
  };

  const policy: EffectivePolicy = {
    version: 1,
    sandbox: {
      backend: scalar('sandbox.backend', ['sandbox', 'backend'], (f) => f.sandbox?.backend),
      hostname: scalar('sandbox.hostname', ['sandbox', 'hostname'], (f) => f.sandbox?.hostname),
    },
    filesystem: {
      read: list('filesystem.read', ['filesystem', 'read'], (f) => f.filesystem?.read),
      write: list('filesystem.write', ['filesystem', 'write'], (f) => f.filesystem?.write),
      hide: list('filesystem.hide', ['filesystem', 'hide'], (f) => f.filesystem?.hide),
      protect: list('filesystem.protect', ['filesystem', 'protect'], (f) => f.filesystem?.protect),
      dangerouslyAllowSecretPaths: list(
        'filesystem.dangerouslyAllowSecretPaths',
        ['filesystem', 'dangerouslyAllowSecretPaths'],
        (f) => f.filesystem?.dangerouslyAllowSecretPaths,
      ),
      dangerouslyUnprotect: list('filesystem.dangerouslyUnprotect', ['filesystem', 'dangerouslyUnprotect'], (f) => f.filesystem?.dangerouslyUnprotect),
    },
    env: {
      pass: list('env.pass', ['env', 'pass'], (f) => f.env?.pass),
      set: envSet,
      dangerouslyPassSecrets: list('env.dangerouslyPassSecrets', ['env', 'dangerouslyPassSecrets'], (f) => f.env?.dangerouslyPassSecrets),
    },
    limits: {
      processes: limit('processes', 'processes', count),
      memoryBytes: limit('memory', 'memoryBytes', parseSize),
      cpuTimeMs: limit('cpuTime', 'cpuTimeMs', parseDuration),
      fileSizeBytes: limit('fileSize', 'fileSizeBytes', parseSize),
      openFiles: limit('openFiles', 'openFiles', count),
      timeoutMs: limit('timeout', 'timeoutMs', parseDuration),
    },
    network: {
      mode: scalar('network.mode', ['network', 'mode'], (f) => f.network?.mode),
      rules,
      hosts: networkHosts,
      upstreamCa: scalar('network.upstreamCa', ['network', 'upstreamCa'], (f) => f.network?.upstreamCa) ?? null,
      budget: { bytesUp: budget('bytesUp', parseSize), requests: budget('requests', count), destinations: budget('destinations', count) },
    },
    credentials: { bindings, canaries },
  };
  if (bindings.length > 0 && policy.network.mode !== 'proxy') {
    const o = origins['credentials.bindings[0]'];
    throw new CordonError('CORDON_POLICY_INVALID', 'credentials.bindings need network.mode: proxy (the proxy is what injects them)', {
      detail: { file: o?.source, line: o?.line, field: 'credentials.bindings' },
    });
  }

  checkEnvSecrets(policy, origins);
  return { policy, origins };
}

/** env.pass entries that look like secrets need an explicit dangerously... entry. */
function checkEnvSecrets(policy: EffectivePolicy, origins: Record<string, Origin>): void {
  policy.env.pass.forEach((name, i) => {
    if (looksSecret(name) && !policy.env.dangerouslyPassSecrets.includes(name)) {
      const o = origins[`env.pass[${i}]`];
      throw new CordonError('CORDON_POLICY_INVALID', `env.pass: "${name}" looks like a secret and is not passed into the sandbox`, {
        hint: 'bind it as a credential (the agent gets a placeholder), or list it in env.dangerouslyPassSecrets if the agent must hold the real value',
        detail: { file: o?.source, line: o?.line, field: `env.pass[${i}]` },
      });
    }
  });
}

/**
 * Apply a trusted workspace policy. It may only narrow: lower limits, add deny
 * rules, protect or hide more paths, drop env names, or switch the network
 * off. Anything that would widen is an error naming the field.
 */
export function narrowWithWorkspace(base: MergeResult, ws: Layer): MergeResult {
  const f = ws.file;
  const widen = (path: (string | number)[], why: string): never => {
    const loc = ws.locate(path);
    throw new CordonError('CORDON_POLICY_WIDENS', `${ws.origin.source}:${loc.line ?? '?'}: ${path.join('.')}: ${why}`, {
      hint: 'a workspace policy can only narrow the host policy; put widening changes in your host policy (cordon policy show lists its files)',
      detail: { file: ws.origin.source, line: loc.line, field: path.join('.') },
    });
  };
  if (f.extends !== undefined) widen(['extends'], 'a workspace policy cannot extend profiles');
  if (f.sandbox !== undefined) widen(['sandbox'], 'a workspace policy cannot choose the backend');
  if (f.credentials !== undefined) widen(['credentials'], 'a workspace policy cannot bind credentials or plant canaries');
  if (f.filesystem?.read?.length) widen(['filesystem', 'read'], 'cannot mount more host paths');
  if (f.filesystem?.write?.length) widen(['filesystem', 'write'], 'cannot mount more host paths');
  if (f.filesystem?.dangerouslyAllowSecretPaths?.length) widen(['filesystem', 'dangerouslyAllowSecretPaths'], 'cannot weaken invariants');
  if (f.filesystem?.dangerouslyUnprotect?.length) widen(['filesystem', 'dangerouslyUnprotect'], 'cannot weaken invariants');
  if (f.env?.pass?.length || f.env?.set || f.env?.dangerouslyPassSecrets?.length) widen(['env'], 'cannot add environment variables');
  if (f.network?.mode === 'proxy' && base.policy.network.mode !== 'proxy') widen(['network', 'mode'], 'cannot open the network');
  (f.network?.rules ?? []).forEach((r, i) => {
    if (r.deny === undefined) widen(['network', 'rules', i], 'only deny rules are allowed');
  });

  const policy: EffectivePolicy = structuredClone(base.policy);
  const origins = { ...base.origins };
  const at = (path: (string | number)[]): Origin => ({ ...ws.origin, ...ws.locate(path) });

  const count = (v: string | number) => (typeof v === 'number' ? v : undefined);
  /** A workspace value replaces the current one only when it is lower (a limit or budget can only tighten). */
  const lower = (cur: number | null, raw: string | number | undefined, conv: (v: string | number) => number | undefined): number | null => {
    if (raw === undefined || raw === 'unlimited') return null;
    const n = conv(raw);
    return n !== undefined && (cur === null || n < cur) ? n : null;
  };
  for (const [key, field, conv] of [
    ['processes', 'processes', count],
    ['memoryBytes', 'memory', parseSize],
    ['cpuTimeMs', 'cpuTime', parseDuration],
    ['fileSizeBytes', 'fileSize', parseSize],
    ['openFiles', 'openFiles', count],
    ['timeoutMs', 'timeout', parseDuration],
  ] as const) {
    const n = lower(policy.limits[key], f.limits?.[field], conv);
    if (n === null) continue;
    policy.limits[key] = n;
    origins[`limits.${key}`] = at(['limits', field]);
  }
  for (const [key, conv] of [
    ['bytesUp', parseSize],
    ['requests', count],
    ['destinations', count],
  ] as const) {
    const n = lower(policy.network.budget[key], f.network?.budget?.[key], conv);
    if (n === null) continue;
    policy.network.budget[key] = n;
    origins[`network.budget.${key}`] = at(['network', 'budget', key]);
  }
  for (const p of f.filesystem?.protect ?? []) {
    if (!policy.filesystem.protect.includes(p)) {
      origins[`filesystem.protect[${policy.filesystem.protect.length}]`] = at(['filesystem', 'protect']);
      policy.filesystem.protect.push(p);
    }
  }
  for (const p of f.filesystem?.hide ?? []) {
    if (!policy.filesystem.hide.includes(p)) {
      origins[`filesystem.hide[${policy.filesystem.hide.length}]`] = at(['filesystem', 'hide']);
      policy.filesystem.hide.push(p);
    }
  }
  if (f.network?.mode === 'none' && policy.network.mode !== 'none') {
    policy.network.mode = 'none';
    origins['network.mode'] = at(['network', 'mode']);
  }
  // Workspace deny rules go first so they take precedence over host allows.
  const denies = (f.network?.rules ?? []).map((r, i) => compileNetworkRule(r, i, at(['network', 'rules', i])));
  if (denies.length > 0) {
    const shifted = [...denies, ...policy.network.rules].map((r, i) => ({ ...r, index: i }));
    const newOrigins: Record<string, Origin> = {};
    for (const [k, v] of Object.entries(origins)) if (!k.startsWith('network.rules[')) newOrigins[k] = v;
    denies.forEach((_, i) => (newOrigins[`network.rules[${i}]`] = at(['network', 'rules', i])));
    policy.network.rules.forEach((_, i) => {
      const o = origins[`network.rules[${i}]`];
      if (o) newOrigins[`network.rules[${i + denies.length}]`] = o;
    });
    policy.network.rules = shifted;
    return { policy, origins: newOrigins };
  }
  return { policy, origins };
}
