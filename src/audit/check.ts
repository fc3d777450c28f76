// Walking a sequence of records and saying what is wrong with it. Pure: the
// database verifier and the export verifier feed it records one at a time.
//
// Each record gets at most one of each check, and consequences are not
// reported twice: after a gap, or after a record that failed, the next
// record's `prev` link is not blamed again.

import { GENESIS, isMac, macEqual, recordMac } from './chain.ts';

export type ProblemKind =
  /** A record's MAC does not match its content: it was edited (or forged). */
  | 'mac'
  /** A record's `prev` is not the MAC of the record before it. */
  | 'chain'
  /** Records are missing between two others (or before the first). */
  | 'gap'
  /** A record is out of place: its seq goes backwards, or its content verifies at another seq. */
  | 'order'
  /** Records are missing from the end. */
  | 'truncated'
  /** The head row (or an export's trailer) is missing, does not verify, or disagrees with the last record. */
  | 'head'
  /** The key is missing or unusable, or no record verifies with it (the key was replaced). */
  | 'key'
  /** Something that is not a well-formed record or table. */
  | 'schema';

export interface Problem {
  seq: number | null;
  kind: ProblemKind;
  message: string;
}

export interface VerifyResult {
  ok: boolean;
  /** Records read. */
  records: number;
  /** seq recorded in the head row (or an export's trailer); null if there is none. */
  head: number | null;
  problems: Problem[];
  /** Problems found beyond the ones listed (the list is capped). */
  omitted: number;
}

/** A record as read from storage, not yet trusted. `data` is canonical JSON text, or null if it was not a JSON object. */
export interface Candidate {
  seq: unknown;
  ts: unknown;
  session: unknown;
  type: unknown;
  data: string | null;
  prev: unknown;
  mac: unknown;
}

export const MAX_PROBLEMS = 1000;
/** How far from its position a record's content is searched for when its MAC fails. */
const RELOCATE_WINDOW = 256;
const RELOCATE_ATTEMPTS = 64;

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

export class ChainChecker {
  readonly problems: Problem[] = [];
  omitted = 0;
  records = 0;
  /** The highest-seq record seen (its stored MAC). */
  last: { seq: number; mac: string } | null = null;
  /** After finish(): no record verified with the key, so the key is wrong. */
  keyMismatch = false;

  readonly #key: Buffer | null;
  readonly #firstSeq: number | null;
  // MAC failures are held apart: if none of the records verifies, they all
  // collapse into one 'key' problem instead of one problem per record.
  readonly #macProblems: Problem[] = [];
  #macOmitted = 0;
  #macOk = 0;
  #relocated = 0;
  #relocateAttempts = 0;
  #prevFlagged = false;

  /**
   * @param key null: check structure only.
   * @param firstSeq the seq the first record must have, with no gaps after it;
   *   null: seqs need only increase (a filtered export). The first record links
   *   to GENESIS when its seq is 1; otherwise its `prev` is taken on trust.
   */
  constructor(key: Buffer | null, firstSeq: number | null) {
    this.#key = key;
    this.#firstSeq = firstSeq;
  }

  add(p: Problem): void {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push(p);
    else this.omitted++;
  }

  /** Something in the input that is not a record at all. */
  notARecord(message: string): void {
    this.records++;
    this.#prevFlagged = true;
    this.add({ seq: null, kind: 'schema', message });
  }

