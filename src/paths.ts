// Where cordon keeps things on the host. None of these is ever mounted into a
// sandbox (see NEVER_MOUNT in policy/invariants.ts).
//
//   config   $CORDON_CONFIG_DIR | $XDG_CONFIG_HOME/cordon | ~/.config/cordon     policy.yaml
//   system   $CORDON_SYSTEM_DIR | /etc/cordon                                     policy.yaml
//   state    $CORDON_STATE_DIR  | $XDG_STATE_HOME/cordon | ~/.local/state/cordon audit.db, audit.key, trust.json, cache/
//   runtime  $CORDON_RUNTIME_DIR| $XDG_RUNTIME_DIR/cordon | <state>/run          per-session directories and sockets

import { homedir } from 'node:os';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface HostPaths {
  home: string;
  config: string;
  system: string;
  state: string;
  runtime: string;
  /** Root of the cordon installation (holds build/native, dist). */
  install: string;
}

export function hostPaths(env: NodeJS.ProcessEnv = process.env): HostPaths {
  const home = env.HOME && env.HOME.startsWith('/') ? env.HOME : homedir();
  const xdg = (name: string, fallback: string) => {
    const v = env[name];
    return v && v.startsWith('/') ? v : fallback;
  };
  const state = env.CORDON_STATE_DIR || join(xdg('XDG_STATE_HOME', join(home, '.local/state')), 'cordon');
  const runtimeBase = env.XDG_RUNTIME_DIR && env.XDG_RUNTIME_DIR.startsWith('/') ? join(env.XDG_RUNTIME_DIR, 'cordon') : join(state, 'run');
  return {
    home,
    config: env.CORDON_CONFIG_DIR || join(xdg('XDG_CONFIG_HOME', join(home, '.config')), 'cordon'),
    system: env.CORDON_SYSTEM_DIR || '/etc/cordon',
    state,
    runtime: env.CORDON_RUNTIME_DIR || runtimeBase,
    install: installRoot(),
  };
}

/** The checkout cordon runs from: the nearest directory above this module with cordon's package.json. */
export function installRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bin', 'cordon'))) return dir;
    dir = dirname(dir);
  }
  return dirname(dirname(fileURLToPath(import.meta.url)));
}

/** Expand "~" and "$CONFIG"-style names used in policies and invariants. Returns null if a variable is unset. */
export function expandHostPath(p: string, paths: HostPaths, env: NodeJS.ProcessEnv = process.env): string | null {
  if (p === '~') return paths.home;
  if (p.startsWith('~/')) return join(paths.home, p.slice(2));
  const m = /^\$([A-Z_]+)(\/.*)?$/.exec(p);
  if (!m) return p;
  const rest = m[2] ?? '';
  switch (m[1]) {
    case 'CONFIG':
      return paths.config + rest;
    case 'STATE':
      return paths.state + rest;
    case 'RUNTIME':
      return paths.runtime + rest;
    default: {
      const v = env[m[1]!];
      return v && v.startsWith('/') ? v + rest : null;
    }
  }
}
