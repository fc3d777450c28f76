// Policy edits on the host reach a running session: the directories holding
// its policy files (and the trust store) are watched; on a change the policy
// is loaded again, validated, and — if it loaded — handed over whole. The
// proxy swaps its rules atomically and closes flows opened under the old
// ones. Mounts, environment and limits of a running sandbox cannot change:
// those edits apply to the next session, and the notice says so. An invalid
// edit changes nothing; the session keeps the policy it has.

import { existsSync, watch, type FSWatcher } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { isCordonError } from '../errors.ts';
import type { HostPaths } from '../paths.ts';
import { loadPolicy } from '../policy/load.ts';
import type { LoadedPolicy } from '../policy/types.ts';

export interface PolicyWatcher {
  close(): void;
}

export interface WatchOptions {
  paths: HostPaths;
  policyFile?: string;
  workspace: string;
  env: NodeJS.ProcessEnv;
  current: LoadedPolicy;
  onReload: (next: LoadedPolicy, changed: string[]) => void;
  onError: (message: string) => void;
  debounceMs?: number;
}

const SECTIONS = ['sandbox', 'filesystem', 'env', 'limits', 'network'] as const;

export function watchPolicy(opts: WatchOptions): PolicyWatcher {
  // Directory -> the names in it that matter (null: any). The state directory
  // is busy (the audit log): only the trust store counts there.
  const dirs = new Map<string, Set<string> | null>([
    [opts.paths.config, new Set(['policy.yaml'])],
    [opts.paths.system, new Set(['policy.yaml'])],
    [opts.paths.state, new Set(['trust.json'])],
    [join(opts.workspace, '.cordon'), new Set(['policy.yaml'])],
  ]);
  if (opts.policyFile) {
    const f = resolve(opts.policyFile);
    const names = dirs.get(dirname(f)) ?? new Set<string>();
    names.add(f.slice(dirname(f).length + 1));
    dirs.set(dirname(f), names);
  }
  const watchers: FSWatcher[] = [];
  let current = opts.current;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  let loading = false;
  let again = false;

  const check = async () => {
    if (closed) return;
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    try {
      const next = await loadPolicy({ paths: opts.paths, policyFile: opts.policyFile, workspace: opts.workspace, env: opts.env, noCache: true });
      if (closed || next.hash === current.hash) return;
      const changed = SECTIONS.filter((k) => JSON.stringify(next.policy[k]) !== JSON.stringify(current.policy[k]));
      if (next.policy.network.mode !== current.policy.network.mode) {
        opts.onError(`network.mode changed to "${next.policy.network.mode}": that applies to the next session`);
        return;
      }
      current = next;
      opts.onReload(next, changed);
    } catch (e) {
      opts.onError(isCordonError(e) ? e.message : String(e));
    } finally {
      loading = false;
      if (again && !closed) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void check(), opts.debounceMs ?? 150);
  };
  for (const [d, names] of dirs) {
    if (!existsSync(d)) continue;
    try {
      // Editors save by rename: the name of interest shows up either way.
      watchers.push(watch(d, { persistent: true }, (_event, name) => {
        if (names === null || name === null || names.has(String(name)) || String(name).startsWith(`${[...names][0]}.`)) schedule();
      }));
    } catch {
      // unwatchable (permissions): edits there apply to the next session
    }
  }
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
