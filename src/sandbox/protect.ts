// Protected paths inside the workspace: files and directories that something
// on the host executes or obeys (.git/hooks, .git/config, agent settings, CI
// workflows, shell rc files, cordon's own workspace policy), in the workspace
// root and in every nested repository.
//
// Existing ones are mounted read-only over themselves. Missing ones at the
// workspace root get a read-only placeholder mount so the agent cannot create
// them (the empty mountpoint bwrap leaves on the host is removed afterwards, or
// by the next run if cordon was killed). Anything protected that still appears
// during a session (e.g. hooks in a repository the agent created) is found by
// `sweep` afterwards and moved to quarantine.

import { lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmdirSync, statSync, unlinkSync, type Stats } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { PROTECTED_IN_WORKSPACE, protectedPatternMatches } from '../policy/invariants.ts';

export interface ProtectedEntry {
  /** Absolute real path of the protected item. */
  path: string;
  /** Relative to the workspace. */
  rel: string;
  type: 'file' | 'dir' | 'symlink';
  /** Identity for the sweep: changed identity == changed during the session. */
  stamp: string;
}

export interface ProtectScan {
  existing: ProtectedEntry[];
  /** Workspace-root protected paths that do not exist (placeholders go here). */
  missingAtRoot: { path: string; dir: boolean }[];
  /** Symlinked protected entries whose target leaves the workspace: not mounted. */
  escaping: { path: string; target: string }[];
  scannedEntries: number;
  truncated: boolean;
}

/** Directories not descended into: huge, and not where host tools look for hooks. */
const SKIP_DIRS = new Set(['node_modules', '.venv', '__pycache__']);
const GIT_SKIP = new Set(['objects', 'lfs', 'logs', 'refs']);
export const SCAN_LIMIT = 200_000;

