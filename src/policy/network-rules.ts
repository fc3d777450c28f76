// Compiling a network rule from its policy-file form into the effective form.
// Pure: no I/O. Host pattern syntax and over-broad checks live in host-pattern.ts.

import { CordonError } from '../errors.ts';
import { normalizeHostPattern } from './host-pattern.ts';
import type { NetworkRuleInput } from './schema.ts';
import type { Decision, NetworkRule, Origin } from './types.ts';
import { parseSize } from './units.ts';

export function compileNetworkRule(input: NetworkRuleInput, index: number, origin: Origin): NetworkRule {
  const decision: Decision = input.allow !== undefined ? 'allow' : input.deny !== undefined ? 'deny' : 'ask';
  const raw = (input.allow ?? input.deny ?? input.ask)!;
  // An unresolved token (policy check, or npm missing) is kept inert: it matches no host.
  const normalized = raw === '${npm.registry}' ? ({ ok: true, pattern: raw, wildcard: false } as const) : normalizeHostPattern(raw);
  if (!normalized.ok) {
    throw new CordonError('CORDON_POLICY_INVALID', `network.rules[${index}].${decision}: ${normalized.reason}`, {
      hint: 'use a host name ("api.example.com"), a wildcard under a registrable domain ("*.example.com"), or an IP literal',
      detail: { file: origin.source, line: origin.line, col: origin.col, field: `network.rules[${index}]` },
    });
  }
  const protocol = input.protocol ?? 'http';
  if (protocol === 'tcp' && (normalized.wildcard || input.ports === undefined || input.ports === 'all')) {
    throw new CordonError('CORDON_POLICY_INVALID', `network.rules[${index}]: a tcp rule needs an exact host and explicit ports`, {
      detail: { file: origin.source, line: origin.line, field: `network.rules[${index}]` },
    });
  }
  if (protocol === 'tcp' && (input.methods || input.paths || input.maxBodyBytes !== undefined)) {
    throw new CordonError('CORDON_POLICY_INVALID', `network.rules[${index}]: methods, paths and maxBodyBytes apply to http rules only`, {
      detail: { file: origin.source, line: origin.line, field: `network.rules[${index}]` },
    });
  }
  return {
    decision,
    host: normalized.pattern,
    // Allow rules name their ports (80 and 443 by default); deny and ask rules
    // cover every port unless they say otherwise: narrowing must not leak
    // through a port nobody thought of.
    ports: input.ports === 'all' ? [] : (input.ports ?? (decision === 'allow' ? [80, 443] : [])),
    methods: input.methods ?? null,
    paths: input.paths ?? null,
    maxBodyBytes: input.maxBodyBytes === undefined ? null : parseSize(input.maxBodyBytes)!,
    protocol,
    index,
  };
}
