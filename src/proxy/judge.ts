// From the rule engine's verdict to what the proxy does. `ask` has its own
// path (askForApproval) so the approvals queue can plug in there; until it
// exists, asking is denying with a reason that says so.

import { decideNetwork, type NetworkFact, type NetworkVerdict } from '../policy/decide-network.ts';
import type { DenyKind } from './deny.ts';
import type { PolicyView } from './policy-view.ts';

export type Judgement =
  | { kind: 'allow'; rule: number | null; reason: string; bodyLimit: number | null }
  /** Connection level only: the answer depends on each request. */
  | { kind: 'need-content'; reason: string }
  | { kind: 'deny'; decision: 'deny' | 'ask'; deny: DenyKind; rule: number | null; reason: string };

export const APPROVAL_UNAVAILABLE = 'needs approval (approvals are not available yet)';

/**
 * The approvals hook. Today there is no approvals queue, so every ask is
 * refused; the verdict stays an 'ask' in the audit record.
 */
export function askForApproval(verdict: NetworkVerdict & { decision: 'ask' }): Judgement {
  return { kind: 'deny', decision: 'ask', deny: 'approval', rule: verdict.rule?.index ?? null, reason: `${verdict.reason}: ${APPROVAL_UNAVAILABLE}` };
}

/** Judge a fact. Any error on this path is a deny (fail closed). */
export function judge(view: PolicyView, fact: NetworkFact): Judgement {
  let v: NetworkVerdict;
  try {
    v = decideNetwork(view.rules, fact);
  } catch (e) {
    return { kind: 'deny', decision: 'deny', deny: 'not-allowed', rule: null, reason: `the policy could not decide (${e instanceof Error ? e.message : 'error'})` };
  }
  switch (v.decision) {
    case 'allow':
      return { kind: 'allow', rule: v.rule?.index ?? null, reason: v.reason, bodyLimit: v.bodyLimit };
    case 'ask':
      return askForApproval(v as NetworkVerdict & { decision: 'ask' });
    case 'need-content':
      return { kind: 'need-content', reason: v.reason };
    case 'deny': {
      const byBodyLimit = v.rule !== null && v.rule.decision === 'allow';
      return {
        kind: 'deny',
        decision: 'deny',
        deny: byBodyLimit ? 'body-limit' : v.rule ? 'denied' : 'not-allowed',
        rule: v.rule?.index ?? null,
        reason: v.reason,
      };
    }
  }
}

/** Judge one request: a verdict that still depends on content is a deny. */
export function judgeRequest(view: PolicyView, fact: NetworkFact): Exclude<Judgement, { kind: 'need-content' }> {
  const j = judge(view, fact);
  if (j.kind !== 'need-content') return j;
  return { kind: 'deny', decision: 'deny', deny: 'not-allowed', rule: null, reason: `undecidable with the request's content: ${j.reason}` };
}
