// What a probe's judgement reads of its own session: the audit records and
// the time window its dials fall in. session.start is written before the
// sandbox starts and session.end after the proxy has closed, so every dial
// the session caused falls between them (a small allowance for clocks).

import { AuditStore, type AuditRecord } from '../../audit/index.ts';
import type { ProbeContext, ProbeRun } from '../types.ts';

/** A record the attempt must leave in the session's audit log. */
export interface AuditExpectation {
  what: string;
  min?: number;
  /** At most this many (e.g. no cred.use after a revocation). */
  max?: number;
  pred: (r: AuditRecord) => boolean;
}

export function sessionRecords(c: ProbeContext, run: ProbeRun): { from: number; to: number; records: AuditRecord[] } {
  if (run.sessionId === null) return { from: Date.now() - 120_000, to: Date.now(), records: [] };
  const store = AuditStore.open(c.fixture.stateDir);
  try {
    const records = [...store.records({ session: run.sessionId })];
    const start = records.find((r) => r.type === 'session.start') ?? records[0];
    const end = records.findLast((r) => r.type === 'session.end');
    return { from: start ? Date.parse(start.ts) - 5 : Date.now() - 120_000, to: end ? Date.parse(end.ts) + 50 : Date.now(), records };
  } finally {
    store.close();
  }
}

/** The first expectation the records do not meet, as a verdict, or null. */
export function unmet(records: readonly AuditRecord[], expectations: readonly AuditExpectation[]): string | null {
  for (const e of expectations) {
    const n = records.filter(e.pred).length;
    if (n < (e.min ?? 1)) return `the attempt is not in the audit log: expected at least ${e.min ?? 1} ${e.what}, found ${n}`;
    if (e.max !== undefined && n > e.max) return `expected at most ${e.max} ${e.what}, found ${n}`;
  }
  return null;
}
