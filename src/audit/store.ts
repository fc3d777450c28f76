// The writer. One AuditStore per session (or per command); any number of them,
// in any number of processes, may append to the same audit.db at once.
// Each append is one `BEGIN IMMEDIATE` transaction: take the write lock, read
// the head row, insert the record, rewrite the head, commit. Holding the write
// lock from the read of the head to the commit keeps the chain linear; SQLite's
// atomic commit means a crash at any point leaves either the whole append or
// none of it.

import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { CordonError, isCordonError } from '../errors.ts';
import { type AuditRecord, GENESIS, canonicalJson, headMac, macEqual, recordMac } from './chain.ts';
import { type AuditPaths, auditPaths, createPrivateFile, ensureStateDir, readKey, readOrCreateKey } from './key.ts';
import { type JsonValue, type Redactor, findSecretFields, redactStrings } from './redact.ts';
import {
  type AuditFilter,
  COLUMNS,
  type Row,
  SCHEMA,
  SCHEMA_VERSION,
  isPlainObject,
  openDatabase,
  retryBusy,
  rowToRecord,
  userVersion,
  whereClause,
} from './schema.ts';

/** Session ids and record types: short, printable, no spaces. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/;

/** Upper bound on a record's serialized data; the log is for decisions, not payloads. */
export const MAX_DATA_CHARS = 256 * 1024;

interface Statements {
  head: StatementSync;
  anyRecord: StatementSync;
  insert: StatementSync;
  setHead: StatementSync;
}

function tampered(message: string, detail: Record<string, unknown> = {}): CordonError {
  return new CordonError('CORDON_AUDIT_TAMPERED', message, {
    hint: 'run `cordon audit verify`; to start a new log, move audit.db aside (keep it as evidence)',
    detail,
  });
}

export class AuditStore {
  readonly #db: DatabaseSync;
  readonly #key: Buffer;
  readonly #stmts: Statements;
  readonly #redactors: Redactor[] = [];

