// From the effective policy to an ordered list of mounts. Reads are
// default-deny: only what this plan mounts exists inside the sandbox.
//
// Every host path handed to a backend is a real path (symlinks resolved here,
// then checked), because bind mounts follow symlinks: a workspace symlink to
// ~/.ssh must never turn into a mount of ~/.ssh.

import { existsSync, lstatSync, mkdirSync, readlinkSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { CordonError } from '../errors.ts';
import { LIVE_PROTECTED, NEVER_MOUNT, SHELL_STARTUP } from '../policy/invariants.ts';
import type { EffectivePolicy } from '../policy/types.ts';
import { expandHostPath, type HostPaths } from '../paths.ts';
import type { MountSpec } from './backend.ts';
import type { EtcResult } from './etc-files.ts';
import { patternsFor, scanProtected, type ProtectScan } from './protect.ts';

/** System directories mounted read-only (or recreated as symlinks on merged-/usr hosts). */
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/** Workspaces that would hand the agent the machine. */
const FORBIDDEN_WORKSPACES = ['/', '/usr', '/etc', '/bin', '/sbin', '/lib', '/lib64', '/boot', '/proc', '/sys', '/dev', '/var', '/run', '/home'];

export type PlanEvent =
  | { kind: 'mount'; path: string; mode: 'ro' | 'rw'; why: string }
  | { kind: 'skip-missing'; path: string; why: string }
  | { kind: 'mask'; path: string; why: string }
  | { kind: 'protect'; path: string }
  | { kind: 'placeholder'; path: string }
  | { kind: 'not-mounted-symlink'; path: string; target: string }
  | { kind: 'dangerous'; path: string; why: string };

export interface MountPlan {
  mounts: MountSpec[];
  landlock: { ro: string[]; rw: string[] };
  events: PlanEvent[];
  /** Host paths bwrap will create as mountpoints; removed after the session when empty. */
  placeholders: { path: string; dir: boolean }[];
  protectScan: ProtectScan;
  protectPatterns: string[];
  home: string;
  workspace: string;
}

export interface PlanInput {
  policy: EffectivePolicy;
  paths: HostPaths;
  /** Absolute path of the workspace (resolved here). */
  workspace: string;
  /** Home directory inside the sandbox (same path as the host's, but empty). */
  home: string;
  sessionDir: string;
  /** An empty directory and an empty file (read-only) used to mask paths. */
  empty: { emptyDir: string; emptyFile: string };
  /** The sandbox's /etc (see etc-files.ts). */
  etc: EtcResult;
  /** Host path of cordon-init, bound read-only at INIT_PATH. */
  initBinary: string;
  /** More mounts from other parts of the session (the proxy's CA files), applied last. */
  extraMounts?: MountSpec[];
  env?: NodeJS.ProcessEnv;
}

export const INIT_PATH = '/run/cordon/init';

/** The shared, read-only empty directory and file used as mask sources. */
export function emptySources(cacheDir: string): { emptyDir: string; emptyFile: string } {
  const emptyDir = join(cacheDir, 'empty-dir');
  const emptyFile = join(cacheDir, 'empty-file');
  if (!existsSync(emptyFile)) {
    mkdirSync(emptyDir, { recursive: true, mode: 0o555 });
    writeFileSync(emptyFile, '', { mode: 0o444 });
  }
  return { emptyDir, emptyFile };
}

const isUnder = (p: string, dir: string) => p === dir || p.startsWith(dir === '/' ? '/' : dir + sep);

/** Real path, or null if nothing is there. (Checked first: exceptions are slow, and most never-mount paths do not exist.) */
function realOrNull(p: string): string | null {
  if (lstatSync(p, { throwIfNoEntry: false }) === undefined) return null;
  try {
    return realpathSync(p);
  } catch {
    return null; // dangling symlink
  }
}

export function resolveWorkspace(dir: string): string {
  const real = realOrNull(dir);
  if (real === null || !statSync(real).isDirectory()) {
    throw new CordonError('CORDON_USAGE', `workspace ${dir} is not a directory`, { detail: { workspace: dir } });
  }
  if (FORBIDDEN_WORKSPACES.includes(real)) {
    throw new CordonError('CORDON_UNSAFE_MOUNT', `refusing to use ${real} as the workspace: the agent could write to it`, {
      hint: 'run cordon in a project directory, or pass --workspace DIR',
      detail: { workspace: real },
    });
  }
  return real;
}

export function planMounts(input: PlanInput): MountPlan {
  const { policy, paths } = input;
  const env = input.env ?? process.env;
  const events: PlanEvent[] = [];
  const ws = resolveWorkspace(input.workspace);
  const home = input.home;

  // The never-mount set, expanded; real paths where they exist.
  const allowed = new Set(policy.filesystem.dangerouslyAllowSecretPaths.map((p) => expandHostPath(p, paths, env)).filter((p): p is string => p !== null));
  const never: { path: string; entry: string }[] = [];
  for (const entry of NEVER_MOUNT) {
    const p = expandHostPath(entry, paths, env);
    if (p === null) continue;
    if (allowed.has(p)) {
      events.push({ kind: 'dangerous', path: p, why: 'filesystem.dangerouslyAllowSecretPaths' });
      continue;
    }
    never.push({ path: p, entry });
    const r = realOrNull(p);
    if (r !== null && r !== p) never.push({ path: r, entry });
  }

  // Binds requested: workspace, policy read/write. Each checked against `never`.
  interface Bind { src: string; mode: 'ro' | 'rw'; why: string }
  const binds: Bind[] = [{ src: ws, mode: 'rw', why: 'workspace' }];
  const addPolicyPath = (raw: string, mode: 'ro' | 'rw', field: string) => {
    const expanded = expandHostPath(raw, paths, env);
    if (expanded === null) return;
    const real = realOrNull(expanded);
    if (real === null) {
      events.push({ kind: 'skip-missing', path: expanded, why: field });
      return;
    }
    for (const n of never) {
      if (isUnder(real, n.path)) {
        throw new CordonError('CORDON_UNSAFE_MOUNT', `${field}: ${raw} resolves to ${real}, inside ${n.entry}, which is never mounted`, {
          hint: `if the agent really must see it, add "${n.entry}" to filesystem.dangerouslyAllowSecretPaths`,
          detail: { field, path: raw, resolved: real, invariant: n.entry },
        });
      }
    }
    binds.push({ src: real, mode, why: field });
  };
  policy.filesystem.write.forEach((p, i) => addPolicyPath(p, 'rw', `filesystem.write[${i}]`));
  policy.filesystem.read.forEach((p, i) => addPolicyPath(p, 'ro', `filesystem.read[${i}]`));
  for (const n of never) {
    if (isUnder(ws, n.path)) {
      throw new CordonError('CORDON_UNSAFE_MOUNT', `the workspace ${ws} is inside ${n.entry}, which is never mounted`, {
        detail: { workspace: ws, invariant: n.entry },
      });
    }
  }

  // cordon's own installation must never be writable from inside.
  const install = realOrNull(paths.install);

  const mounts: MountSpec[] = [];
  // Landlock: everything mounted is readable (the mounts decide what exists);
  // writes only where the plan mounts something writable.
  const landlock = { ro: ['/'] as string[], rw: [] as string[] };

  // 1. System directories.
  for (const d of SYSTEM_DIRS) {
    const st = lstatSync(d, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isSymbolicLink()) {
      // Keep the link as the host has it (e.g. /bin -> usr/bin).
      mounts.push({ kind: 'symlink', target: readlinkSync(d), dest: d });
    } else if (st.isDirectory()) {
      mounts.push({ kind: 'ro-bind', src: d, dest: d });
    }
  }
  // 2. Minimal /etc: one prepared directory, plus a few large directories on top.
  mounts.push({ kind: 'ro-bind', src: input.etc.dir, dest: '/etc' });
  for (const b of input.etc.binds) mounts.push({ kind: 'ro-bind', src: b.src, dest: b.dest });
  // 3. Kernel interfaces and scratch space.
  mounts.push({ kind: 'proc', dest: '/proc' }, { kind: 'dev', dest: '/dev' });
  mounts.push({ kind: 'tmpfs', dest: '/dev/shm', mode: 0o1777 }, { kind: 'tmpfs', dest: '/tmp', mode: 0o1777 });
  mounts.push({ kind: 'dir', dest: '/var/tmp', mode: 0o1777 });
  landlock.rw.push('/dev', '/tmp', '/var/tmp');
  // 4. An empty home, then the binds, shallowest first so deeper ones win.
  mounts.push({ kind: 'tmpfs', dest: home, mode: 0o700 });
  landlock.rw.push(home);
  const depth = (p: string) => p.split('/').length;
  binds.sort((a, b) => depth(a.src) - depth(b.src));
  for (const b of binds) {
    mounts.push({ kind: b.mode === 'rw' ? 'bind' : 'ro-bind', src: b.src, dest: b.src });
    if (b.mode === 'rw') landlock.rw.push(b.src);
    events.push({ kind: 'mount', path: b.src, mode: b.mode, why: b.why });
  }

  // 5. Masks: never-mount paths and `hide` entries inside anything mounted.
  const { emptyDir, emptyFile } = input.empty;
  const masked = new Set<string>();
  const mask = (p: string, why: string) => {
    if (masked.has(p)) return;
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isSymbolicLink()) return; // dangling inside: its target is not mounted
    if (!binds.some((b) => isUnder(p, b.src))) return; // not mounted anyway
    masked.add(p);
    mounts.push({ kind: 'ro-bind', src: st.isDirectory() ? emptyDir : emptyFile, dest: p });
    events.push({ kind: 'mask', path: p, why });
  };
  const candidates: { path: string; why: string }[] = never.map((n) => ({ path: n.path, why: `never mounted (${n.entry})` }));
  for (const h of policy.filesystem.hide) {
    const p = expandHostPath(h, paths, env);
    if (p !== null) candidates.push({ path: p, why: `filesystem.hide[${policy.filesystem.hide.indexOf(h)}]` });
  }
  // Shallowest first; anything inside an already masked directory is covered.
  candidates.sort((a, b) => a.path.split('/').length - b.path.split('/').length);
  for (const c of candidates) if (![...masked].some((m) => isUnder(c.path, m))) mask(c.path, c.why);
  if (install !== null && binds.some((b) => b.mode === 'rw' && (isUnder(install, b.src) || isUnder(b.src, install)))) {
    mounts.push({ kind: 'ro-bind', src: install, dest: install });
    events.push({ kind: 'protect', path: install });
  }

  // 6. Protected paths in the workspace: read-only, placeholders for missing ones.
  const protectPatterns = patternsFor(policy.filesystem.protect, policy.filesystem.dangerouslyUnprotect);
  for (const u of policy.filesystem.dangerouslyUnprotect) events.push({ kind: 'dangerous', path: join(ws, u), why: 'filesystem.dangerouslyUnprotect' });
  const scan = scanProtected(ws, protectPatterns);
  for (const e of scan.existing) {
    if (e.type === 'symlink') continue;
    mounts.push({ kind: 'ro-bind', src: e.path, dest: e.path });
    events.push({ kind: 'protect', path: e.path });
  }
  for (const s of scan.escaping) events.push({ kind: 'not-mounted-symlink', path: s.path, target: s.target });
  const placeholders: { path: string; dir: boolean }[] = [];
  const hasGit = existsSync(join(ws, '.git'));
  const live = new Set([...LIVE_PROTECTED, ...(ws === realOrNull(home) ? SHELL_STARTUP : [])].map((p) => p.replace(/\/$/, '')));
  for (const m of scan.missingAtRoot) {
    const rel = m.path.slice(ws.length + 1);
    if (!live.has(rel) && !(rel.startsWith('.git/') && hasGit && (rel === '.git/hooks' || rel === '.git/config'))) continue;
    // Parent directories that do not exist will be created by the backend too.
    let dir = dirname(m.path);
    const created: string[] = [];
    while (dir !== ws && !existsSync(dir)) {
      created.push(dir);
      dir = dirname(dir);
    }
    if (lstatExists(dir) && !statSync(dir).isDirectory()) continue;
    placeholders.push(...created.map((p) => ({ path: p, dir: true })), { path: m.path, dir: m.dir });
    mounts.push({ kind: 'ro-bind', src: m.dir ? emptyDir : emptyFile, dest: m.path });
    events.push({ kind: 'placeholder', path: m.path });
  }

  // 7. The init shim that applies Landlock and execs the command; then what
  // other parts of the session add (files they generated, never host paths).
  mounts.push({ kind: 'ro-bind', src: input.initBinary, dest: INIT_PATH });
  mounts.push(...(input.extraMounts ?? []));

  return { mounts, landlock, events, placeholders, protectScan: scan, protectPatterns, home, workspace: ws };
}

function lstatExists(p: string): boolean {
  return lstatSync(p, { throwIfNoEntry: false }) !== undefined;
}
