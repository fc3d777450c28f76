// One policy generation, compiled for the proxy's questions: the rules, the
// static hosts map, the IP literals the user allowed by name (the only
// non-public addresses the proxy will dial), and the DNS question "could any
// allow or ask rule for this name ever apply, on any port".

import { CordonError } from '../errors.ts';
import { hostMatches } from '../policy/host-pattern.ts';
import { parseIpLiteral } from '../policy/ip.ts';
import type { NetworkRule } from '../policy/types.ts';
import { NO_BUDGET, type BudgetLimits } from './budget.ts';
import type { ProxyPolicy } from './types.ts';

export interface PolicyView {
  readonly generation: number;
  readonly rules: readonly NetworkRule[];
  /** Canonical IP literals named by allow rules (any port). */
  readonly exactAllowed: readonly string[];
  /**
   * The IP literals allow rules name for this port: the only non-public
   * addresses the proxy dials on it. An exception for 10.0.0.5 port 5432
   * must not open 10.0.0.5 port 22 to a name that resolves there.
   */
  exactAllowedFor(port: number): readonly string[];
  /** Static addresses for a normalised name, or undefined. */
  staticAddresses(name: string): readonly string[] | undefined;
  dnsDecision(name: string): 'allow' | 'deny';
  /** The session's egress budgets under this generation. */
  readonly budget: BudgetLimits;
}

const normName = (n: string) => {
  const l = n.toLowerCase();
  return l.endsWith('.') ? l.slice(0, -1) : l;
};

function budgetOf(b: BudgetLimits | undefined): BudgetLimits {
  if (b === undefined) return NO_BUDGET;
  const one = (k: keyof BudgetLimits) => {
    const v = b[k];
    if (v !== null && (!Number.isSafeInteger(v) || v < 0)) throw new CordonError('CORDON_POLICY_INVALID', `budget.${k}: expected a whole number or null`);
    return v;
  };
  return Object.freeze({ bytesUp: one('bytesUp'), requests: one('requests'), destinations: one('destinations') });
}

export function compilePolicy(policy: ProxyPolicy, generation: number): PolicyView {
  if (!policy || !Array.isArray(policy.rules)) {
    throw new CordonError('CORDON_POLICY_INVALID', 'the proxy policy has no rules array');
  }
  const rules = policy.rules.map((r) => Object.freeze({ ...r, ports: [...r.ports] }));
  const hosts = new Map<string, string[]>();
  for (const [name, addrs] of Object.entries(policy.hosts ?? {})) {
    if (!Array.isArray(addrs)) throw new CordonError('CORDON_POLICY_INVALID', `hosts.${name}: expected a list of addresses`);
    const canon = addrs.map((a) => {
      const ip = parseIpLiteral(a);
      if (!ip) throw new CordonError('CORDON_POLICY_INVALID', `hosts.${name}: "${a}" is not an IP address`);
      return ip.canonical;
    });
    hosts.set(normName(name), canon);
  }
  const exactAllowed = [
    ...new Set(rules.filter((r) => r.decision === 'allow').flatMap((r) => parseIpLiteral(r.host)?.canonical ?? [])),
  ];
  const literalRules = rules.flatMap((r) => {
    const ip = r.decision === 'allow' ? parseIpLiteral(r.host) : null;
    return ip ? [{ canonical: ip.canonical, ports: r.ports }] : [];
  });
  const dnsRules = rules.filter((r) => r.decision === 'allow' || r.decision === 'ask');
  return {
    generation,
    rules,
    exactAllowed,
    exactAllowedFor: (port) => [...new Set(literalRules.filter((l) => l.ports.length === 0 || l.ports.includes(port)).map((l) => l.canonical))],
    staticAddresses: (name) => hosts.get(normName(name)),
    dnsDecision: (name) => (dnsRules.some((r) => hostMatches(r.host, name)) ? 'allow' : 'deny'),
    budget: budgetOf(policy.budget),
  };
}
