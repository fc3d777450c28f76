// The audit module: an append-only, hash-chained, keyed log of every decision
// cordon makes, in <stateDir>/audit.db with its key in <stateDir>/audit.key.
//
//   AuditStore     open, append, tail, records, addRedactor, close (store.ts)
//   verifyAudit    check a state directory's log, read-only (verify.ts)
//   exportJsonl    the log as JSON Lines plus an authenticated trailer (export.ts)
//   verifyJsonl    check such an export with the key (export.ts)
//   formatRecord   one safe terminal line per record (format.ts)
//
// Sits at the bottom of the dependency graph: imports only node:* and ../errors.ts.

export { type AuditRecord, GENESIS, canonicalJson } from './chain.ts';
export type { Problem, ProblemKind, VerifyResult } from './check.ts';
export { exportJsonl, verifyJsonl } from './export.ts';
export { formatRecord } from './format.ts';
export { auditPaths, readKey } from './key.ts';
export { REDACTED, type Redactor, isSecretName } from './redact.ts';
export type { AuditFilter } from './schema.ts';
export { AuditStore, MAX_DATA_CHARS } from './store.ts';
export { verifyAudit } from './verify.ts';
