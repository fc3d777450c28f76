// One shallow error family. Every error cordon raises on purpose has a stable
// `code` (documented in docs/errors.md) and maps to a documented exit status.
// Messages are for humans; `detail` carries structured context for --json and
// the audit log. Never put a secret value in either.

export const EXIT = {
  ok: 0,
  /** A check failed (audit verify found tampering, policy check found errors, selftest leaked). */
  failed: 1,
  /** Bad command line. */
  usage: 2,
  /** `run`: the wall-clock timeout of the session expired. */
  timeout: 124,
  /** `run`: cordon could not start the sandbox (bad policy, missing prerequisite, internal error). */
  cordon: 125,
  /** `run`: the command exists but could not be executed. */
  cannotExecute: 126,
  /** `run`: the command was not found inside the sandbox. */
  notFound: 127,
} as const;

export type ErrorCode =
  | 'CORDON_USAGE'
  | 'CORDON_POLICY_INVALID'
  | 'CORDON_POLICY_NOT_FOUND'
  | 'CORDON_POLICY_WIDENS'
  | 'CORDON_PREREQ_MISSING'
  | 'CORDON_SANDBOX_SETUP'
  | 'CORDON_UNSAFE_MOUNT'
  | 'CORDON_AUDIT_UNAVAILABLE'
  | 'CORDON_AUDIT_TAMPERED'
  | 'CORDON_NETWORK_SETUP'
  | 'CORDON_SECRET'
  | 'CORDON_INTERNAL';

const exitFor: Record<ErrorCode, number> = {
  CORDON_USAGE: EXIT.usage,
  CORDON_POLICY_INVALID: EXIT.cordon,
  CORDON_POLICY_NOT_FOUND: EXIT.cordon,
  CORDON_POLICY_WIDENS: EXIT.cordon,
  CORDON_PREREQ_MISSING: EXIT.cordon,
  CORDON_SANDBOX_SETUP: EXIT.cordon,
  CORDON_UNSAFE_MOUNT: EXIT.cordon,
  CORDON_AUDIT_UNAVAILABLE: EXIT.cordon,
  CORDON_AUDIT_TAMPERED: EXIT.failed,
  CORDON_NETWORK_SETUP: EXIT.cordon,
  CORDON_SECRET: EXIT.failed,
  CORDON_INTERNAL: EXIT.cordon,
};

export interface ErrorOptions {
  /** What the user can do about it, one or two lines. */
  hint?: string;
  /** Structured context (file, line, field...). Must never hold secret values. */
  detail?: Record<string, unknown>;
  cause?: unknown;
}

export class CordonError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly detail: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CordonError';
    this.code = code;
    this.hint = options.hint;
    this.detail = options.detail ?? {};
  }

  get exitCode(): number {
    return exitFor[this.code];
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, hint: this.hint, ...this.detail };
  }
}

/**
 * By shape, not by class: `cordon run` loads some modules from a second
 * bundle (see scripts/build.ts), whose CordonError is another class object.
 */
export function isCordonError(e: unknown): e is CordonError {
  return e instanceof CordonError || (e instanceof Error && e.name === 'CordonError' && typeof (e as unknown as { code?: unknown }).code === "string" && Object.hasOwn(exitFor, (e as unknown as { code: string }).code));
}

/** Wrap anything thrown into a CordonError without losing the original. */
export function asCordonError(e: unknown, fallback: ErrorCode = 'CORDON_INTERNAL'): CordonError {
  if (isCordonError(e)) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new CordonError(fallback, message, { cause: e });
}
