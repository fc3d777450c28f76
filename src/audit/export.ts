// `cordon audit export`: the log as JSON Lines, verifiable away from the host
// by anyone given the key.
//
//   {"seq":1,"ts":"...","session":"...","type":"...","data":{...},"prev":"...","mac":"..."}
//   ...
//   {"cordonAuditExport":1,"filter":{...},"head":{"seq":N,"mac":"..."},"records":K,"mac":"..."}
//
// Record lines carry the stored fields byte for byte, so each record's MAC and
// (between consecutive seqs) its chain link still verify. The trailer plays the
// head row's part: its MAC covers the filter, the store's head at export time,
// the count and every record MAC in order, so dropping, reordering or cutting
// off lines shows even in a filtered export, where the chain has holes.

import { createHmac, type Hmac } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import type { DatabaseSync } from 'node:sqlite';
import { CordonError } from '../errors.ts';
import { canonicalJson, isMac, macEqual } from './chain.ts';
import { type Candidate, ChainChecker, type VerifyResult } from './check.ts';
import { auditPaths, readKey } from './key.ts';
import { type AuditFilter, COLUMNS, type Row, isPlainObject, openDatabase, whereClause } from './schema.ts';

const EXPORT_TAG = 'cordon.audit.export/1\n';

interface Trailer {
  cordonAuditExport: 1;
  filter: AuditFilter;
  head: { seq: number; mac: string } | null;
  records: number;
}

function trailerMac(h: Hmac, t: Trailer): string {
  return h.update(canonicalJson(t)).digest('hex');
}

function cleanFilter(f: AuditFilter): AuditFilter {
  const out: AuditFilter = {};
  if (f.afterSeq !== undefined) out.afterSeq = f.afterSeq;
  if (f.session !== undefined) out.session = f.session;
  if (f.type !== undefined) out.type = f.type;
  return out;
}

/** Write the records matching `filter` (as of one snapshot) to `out`, then the trailer. Does not end `out`. */
export async function exportJsonl(stateDir: string, out: NodeJS.WritableStream, filter: AuditFilter = {}): Promise<{ records: number }> {
  const paths = auditPaths(stateDir);
  const key = readKey(paths.key);
  if (!existsSync(paths.db)) {
    throw new CordonError('CORDON_AUDIT_UNAVAILABLE', `there is no audit log in ${stateDir}`, { detail: { file: paths.db } });
  }
  const f = cleanFilter(filter);
  let db: DatabaseSync | undefined;
  try {
    db = openDatabase(paths.db, true);
    db.exec('BEGIN');
    const headRow = db.prepare('SELECT seq, mac FROM head WHERE id = 0').get();
    const head = headRow && typeof headRow.seq === 'number' && typeof headRow.mac === 'string' ? { seq: headRow.seq, mac: headRow.mac } : null;
    const { sql, params } = whereClause(f);
    const rows = db.prepare(`SELECT ${COLUMNS} FROM records${sql} ORDER BY seq`).iterate(...params);
    const h = createHmac('sha256', key).update(EXPORT_TAG);
    let n = 0;
    for (const row of rows) {
      h.update(`${String(row.mac)}\n`);
      n++;
      if (!out.write(`${recordLine(row)}\n`)) await once(out, 'drain');
    }
    const trailer: Trailer = { cordonAuditExport: 1, filter: f, head, records: n };
    if (!out.write(`${JSON.stringify({ ...trailer, mac: trailerMac(h, trailer) })}\n`)) await once(out, 'drain');
    return { records: n };
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'ERR_SQLITE_ERROR') throw e;
    throw new CordonError('CORDON_AUDIT_UNAVAILABLE', `cannot read the audit log ${paths.db}: ${(e as Error).message}`, {
      hint: 'run `cordon audit verify`',
      detail: { file: paths.db },
      cause: e,
    });
  } finally {
    if (db?.isOpen) db.close();
  }
}

/** One record as a JSON line; `data` is the stored canonical text, verbatim. */
function recordLine(row: Row): string {
  const s = JSON.stringify;
  return `{"seq":${s(row.seq)},"ts":${s(row.ts)},"session":${s(row.session)},"type":${s(row.type)},"data":${String(row.data)},"prev":${s(row.prev)},"mac":${s(row.mac)}}`;
}

function isTrailer(v: unknown): v is Trailer & { mac: unknown } {
  return isPlainObject(v) && v.cordonAuditExport === 1;
}

/** Verify an export made by exportJsonl with the log's key. */
export function verifyJsonl(text: string, key: Buffer): VerifyResult {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const parsed = lines.map((line): unknown => {
    try {
      return JSON.parse(line);
    } catch {
      return undefined;
    }
  });
  const last = parsed.at(-1);
  const trailer = isTrailer(last) ? last : null;
  const body = trailer !== null ? parsed.slice(0, -1) : parsed;
  const filter: AuditFilter = trailer !== null && isPlainObject(trailer.filter) ? trailer.filter : {};
  const complete = trailer !== null && filter.session === undefined && filter.type === undefined;
  const afterSeq = Number.isSafeInteger(filter.afterSeq) ? (filter.afterSeq as number) : 0;
  // Unfiltered: a contiguous run from afterSeq+1. Filtered: increasing seqs, each MAC.
  const checker = new ChainChecker(key, complete ? afterSeq + 1 : null);
  if (trailer === null) checker.add({ seq: null, kind: 'truncated', message: 'the export has no trailer line: it was cut short' });

  const h = createHmac('sha256', key).update(EXPORT_TAG);
  body.forEach((v, i) => {
    if (!isPlainObject(v) || isTrailer(v)) {
      checker.notARecord(`line ${i + 1} is not a record`);
      return;
    }
    h.update(`${String(v.mac)}\n`);
    checker.record(candidate(v));
  });
  const trailerOk =
    trailer !== null &&
    isMac(trailer.mac) &&
    macEqual(trailer.mac, trailerMac(h, { cordonAuditExport: 1, filter: trailer.filter, head: trailer.head, records: trailer.records }));
  checker.finish(trailerOk);

  const head = trailer !== null && isPlainObject(trailer.head) ? trailer.head : null;
  if (trailer !== null && !checker.keyMismatch) {
    if (!trailerOk) {
      checker.add({ seq: null, kind: 'head', message: 'the trailer does not verify: lines were added, removed, reordered or the trailer was edited' });
    }
    if (trailer.records !== body.length) {
      checker.add({ seq: null, kind: 'truncated', message: `the trailer counts ${String(trailer.records)} records, the export has ${body.length}` });
    }
    const lastSeq = checker.last?.seq ?? afterSeq;
    if (complete && head !== null && typeof head.seq === 'number' && head.seq > lastSeq) {
      checker.add({ seq: lastSeq + 1, kind: 'truncated', message: `the export stops at record ${lastSeq}, the log's head was ${head.seq}` });
    }
  }
  return checker.result(head !== null && typeof head.seq === 'number' ? head.seq : null);
}

function candidate(v: Record<string, unknown>): Candidate {
  let data: string | null = null;
  if (isPlainObject(v.data)) {
    try {
      data = canonicalJson(v.data);
    } catch {
      data = null;
    }
  }
  return { seq: v.seq, ts: v.ts, session: v.session, type: v.type, data, prev: v.prev, mac: v.mac };
}