  private constructor(db: DatabaseSync, key: Buffer) {
    this.#db = db;
    this.#key = key;
    this.#stmts = {
      head: db.prepare('SELECT seq, mac, head_mac FROM head WHERE id = 0'),
      anyRecord: db.prepare('SELECT 1 AS one FROM records LIMIT 1'),
      insert: db.prepare(`INSERT INTO records (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`),
      setHead: db.prepare(
        'INSERT INTO head (id, seq, mac, head_mac) VALUES (0, ?, ?, ?) ' +
          'ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, mac = excluded.mac, head_mac = excluded.head_mac',
      ),
    };
  }

  /**
   * Open (creating on first use) <stateDir>/audit.db and its key. Throws
   * CORDON_AUDIT_UNAVAILABLE if the directory, key or database cannot be used.
   */
  static open(stateDir: string): AuditStore {
    const paths = auditPaths(stateDir);
    ensureStateDir(paths.dir);
    let db: DatabaseSync | undefined;
    try {
      createPrivateFile(paths.db);
      const conn = openDatabase(paths.db, false);
      db = conn;
      return retryBusy(() => AuditStore.#setUp(conn, paths));
    } catch (e) {
      db?.close();
      if (isCordonError(e)) throw e;
      throw new CordonError('CORDON_AUDIT_UNAVAILABLE', `cannot open the audit log ${paths.db}: ${(e as Error).message}`, {
        hint: 'check that the state directory is writable and audit.db is a cordon audit log',
        detail: { file: paths.db },
        cause: e,
      });
    }
  }

  static #setUp(db: DatabaseSync, paths: AuditPaths): AuditStore {
    db.exec('PRAGMA synchronous = NORMAL');
    const version = userVersion(db);
    if (version > SCHEMA_VERSION) {
      throw new CordonError('CORDON_AUDIT_UNAVAILABLE', `${paths.db} was written by a newer cordon (schema ${version})`, {
        hint: 'upgrade cordon',
        detail: { file: paths.db },
      });
    }
    if (version === SCHEMA_VERSION) return new AuditStore(db, readKey(paths.key));
    // A new log (or one whose creation never committed): key, schema and the
    // first record, so that "the log is empty" is never a valid state.
    const key = readOrCreateKey(paths);
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('BEGIN IMMEDIATE');
    try {
      if (userVersion(db) === 0) db.exec(`${SCHEMA}\nPRAGMA user_version = ${SCHEMA_VERSION};`);
      const store = new AuditStore(db, key);
      if (store.#stmts.head.get() === undefined && store.#stmts.anyRecord.get() === undefined) {
        store.#insert('cordon', 'audit.init', canonicalJson({ schema: SCHEMA_VERSION }));
      }
      db.exec('COMMIT');
      return store;
    } catch (e) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw e;
    }
  }

  /**
   * Register a function applied to every string of every later record's data
   * (keys and values) before it is written. The credential broker registers one
   * that replaces the secret values it knows with "[redacted]".
   */
  addRedactor(fn: Redactor): void {
    this.#redactors.push(fn);
  }

  /**
   * Append one record and return it as stored. `data` is redacted first; data
   * that still has a secret-named field holding a value is refused: an
   * "audit.rejected" record naming the fields is written instead and
   * CORDON_SECRET is thrown. Throws CORDON_AUDIT_TAMPERED if the head row does
   * not verify, CORDON_AUDIT_UNAVAILABLE if the database cannot be written.
   */
  append(session: string, type: string, data: Record<string, unknown> = {}): AuditRecord {
    for (const [what, v] of [['session', session], ['type', type]] as const) {
      if (typeof v !== 'string' || !NAME.test(v)) {
        throw new CordonError('CORDON_INTERNAL', `invalid audit ${what} ${JSON.stringify(String(v).slice(0, 40))}`);
      }
    }
    if (!isPlainObject(data)) throw new CordonError('CORDON_INTERNAL', 'audit data must be an object');
    let tree: JsonValue;
    try {
      tree = redactStrings(JSON.parse(canonicalJson(data)) as JsonValue, this.#redactors);
    } catch (e) {
      throw new CordonError('CORDON_INTERNAL', `audit data for ${type} cannot be recorded: ${(e as Error).message}`, { cause: e });
    }
    if (!isPlainObject(tree)) throw new CordonError('CORDON_INTERNAL', `audit data for ${type} must serialize to a JSON object`);
    const fields = findSecretFields(tree);
    if (fields.length > 0) {
      this.#write(session, 'audit.rejected', canonicalJson({ type, fields }));
      throw new CordonError('CORDON_SECRET', `refused to log ${type}: field(s) ${fields.join(', ')} look like secrets`, {
        hint: 'redact the value ("[redacted]") or register a redactor',
        detail: { type, fields },
      });
    }
    const json = canonicalJson(tree);
    if (json.length > MAX_DATA_CHARS) {
      throw new CordonError('CORDON_INTERNAL', `audit data for ${type} is too large (${json.length} > ${MAX_DATA_CHARS} chars)`);
    }
    const { seq, ts, prev, mac } = this.#write(session, type, json);
    return { seq, ts, session, type, data: tree as Record<string, unknown>, prev, mac };
  }

  /** The last n records (oldest first) matching the filter. */
  tail(n: number, filter: Omit<AuditFilter, 'afterSeq'> = {}): AuditRecord[] {
    if (!Number.isSafeInteger(n) || n < 0) throw new CordonError('CORDON_INTERNAL', 'tail(n): n must be a non-negative integer');
    const { sql, params } = whereClause({ session: filter.session, type: filter.type });
    const rows = this.#db.prepare(`SELECT ${COLUMNS} FROM records${sql} ORDER BY seq DESC LIMIT ?`).all(...params, n);
    return rows.map(rowToRecord).reverse();
  }

  /**
   * Records in seq order. With `afterSeq` this is a rowid range scan, so a
   * poller that remembers the last seq it saw pays only for what is new.
   */
  *records(filter: AuditFilter = {}): Generator<AuditRecord, void, undefined> {
    const { sql, params } = whereClause(filter);
    for (const row of this.#db.prepare(`SELECT ${COLUMNS} FROM records${sql} ORDER BY seq`).iterate(...params)) {
      yield rowToRecord(row);
    }
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  /** One append in its own write transaction. */
  #write(session: string, type: string, json: string): Omit<AuditRecord, 'data'> {
    const db = this.#db;
    try {
      retryBusy(() => db.exec('BEGIN IMMEDIATE'));
      const record = this.#insert(session, type, json);
      db.exec('COMMIT');
      return record;
    } catch (e) {
      if (db.isOpen && db.isTransaction) db.exec('ROLLBACK');
      if (isCordonError(e)) throw e;
      throw new CordonError('CORDON_AUDIT_UNAVAILABLE', `cannot write to the audit log: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Insert a record after the head and move the head. Caller holds the write transaction. */
  #insert(session: string, type: string, json: string): Omit<AuditRecord, 'data'> {
    const head = this.#stmts.head.get() as Row | undefined;
    let seq = 1;
    let prev = GENESIS;
    if (head === undefined) {
      if (this.#stmts.anyRecord.get() !== undefined) throw tampered('the audit log has records but no head row');
    } else {
      if (typeof head.seq !== 'number' || typeof head.mac !== 'string' || !macEqual(head.head_mac, headMac(this.#key, head.seq, head.mac))) {
        throw tampered('the head row of the audit log does not verify', { headSeq: head.seq });
      }
      seq = head.seq + 1;
      prev = head.mac;
    }
    const ts = new Date().toISOString();
    const mac = recordMac(this.#key, { seq, ts, session, type, data: json, prev });
    try {
      this.#stmts.insert.run(seq, ts, session, type, json, prev, mac);
    } catch (e) {
      if ((e as { errcode?: number }).errcode === 1555) throw tampered(`record ${seq} already exists: the head row is behind the log`, { seq });
      throw e;
    }
    this.#stmts.setHead.run(seq, mac, headMac(this.#key, seq, mac));
    return { seq, ts, session, type, prev, mac };
  }
}
