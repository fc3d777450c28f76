// `cordon audit verify`: read the whole of audit.db and the key, change
// nothing, and list every inconsistency. Never throws for a damaged log; a
// damaged log is a result.
//
// What it can't see: a log replaced wholesale by an older copy of itself (with
// its head row), or deleted together with its key. Catching those needs the
// head anchored outside the state directory.

import { existsSync } from 'node:fs';
import type { DatabaseSync } from 'node:sqlite';
import { headMac, isMac, macEqual } from './chain.ts';
import { type Candidate, ChainChecker, type VerifyResult } from './check.ts';
import { auditPaths, readKey } from './key.ts';
import { COLUMNS, type Row, isPlainObject, openDatabase } from './schema.ts';

export function verifyAudit(stateDir: string): VerifyResult {
  const paths = auditPaths(stateDir);
  const keyExists = existsSync(paths.key);
  let key: Buffer | null = null;
  let keyProblem: string | null = null;
  try {
    key = readKey(paths.key);
  } catch (e) {
    keyProblem = `${(e as Error).message}; MACs not checked`;
  }
  const checker = new ChainChecker(key, 1);

  if (!existsSync(paths.db)) {
    // audit.db is created before the key, so a key without a database means deletion.
    if (keyExists) checker.add({ seq: null, kind: 'truncated', message: 'audit.db is missing but audit.key exists: the log was deleted' });
    return checker.result(null);
  }

  let db: DatabaseSync | undefined;
  let headSeq: number | null = null;
  try {
    db = openDatabase(paths.db, true);
    db.exec('BEGIN'); // one snapshot: appends by running sessions don't race the walk
    const tables = new Set(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((t) => t.name));
    if (tables.size === 0) {
      // Never initialised: a first open died before its first commit. Nothing was logged.
      if (keyExists && keyProblem !== null) checker.add({ seq: null, kind: 'key', message: keyProblem });
      return checker.result(null);
    }
    if (keyProblem !== null) checker.add({ seq: null, kind: 'key', message: keyProblem });
    for (const t of ['records', 'head']) {
      if (!tables.has(t)) checker.add({ seq: null, kind: 'schema', message: `table ${t} is missing` });
    }
    if (tables.has('records')) {
      for (const row of db.prepare(`SELECT ${COLUMNS} FROM records ORDER BY seq`).iterate()) checker.record(candidate(row));
    }
    const heads = tables.has('head') ? db.prepare('SELECT seq, mac, head_mac FROM head').all() : [];
    checker.finish(key !== null && heads.length === 1 && headVerifies(heads[0]!, key));
    if (tables.has('head')) headSeq = checkHead(checker, heads, key);
    // The tables are created in the same transaction as the audit.init record.
    if (checker.records === 0) checker.add({ seq: null, kind: 'truncated', message: 'the log has no records, not even audit.init: records were deleted' });
  } catch (e) {
    checker.add({ seq: null, kind: 'schema', message: `audit.db cannot be read: ${(e as Error).message}` });
  } finally {
    if (db?.isOpen) db.close(); // closing ends the read transaction
  }
  return checker.result(headSeq);
}

function candidate(row: Row): Candidate {
  let data: string | null = null;
  if (typeof row.data === 'string') {
    try {
      // The MAC covers the stored text exactly; parsing only checks its shape.
      if (isPlainObject(JSON.parse(row.data))) data = row.data;
    } catch {
      data = null;
    }
  }
  return { seq: row.seq, ts: row.ts, session: row.session, type: row.type, data, prev: row.prev, mac: row.mac };
}

function headVerifies(row: Row, key: Buffer): boolean {
  return Number.isSafeInteger(row.seq) && isMac(row.mac) && macEqual(row.head_mac, headMac(key, row.seq as number, row.mac));
}

/** Compare the head row with the last record; returns the head's seq. */
function checkHead(checker: ChainChecker, rows: Row[], key: Buffer | null): number | null {
  const last = checker.last;
  if (rows.length === 0) {
    if (last !== null) checker.add({ seq: null, kind: 'head', message: 'the head row is missing' });
    return null;
  }
  if (rows.length > 1) checker.add({ seq: null, kind: 'head', message: `${rows.length} head rows instead of one` });
  const { seq, mac, head_mac: hmac } = rows[0]!;
  if (!Number.isSafeInteger(seq) || !isMac(mac) || !isMac(hmac)) {
    checker.add({ seq: null, kind: 'head', message: 'the head row is malformed' });
    return null;
  }
  const headSeq = seq as number;
  if (key !== null && !checker.keyMismatch && !headVerifies(rows[0]!, key)) {
    checker.add({ seq: headSeq, kind: 'head', message: `the head row (seq ${headSeq}) does not verify: it was rewritten` });
    return headSeq;
  }
  const lastSeq = last?.seq ?? 0;
  if (headSeq > lastSeq) {
    const missing = headSeq === lastSeq + 1 ? `record ${headSeq} is` : `records ${lastSeq + 1}..${headSeq} are`;
    checker.add({ seq: lastSeq + 1, kind: 'truncated', message: `${missing} missing from the end of the log` });
  } else if (headSeq < lastSeq) {
    checker.add({ seq: headSeq, kind: 'head', message: `the head row points at record ${headSeq} but the log goes on to ${lastSeq}` });
  } else if (last !== null && !macEqual(mac, last.mac)) {
    checker.add({ seq: headSeq, kind: 'head', message: `the head row does not match record ${headSeq}` });
  }
  return headSeq;
}
