// Compiling credential bindings and canaries from their policy-file form.
// Pure: no I/O.

import { CordonError } from '../errors.ts';
import { normalizeHostPattern } from './host-pattern.ts';
import type { BindingInput, CanaryInput } from './schema.ts';
import type { Binding, Canary, Origin } from './types.ts';
import { parseDuration } from './units.ts';

const DEFAULT_TTL_MS = 12 * 3_600_000;

export function compileBinding(input: BindingInput, index: number, origin: Origin): Binding {
  const field = `credentials.bindings[${index}]`;
  const fail = (msg: string): never => {
    throw new CordonError('CORDON_POLICY_INVALID', `${field}: ${msg}`, { detail: { file: origin.source, line: origin.line, field } });
  };
  const hosts = input.hosts.map((h) => {
    const n = normalizeHostPattern(h);
    if (!n.ok) return fail(`hosts: ${n.reason}`);
    if (n.wildcard) return fail(`hosts: "${h}": a credential goes to exact hosts only, no wildcards`);
    return n.pattern;
  });
  const kind = input.kind ?? 'token';
  if (kind === 'aws' && (input.header !== undefined || input.scheme !== undefined || input.query !== undefined)) {
    fail('header, scheme and query do not apply to kind aws (the proxy signs requests)');
  }
  const header = (input.header ?? 'authorization').toLowerCase();
  const ttl = input.ttl === undefined ? DEFAULT_TTL_MS : input.ttl === 'unlimited' ? null : parseDuration(input.ttl)!;
  return {
    secret: input.secret,
    kind,
    env: input.env ?? null,
    file: input.file ?? null,
    placeholderPrefix: input.placeholderPrefix ?? 'cordon-',
    hosts,
    ports: input.ports ?? [443],
    methods: input.methods ?? null,
    paths: input.paths ?? null,
    header,
    scheme: input.scheme ?? (header === 'authorization' ? 'Bearer' : ''),
    query: input.query ?? null,
    body: input.body ?? false,
    ttlMs: ttl,
    allowForeign: input.dangerouslyAllowForeignCredentials ?? false,
    stripHeaders: (input.stripHeaders ?? []).map((h) => h.toLowerCase()),
    index,
  };
}

export function compileCanary(input: CanaryInput): Canary {
  return { file: input.file ?? null, env: input.env ?? null, format: input.format ?? (input.file?.endsWith('/.aws/credentials') ? 'aws-credentials' : 'token') };
}
