// Prerequisite checks: each says whether something works, and if not, how to
// fix it. Used by `cordon doctor` and by backends before they start.

export interface PrereqCheck {
  id: string;
  title: string;
  status: 'works' | 'missing' | 'degraded';
  /** What was found (version, path) or what failed. */
  detail: string;
  /** Exact steps to fix, when not working. */
  fix?: string;
  /** Does `cordon run` with the default backend need it? */
  required: boolean;
}
