// The SQLite layout of audit.db and the queries shared by the store, the
// verifier and the exporter.
//
//   records  one row per record; seq is the rowid, so "seq > ?" is a range scan
//   head     exactly one row: the last seq, its MAC, and a MAC over both. It is
//            written in the same transaction as each record, so deleting records
//            from the end (or the head row) shows.
//
// The triggers only stop accidents through cordon's own connection; anyone
// with write access to the file can drop them. Tampering is caught by the MACs.

import { DatabaseSync, type SQLOutputValue } from 'node:sqlite';
import { CordonError } from '../errors.ts';
import type { AuditRecord } from './chain.ts';

export const SCHEMA_VERSION = 1;

/** How long anyone waits for another process's transaction before giving up. */
export const BUSY_TIMEOUT_MS = 10_000;

// SQLite's own busy handler backs off to 100 ms sleeps, so a writer waiting on a
// process that appends in a loop polls rarely and loses nearly every race
// (measured: median 80 ms, worst 730 ms per append). Writers therefore use a
// short SQLite timeout and poll again themselves (retryBusy), about every
// millisecond with jitter; readers keep the long timeout.
const WRITER_SQLITE_TIMEOUT_MS = 2;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS records (
  seq     INTEGER PRIMARY KEY,
  ts      TEXT NOT NULL,
  session TEXT NOT NULL,
  type    TEXT NOT NULL,
  data    TEXT NOT NULL,
  prev    TEXT NOT NULL,
  mac     TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS head (
  id       INTEGER PRIMARY KEY CHECK (id = 0),
  seq      INTEGER NOT NULL,
  mac      TEXT NOT NULL,
  head_mac TEXT NOT NULL
) STRICT;
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
  BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
  BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
`;

export const COLUMNS = 'seq, ts, session, type, data, prev, mac';

export type Row = Record<string, SQLOutputValue>;

export interface AuditFilter {
  session?: string;
  type?: string;
  /** Only records with seq greater than this (a poller passes the last seq it saw). */
  afterSeq?: number;
}

export function openDatabase(file: string, readOnly: boolean): DatabaseSync {
  return new DatabaseSync(file, { readOnly, timeout: readOnly ? BUSY_TIMEOUT_MS : WRITER_SQLITE_TIMEOUT_MS });
}

const SQLITE_BUSY = 5;

function isBusy(e: unknown): boolean {
  const code = (e as { errcode?: unknown } | null)?.errcode;
  return typeof code === 'number' && (code & 0xff) === SQLITE_BUSY;
}

/** Run fn, again and again while SQLite reports SQLITE_BUSY, for up to BUSY_TIMEOUT_MS. fn must be safe to repeat. */
export function retryBusy<T>(fn: () => T): T {
  const deadline = performance.now() + BUSY_TIMEOUT_MS;
  let nap: Int32Array | undefined;
  for (;;) {
    try {
      return fn();
    } catch (e) {
      if (!isBusy(e) || performance.now() > deadline) throw e;
      nap ??= new Int32Array(new SharedArrayBuffer(4));
      Atomics.wait(nap, 0, 0, Math.random()); // up to 1 ms, so waiters do not move in lockstep
    }
  }
}

export function userVersion(db: DatabaseSync): number {
  return Number(db.prepare('PRAGMA user_version').get()?.user_version ?? 0);
}

/** A WHERE clause (possibly empty) and its parameters for a filter. */
export function whereClause(filter: AuditFilter): { sql: string; params: (string | number)[] } {
  const terms: string[] = [];
  const params: (string | number)[] = [];
  if (filter.afterSeq !== undefined) {
    if (!Number.isSafeInteger(filter.afterSeq)) throw new CordonError('CORDON_INTERNAL', 'afterSeq must be an integer');
    terms.push('seq > ?');
    params.push(filter.afterSeq);
  }
  if (filter.session !== undefined) {
    terms.push('session = ?');
    params.push(filter.session);
  }
  if (filter.type !== undefined) {
    terms.push('type = ?');
    params.push(filter.type);
  }
  return { sql: terms.length === 0 ? '' : ` WHERE ${terms.join(' AND ')}`, params };
}

/** A row read back for display or iteration. Throws CORDON_AUDIT_TAMPERED if it is malformed. */
export function rowToRecord(row: Row): AuditRecord {
  const { seq, ts, session, type, data, prev, mac } = row;
  let parsed: unknown;
  try {
    parsed = typeof data === 'string' ? JSON.parse(data) : undefined;
  } catch {
    parsed = undefined;
  }
  if (
    typeof seq !== 'number' ||
    typeof ts !== 'string' ||
    typeof session !== 'string' ||
    typeof type !== 'string' ||
    typeof prev !== 'string' ||
    typeof mac !== 'string' ||
    !isPlainObject(parsed)
  ) {
    throw new CordonError('CORDON_AUDIT_TAMPERED', `audit record ${String(seq)} is malformed`, {
      hint: 'run `cordon audit verify`',
      detail: { seq: typeof seq === 'number' ? seq : null },
    });
  }
  return { seq, ts, session, type, data: parsed, prev, mac };
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
