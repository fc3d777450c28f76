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

import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmdirSync, statSync, unlinkSync, type Stats } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { PROTECTED_IN_WORKSPACE, protectedPatternMatches } from '../policy/invariants.ts';

export interface ProtectedEntry {
  /** Absolute real path of the protected item. */
  path: string;
  /** Relative to the workspace. */
  rel: string;
  type: 'file' | 'dir' | 'symlink';
  /**
   * Identity for the sweep: inode and birth time (ctime where the filesystem
   * has no birth time). A freed inode number is handed out again at once, so
   * the number alone does not tell a file made again from the same file.
   */
  stamp: string;
  /** sha256 of a regular file's content (up to DIGEST_LIMIT bytes), to tell a file made again with the same content. */
  digest?: string;
  /** A git config file's lines that make host git run something. */
  dangerous?: string[];
}

const DIGEST_LIMIT = 1 << 20;

function digestOf(path: string, st: Stats): string | undefined {
  if (!st.isFile() || st.size > DIGEST_LIMIT) return undefined;
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return undefined;
  }
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
  return `${st.ino}:${st.birthtimeMs > 0 ? `b${st.birthtimeMs}` : `c${st.ctimeMs}`}`;
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

  // Never throws: the workspace is the agent's to shape (a file where a
  // directory was expected, a directory nobody may read), and the sweep after
  // a session must still run to its end. What cannot be examined is listed as
  // an 'unreadable' entry, which the sweep reports.
  const consider = (abs: string, rel: string) => {
    if (seen.has(abs)) return;
    let st: Stats | undefined;
    try {
      st = lstatSync(abs, { throwIfNoEntry: false });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR' || code === 'ENOENT') return; // a parent is not a directory: nothing can be there
      seen.add(abs);
      out.existing.push({ path: abs, rel, type: 'file', stamp: `unreadable:${code ?? 'error'}` });
      return;
    }
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
      let tst: Stats;
      try {
        tst = statSync(target);
      } catch (e) {
        out.existing.push({ path: abs, rel, type: 'symlink', stamp: `unreadable:${(e as NodeJS.ErrnoException).code ?? 'error'}` });
        return;
      }
      out.existing.push({ path: target, rel, type: tst.isDirectory() ? 'dir' : 'file', stamp: stampOf(tst), digest: digestOf(target, tst) });
      return;
    }
    const entry: ProtectedEntry = { path: abs, rel, type: st.isDirectory() ? 'dir' : 'file', stamp: stampOf(st), digest: digestOf(abs, st) };
    if (st.isFile() && isGitConfig(rel)) entry.dangerous = dangerousLines(readText(abs));
    out.existing.push(entry);
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

/** git config keys that make host git run something (one line). */
const DANGEROUS_GIT_CONFIG = /^\s*(hookspath|fsmonitor|sshcommand|pager|editor|askpass|gitproxy|textconv|clean|smudge|process|command|helper|path|program|cmd)\s*=|^\s*\[\s*(include|includeif|filter|credential|alias)\b/i;

/** The lines of a git config that make host git run something, normalised. */
function dangerousLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .filter((l) => DANGEROUS_GIT_CONFIG.test(l))
    .map((l) => l.trim().replace(/\s+/g, ' ').toLowerCase());
}

const isGitConfig = (rel: string) => rel.split('/').includes('.git') && ['config', 'config.worktree'].includes(rel.split('/').pop()!);

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

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
    if (e.stamp.startsWith('unreadable:')) {
      res.failed.push({ rel: e.rel, error: `cannot be examined (${e.stamp.slice(11)}): check it by hand` });
      continue;
    }
    // Same type and identity: the sandbox had it read-only throughout. A new
    // identity means it was removed and made again: once the host side
    // removed it, the read-only mount over it was gone, and the agent may be
    // the one that made it again - unless it is back with the same content (a
    // branch switched away and back).
    if (was?.type === e.type && was.stamp === e.stamp) continue;
    if (was?.type === e.type && was.digest !== undefined && was.digest === e.digest) continue;
    if (stillPlaceholder(e.rel)) continue;
    const why =
      was === undefined
        ? 'created during the session'
        : was.type !== e.type
          ? `changed from ${was.type} to ${e.type} during the session`
          : 'removed and made again during the session with other content (its read-only mount was gone in between)';
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
      // Only what runs commands matters: a config rewritten on the host (git config, git push -u)
      // that adds no such line stays, even if it had some before.
      const added = dangerousLines(text).filter((l) => !(was?.dangerous ?? []).includes(l));
      if (added.length === 0) continue;
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