  record(r: Candidate): void {
    this.records++;
    const malformed = schemaError(r);
    if (malformed !== null) {
      const seq = Number.isSafeInteger(r.seq) ? (r.seq as number) : null;
      this.add({ seq, kind: 'schema', message: malformed });
      if (seq !== null && (this.last === null || seq > this.last.seq)) this.last = { seq, mac: typeof r.mac === 'string' ? r.mac : '' };
      this.#prevFlagged = true;
      return;
    }
    const seq = r.seq as number;
    const mac = r.mac as string;
    let flagged = false;
    let linked: boolean; // whether `prev` can be checked against the record before
    const expected = this.last !== null ? this.last.seq + 1 : (this.#firstSeq ?? 1);

    if (this.last !== null && seq <= this.last.seq) {
      this.add({ seq, kind: 'order', message: `record ${seq} comes after record ${this.last.seq}` });
      flagged = true;
      linked = false;
    } else if (this.#firstSeq !== null && seq !== expected) {
      const missing = seq - 1 === expected ? `record ${expected} is` : `records ${expected}..${seq - 1} are`;
      this.add({ seq, kind: 'gap', message: `${missing} missing` });
      flagged = true;
      linked = false;
    } else {
      linked = seq === expected;
    }

    if (this.#key !== null) {
      if (macEqual(mac, recordMac(this.#key, fields(r, seq)))) {
        this.#macOk++;
      } else {
        flagged = true;
        const home = this.#relocate(r, seq, mac);
        if (home !== null) {
          this.#relocated++;
          this.add({ seq, kind: 'order', message: `record ${seq} holds the content of record ${home} (records were moved)` });
        } else if (this.#macProblems.length < MAX_PROBLEMS) {
          this.#macProblems.push({ seq, kind: 'mac', message: `record ${seq} does not match its MAC (edited or forged)` });
        } else {
          this.#macOmitted++;
        }
      }
    }

    // A record that failed its own checks, or follows one that did, is not blamed for the link as well.
    if (linked && !flagged && !this.#prevFlagged) {
      const want = this.last !== null ? this.last.mac : seq === 1 ? GENESIS : null;
      if (want !== null && !macEqual(r.prev, want)) {
        this.add({ seq, kind: 'chain', message: `record ${seq} does not link to record ${seq - 1}` });
        flagged = true;
      }
    }

    if (this.last === null || seq > this.last.seq) this.last = { seq, mac };
    this.#prevFlagged = flagged;
  }

  /**
   * Call once after the last record. `keyConfirmed`: something else (the head
   * row, an export's trailer) verified with the key, so failing records are
   * reported one by one even if none of them verifies.
   */
  finish(keyConfirmed: boolean): void {
    if (!keyConfirmed && this.#key !== null && this.#macOk === 0 && this.#relocated === 0 && this.#macProblems.length > 0) {
      this.keyMismatch = true;
      this.add({ seq: null, kind: 'key', message: 'no record verifies with this key: the key was replaced, or the log was forged' });
      return;
    }
    for (const p of this.#macProblems) this.add(p);
    this.omitted += this.#macOmitted;
    this.problems.sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity));
  }

  result(head: number | null): VerifyResult {
    return { ok: this.problems.length === 0 && this.omitted === 0, records: this.records, head, problems: this.problems, omitted: this.omitted };
  }

  /** The seq at which this content's MAC verifies, if it is near its current position. */
  #relocate(r: Candidate, seq: number, mac: string): number | null {
    if (this.#key === null || this.#relocateAttempts >= RELOCATE_ATTEMPTS) return null;
    this.#relocateAttempts++;
    for (let d = 1; d <= RELOCATE_WINDOW; d++) {
      for (const s of [seq - d, seq + d]) {
        if (s >= 1 && macEqual(mac, recordMac(this.#key, fields(r, s)))) return s;
      }
    }
    return null;
  }
}

function fields(r: Candidate, seq: number) {
  return { seq, ts: r.ts as string, session: r.session as string, type: r.type as string, data: r.data as string, prev: r.prev as string };
}

function schemaError(r: Candidate): string | null {
  const at = `record ${String(r.seq)}`;
  if (!Number.isSafeInteger(r.seq) || (r.seq as number) < 1) return `record with an invalid seq ${JSON.stringify(r.seq) ?? 'undefined'}`;
  if (typeof r.ts !== 'string' || !ISO_MS.test(r.ts)) return `${at} has an invalid timestamp`;
  if (typeof r.session !== 'string' || typeof r.type !== 'string') return `${at} has an invalid session or type`;
  if (r.data === null) return `${at} has data that is not a JSON object`;
  if (!isMac(r.prev) || !isMac(r.mac)) return `${at} has an invalid prev or mac`;
  return null;
}
