// Test harness: run the shipped CLI (the bundle in dist/, on the project's
// Node), in isolated state/config/runtime directories.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
export const BUNDLE = join(ROOT, 'dist', 'cordon.mjs');
// As users run it: the launcher (run.cjs for `run`, the ES module CLI otherwise).
export const CORDON = [join(ROOT, 'bin', 'cordon')];

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Fail loudly when dist/ is older than src/ (a stale bundle would test old code). */
export function assertFreshBuild(): void {
  let built = 0;
  try {
    built = statSync(BUNDLE).mtimeMs;
  } catch {
    throw new Error(`${BUNDLE} is missing: run scripts/setup.sh --no-demo (or npm run build)`);
  }
  if (newest(join(ROOT, 'src')) > built) throw new Error('dist/ is older than src/: run npm run build (scripts/test.sh does)');
}

export interface Isolated {
  root: string;
  home: string;
  workspace: string;
  env: NodeJS.ProcessEnv;
}

export function isolated(): Isolated {
  const root = mkdtempSync(join(tmpdir(), 'cordon-test-'));
  const home = join(root, 'home');
  const workspace = join(root, 'ws');
  for (const d of [home, workspace, join(root, 'state'), join(root, 'config'), join(root, 'run')]) mkdirSync(d, { recursive: true, mode: 0o700 });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    CORDON_STATE_DIR: join(root, 'state'),
    CORDON_CONFIG_DIR: join(root, 'config'),
    CORDON_RUNTIME_DIR: join(root, 'run'),
    CORDON_SYSTEM_DIR: join(root, 'system'),
  };
  delete env.XDG_RUNTIME_DIR;
  delete env.XDG_CONFIG_HOME;
  delete env.XDG_STATE_HOME;
  return { root, home, workspace, env };
}

export interface Result {
  status: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function cordonSync(args: string[], opts: { env: NodeJS.ProcessEnv; cwd?: string; input?: string; timeout?: number }): Result {
  const r = spawnSync(CORDON[0]!, [...CORDON.slice(1), ...args], {
    env: opts.env,
    cwd: opts.cwd,
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeout ?? 60_000,
  });
  return { status: r.status ?? -1, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export function cordonAsync(args: string[], opts: { env: NodeJS.ProcessEnv; cwd?: string }) {
  return spawn(CORDON[0]!, [...CORDON.slice(1), ...args], { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}
