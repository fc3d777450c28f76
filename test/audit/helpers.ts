// Shared by the audit tests. Not a test itself (under a bare `node --test` it
// runs as an empty module).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { TestContext } from 'node:test';
import { AuditStore } from '../../src/audit/index.ts';
import type { AuditRecord, VerifyResult } from '../../src/audit/index.ts';

/** A state directory path that does not exist yet (open must create it), removed after the test. */
export function stateDir(t: TestContext): string {
  const base = mkdtempSync(join(tmpdir(), 'cordon-audit-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  return join(base, 'state');
}

/** A log holding audit.init plus `n` records (seq 2..n+1), closed again. */
export function filledLog(t: TestContext, n = 9): { dir: string; records: AuditRecord[] } {
  const dir = stateDir(t);
  const store = AuditStore.open(dir);
  const records: AuditRecord[] = [];
  for (let i = 0; i < n; i++) records.push(store.append(i % 2 ? 'sess-b' : 'sess-a', 'test.event', { i, note: `record ${i}` }));
  store.close();
  return { dir, records };
}

/** A second, raw connection to audit.db, as an attacker with file access would have (triggers dropped). */
export function attacker(dir: string): DatabaseSync {
  const db = new DatabaseSync(join(dir, 'audit.db'));
  db.exec('DROP TRIGGER IF EXISTS records_no_update; DROP TRIGGER IF EXISTS records_no_delete;');
  return db;
}

/** Problems as "kind@seq" strings, for compact assertions. */
export function summary(r: VerifyResult): string[] {
  return r.problems.map((p) => `${p.kind}@${p.seq ?? '-'}`);
}

export const CHILD = join(import.meta.dirname, 'fixtures', 'writer.ts');
