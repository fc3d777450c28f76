// `cordon policy explain HOST|host:port|URL`: which network rule decides.

import { CordonError, EXIT } from '../errors.ts';
import { explainNetwork, type NetworkFact } from '../policy/decide-network.ts';
import type { LoadedPolicy } from '../policy/types.ts';
import { parseAuthority } from '../proxy/identity.ts';
import { formatOrigin } from './cmd-policy.ts';
import { printJson, style } from './output.ts';

export function parseTarget(target: string, method?: string): NetworkFact {
  let authority = target;
  let path: string | undefined;
  let defaultPort = 443;
  const url = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)([^#]*)/i.exec(target);
  if (url) {
    const scheme = url[1]!.toLowerCase();
    if (scheme !== 'http' && scheme !== 'https') throw new CordonError('CORDON_USAGE', `cannot explain a ${scheme}: URL`, { hint: 'use http(s)://host/path, host:port or a host name' });
    defaultPort = scheme === 'http' ? 80 : 443;
    authority = url[2]!;
    path = url[3] || '/';
  }
  const a = parseAuthority(authority, defaultPort);
  if (!a.ok) throw new CordonError('CORDON_USAGE', `"${target}": ${a.reason}`);
  return {
    host: a.host,
    port: a.port ?? defaultPort,
    protocol: 'http',
    ...(method ? { method: method.toUpperCase() } : {}),
    ...(path !== undefined ? { path } : {}),
  };
}

export function explainHost(target: string, loaded: LoadedPolicy, o: { method?: string; json?: boolean }): number {
  const fact = parseTarget(target, o.method);
  const mode = loaded.policy.network.mode;
  const ex = explainNetwork(loaded.policy.network.rules, fact);
  const origin = (i: number) => formatOrigin(loaded.origins[`network.rules[${i}]`]);
  const decision = mode === 'none' ? 'deny' : ex.verdict.decision;
  const decidedBy =
    mode === 'none'
      ? 'network.mode is "none": the sandbox has loopback only'
      : ex.verdict.rule
        ? `network.rules[${ex.verdict.rule.index}]`
        : ex.verdict.reason;
  if (o.json) {
    printJson({
      kind: 'host',
      target,
      fact,
      decision,
      decidedBy,
      origin: mode !== 'none' && ex.verdict.rule ? origin(ex.verdict.rule.index) : formatOrigin(loaded.origins['network.mode']),
      reason: ex.verdict.reason,
      precedence: ex.precedence,
      rules: ex.rules.map((r) => ({ index: r.rule.index, status: r.status, effective: r.effective, because: r.because, origin: origin(r.rule.index) })),
    });
    return EXIT.ok;
  }
  const what = `${fact.host}:${fact.port}${fact.method ? ` ${fact.method}` : ''}${fact.path ?? ''}`;
  process.stdout.write(`${what}\n  decision: ${style.bold(decision)}\n  decided by: ${decidedBy}\n`);
  if (mode !== 'none' || ex.rules.length > 0) {
    if (mode !== 'none') process.stdout.write(`  reason: ${ex.verdict.reason}\n`);
    for (const r of ex.rules) {
      process.stdout.write(`  ${r.status.padEnd(8)} rules[${r.rule.index}] ${r.rule.decision} ${r.rule.host} ${style.dim(`(${origin(r.rule.index)})`)}${r.because.length ? `: ${r.because.join('; ')}` : ''}\n`);
    }
    process.stdout.write(style.dim(`  precedence: ${ex.precedence.join('; ')}\n`));
  }
  return EXIT.ok;
}
