// Trust for workspace policy files. A workspace may carry `.cordon/policy.yaml`,
// but it is ignored until the user trusts that exact content (by sha256) with
// `cordon trust`. Any edit to the file voids the trust. Even trusted, a
// workspace policy can only narrow the host policy (merge.ts).

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const WORKSPACE_POLICY = '.cordon/policy.yaml';

export interface TrustEntry {
  workspace: string;
  sha256: string;
  trustedAt: string;
}

interface TrustFile {
  version: 1;
  entries: TrustEntry[];
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export class TrustStore {
  readonly file: string;
  constructor(stateDir: string) {
    this.file = join(stateDir, 'trust.json');
  }

  private read(): TrustFile {
    try {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as TrustFile;
      if (parsed.version === 1 && Array.isArray(parsed.entries)) return parsed;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    return { version: 1, entries: [] };
  }

  private write(t: TrustFile): void {
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(t, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, this.file);
  }

  isTrusted(workspace: string, hash: string): boolean {
    return this.read().entries.some((e) => e.workspace === workspace && e.sha256 === hash);
  }

  list(): TrustEntry[] {
    return this.read().entries;
  }

  trust(workspace: string, hash: string, now = new Date()): TrustEntry {
    const t = this.read();
    t.entries = t.entries.filter((e) => e.workspace !== workspace);
    const entry = { workspace, sha256: hash, trustedAt: now.toISOString() };
    t.entries.push(entry);
    this.write(t);
    return entry;
  }

  revoke(workspace: string): boolean {
    const t = this.read();
    const before = t.entries.length;
    t.entries = t.entries.filter((e) => e.workspace !== workspace);
    if (t.entries.length !== before) this.write(t);
    return t.entries.length !== before;
  }
}