function stampOf(st: Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.mode}`;
}

export function patternsFor(extra: readonly string[], unprotect: readonly string[]): string[] {
  const strip = (p: string) => p.replace(/\/$/, '');
  const un = new Set(unprotect.map(strip));
  return [...PROTECTED_IN_WORKSPACE, ...extra].filter((p) => !un.has(strip(p)));
}

/**
 * Walk the workspace once and list protected items. Patterns are matched
 * relative to the workspace root and to every repository root (a directory
 * containing `.git`); inside a `.git` directory, submodule and worktree git
 * directories (`.git/modules/<name>`, `.git/worktrees/<name>`) are roots too.
 */
export function scanProtected(workspace: string, patterns: readonly string[]): ProtectScan {
  const out: ProtectScan = { existing: [], missingAtRoot: [], escaping: [], scannedEntries: 0, truncated: false };
  const seen = new Set<string>();
  const wsReal = realpathSync(workspace);

  const consider = (abs: string, rel: string) => {
    if (seen.has(abs)) return;
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (!st) return;
    seen.add(abs);
    if (st.isSymbolicLink()) {
      let target: string;
      try {
        target = realpathSync(abs);
      } catch {
        target = '(dangling)';
      }
      if (target === '(dangling)' || !(target === wsReal || target.startsWith(wsReal + sep))) {
        out.escaping.push({ path: abs, target });
        out.existing.push({ path: abs, rel, type: 'symlink', stamp: stampOf(st) });
        return;
      }
      const tst = statSync(target);
      out.existing.push({ path: target, rel, type: tst.isDirectory() ? 'dir' : 'file', stamp: stampOf(tst) });
      return;
    }
    out.existing.push({ path: abs, rel, type: st.isDirectory() ? 'dir' : 'file', stamp: stampOf(st) });
  };

  const checkRoot = (root: string) => {
    for (const p of patterns) {
      const relPath = p.replace(/\/$/, '');
      if (relPath.includes('*')) {
        // Wildcard patterns: list the parent directory.
        const parent = dirname(relPath);
        let names: string[] = [];
        try {
          names = readdirSync(join(root, parent));
        } catch {
          continue;
        }
        for (const n of names) {
          const cand = parent === '.' ? n : `${parent}/${n}`;
          if (protectedPatternMatches(relPath, cand)) consider(join(root, cand), relative(wsReal, join(root, cand)));
        }
      } else {
        const abs = join(root, relPath);
        consider(abs, relative(wsReal, abs));
        if (root === wsReal && !seen.has(abs)) out.missingAtRoot.push({ path: abs, dir: p.endsWith('/') });
      }
    }
  };

  const gitRoots = (gitDir: string) => {
    // A git directory: protect hooks/config of it and of its submodules/worktrees.
    for (const sub of ['modules', 'worktrees']) {
      let names: string[] = [];
      try {
        names = readdirSync(join(gitDir, sub));
      } catch {
        continue;
      }
      for (const n of names) {
        const d = join(gitDir, sub, n);
        for (const item of ['hooks', 'config', 'config.worktree', 'info/attributes']) consider(join(d, item), relative(wsReal, join(d, item)));
        gitRoots(d);
      }
    }
  };

  checkRoot(wsReal);
  gitRoots(join(wsReal, '.git'));

  // Breadth-first walk for nested repositories.
  const queue: string[] = [wsReal];
  while (queue.length > 0) {
    const dir = queue.shift()!;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    out.scannedEntries += entries.length;
    if (out.scannedEntries > SCAN_LIMIT) {
      out.truncated = true;
      break;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const abs = join(dir, e.name);
      if (e.name === '.git') {
        if (dir !== wsReal) {
          checkRoot(dir);
          gitRoots(abs);
        }
        continue; // never walk inside .git
      }
      if (SKIP_DIRS.has(e.name) || GIT_SKIP.has(e.name) && dir.endsWith(`${sep}.git`)) continue;
      queue.push(abs);
    }
    // A `.git` file (worktree / submodule checkout) marks a repository root too.
    if (dir !== wsReal && entries.some((e) => e.name === '.git' && e.isFile())) checkRoot(dir);
  }
  return out;
}

export interface SweepResult {
  /** Protected items created during the session, now in quarantine. */
  quarantined: { rel: string; movedTo: string; why: string }[];
  /** Same, but could not be moved (reported, left in place). */
  failed: { rel: string; error: string }[];
}

/** git config keys that make host git run something. */
const DANGEROUS_GIT_CONFIG = /^\s*(hookspath|fsmonitor|sshcommand|pager|editor|askpass|gitproxy|textconv|clean|smudge|process|command|helper|path|program|cmd)\s*=|^\s*\[\s*(include|includeif|filter|credential|alias)\b/im;

/**
 * After a session: protected items that did not exist before (the agent
 * created them: e.g. a nested repository with hooks, or CI files under a
 * directory that did not exist) are moved to quarantineDir. A new git
 * directory keeps its harmless parts: sample hooks stay, and its config only
 * goes if it sets something that runs commands on the host.
 */
/**
 * `othersPlaceholders`: absolute paths other live sessions keep as placeholders
 * (journal.ts); while still empty they are theirs, not something this
 * session's agent created.
 */
export function sweepProtected(workspace: string, patterns: readonly string[], before: ProtectScan, quarantineDir: string, othersPlaceholders: ReadonlySet<string> = new Set()): SweepResult {
  const after = scanProtected(workspace, patterns);
  const prior = new Map(before.existing.map((e) => [e.rel, e]));
  const inode = (e: ProtectedEntry) => e.stamp.split(':')[0];
  const res: SweepResult = { quarantined: [], failed: [] };
  const move = (rel: string, why: string) => {
    const src = join(workspace, rel);
    const dest = join(quarantineDir, rel);
    try {
      mkdirSync(dirname(dest), { recursive: true, mode: 0o700 });
      renameSync(src, dest);
      res.quarantined.push({ rel, movedTo: dest, why });
    } catch (err) {
      res.failed.push({ rel, error: (err as Error).message });
    }
  };
  const stillPlaceholder = (rel: string) => {
    const abs = join(workspace, rel);
    if (!othersPlaceholders.has(abs)) return false;
    try {
      const st = lstatSync(abs);
      return st.isDirectory() ? readdirSync(abs).length === 0 : st.isFile() && st.size === 0;
    } catch {
      return false;
    }
  };
  for (const e of after.existing) {
    const was = prior.get(e.rel);
    // Same type and same inode: the sandbox had it read-only throughout. A new
    // inode means it was removed and made again: once the host side removed
    // it, the read-only mount over it was gone, and the agent may be the one
    // that made it again.
    if (was?.type === e.type && inode(was) === inode(e)) continue;
    if (stillPlaceholder(e.rel)) continue;
    const why =
      was === undefined
        ? 'created during the session'
        : was.type !== e.type
          ? `changed from ${was.type} to ${e.type} during the session`
          : 'removed and made again during the session (its read-only mount was gone in between)';
    const base = e.rel.split('/').pop()!;
    const inGitDir = e.rel.split('/').includes('.git');
    if (inGitDir && base === 'hooks' && e.type === 'dir') {
      let names: string[] = [];
      try {
        names = readdirSync(join(workspace, e.rel));
      } catch {
        names = [];
      }
      for (const n of names) if (!n.endsWith('.sample')) move(`${e.rel}/${n}`, `hook ${why}`);
      continue;
    }
    if (inGitDir && (base === 'config' || base === 'config.worktree') && e.type === 'file') {
      let text = '';
      try {
        text = readFileSync(join(workspace, e.rel), 'utf8');
      } catch {
        text = '';
      }
      if (!DANGEROUS_GIT_CONFIG.test(text)) continue;
      move(e.rel, `git config that runs commands, ${why}`);
      continue;
    }
    move(e.rel, why);
  }
  return res;
}

/** Remove placeholder mountpoints bwrap created on the host, if still empty. */
export function removePlaceholders(paths: readonly { path: string; dir: boolean }[]): void {
  // Deepest first, so a created parent can go after its child.
  for (const p of [...paths].sort((a, b) => b.path.length - a.path.length)) {
    try {
      const st = lstatSync(p.path);
      if (p.dir && st.isDirectory()) rmdirSync(p.path); // fails (ENOTEMPTY) if something is inside: keep it
      else if (!p.dir && st.isFile() && st.size === 0) unlinkSync(p.path);
    } catch {
      // gone already, or not empty: leave it
    }
  }
}
