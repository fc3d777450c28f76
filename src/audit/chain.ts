// The chain itself, with no I/O: what a record is, how it is encoded for the
// MAC, and the two MACs (per record, and over the head row).
//
// Encoding. A record's MAC covers
//   ["cordon.audit.record/1", seq, ts, session, type, data, prev]
// written as canonical JSON: object keys sorted by UTF-16 code units, no
// whitespace, strings and numbers as JSON.stringify writes them (the same
// rules as RFC 8785 for the values we store). The leading tag separates record
// MACs from head MACs and from any later version of the format.

import { createHmac, timingSafeEqual } from 'node:crypto';

export interface AuditRecord {
  /** 1, 2, 3 ... with no gaps; the order of the log. */
  seq: number;
  /** When the record was written: ISO 8601, UTC, milliseconds. */
  ts: string;
  session: string;
  /** Dotted event name, e.g. "session.start", "proxy.flow". */
  type: string;
  /** Event details after redaction. Never holds secret values. */
  data: Record<string, unknown>;
  /** `mac` of the previous record, GENESIS for seq 1. */
  prev: string;
  /** HMAC-SHA256 (hex) of the record's canonical encoding. */
  mac: string;
}

/** The `prev` of the first record. */
export const GENESIS = '0'.repeat(64);

const RECORD_TAG = 'cordon.audit.record/1';
const HEAD_TAG = 'cordon.audit.head/1';

const HEX_MAC = /^[0-9a-f]{64}$/;

export function isMac(v: unknown): v is string {
  return typeof v === 'string' && HEX_MAC.test(v);
}

/**
 * Canonical JSON of any JSON-like value. Follows JSON.stringify for what is
 * representable (toJSON is honoured, undefined/functions are dropped from
 * objects and become null in arrays, NaN and Infinity become null) but sorts
 * object keys. Throws TypeError on bigint and on cycles.
 */
export function canonicalJson(value: unknown): string {
  const out = write(value, '', new Set());
  if (out === undefined) throw new TypeError('value has no JSON representation');
  return out;
}

function write(value: unknown, key: string, ancestors: Set<object>): string | undefined {
  if (typeof value === 'object' && value !== null) {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') value = toJSON.call(value, key);
    if (value instanceof Number || value instanceof String || value instanceof Boolean) value = value.valueOf();
  }
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      throw new TypeError('bigint has no JSON representation');
    case 'object': {
      if (value === null) return 'null';
      if (ancestors.has(value)) throw new TypeError('cyclic value has no JSON representation');
      ancestors.add(value);
      try {
        if (Array.isArray(value)) {
          return `[${value.map((v, i) => write(v, String(i), ancestors) ?? 'null').join(',')}]`;
        }
        const obj = value as Record<string, unknown>;
        const parts: string[] = [];
        for (const k of Object.keys(obj).sort()) {
          const v = write(obj[k], k, ancestors);
          if (v !== undefined) parts.push(`${JSON.stringify(k)}:${v}`);
        }
        return `{${parts.join(',')}}`;
      } finally {
        ancestors.delete(value);
      }
    }
    default:
      return undefined; // undefined, function, symbol
  }
}

/** What a record MAC covers. `data` is the canonical JSON text of the data object. */
export interface MacFields {
  seq: number;
  ts: string;
  session: string;
  type: string;
  data: string;
  prev: string;
}

/**
 * The exact bytes a record MAC covers. Equal to canonicalJson([tag, seq, ts,
 * session, type, JSON.parse(data), prev]) when `data` is canonical, which is
 * how the store writes it; built by concatenation so the data is not encoded twice.
 */
export function recordMacInput(f: MacFields): string {
  const s = JSON.stringify;
  return `[${s(RECORD_TAG)},${f.seq},${s(f.ts)},${s(f.session)},${s(f.type)},${f.data},${s(f.prev)}]`;
}

export function recordMac(key: Buffer, f: MacFields): string {
  return createHmac('sha256', key).update(recordMacInput(f)).digest('hex');
}

/** MAC of the head row: binds the last seq to the last record's MAC. */
export function headMac(key: Buffer, seq: number, mac: string): string {
  return createHmac('sha256', key).update(canonicalJson([HEAD_TAG, seq, mac])).digest('hex');
}

/** Constant-time comparison of two MAC strings. */
export function macEqual(a: unknown, b: string): boolean {
  if (typeof a !== 'string' || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}
