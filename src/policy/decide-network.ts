// The network rule engine: one flow (or one request) in, allow | deny | ask out.
// Pure: no I/O, no node:* imports.
//
// PRECEDENCE (also printed by `cordon policy explain`; keep NETWORK_PRECEDENCE in step)
//  1. Default deny: a flow no rule matches is denied.
//  2. A rule matches when its host, port, protocol, method and path all match.
//  3. Among matching rules, deny beats ask beats allow. Rule order does not
//     matter; the lowest-index rule of the winning kind is reported.
//  4. An allow rule with maxBodyBytes turns a request whose body is larger into
//     a deny. With several matching allow rules the smallest limit applies.
//  5. Protocol: a tcp rule covers every flow to its host and ports. An http
//     rule covers HTTP flows; for a raw TCP flow, whose requests cannot be
//     seen, http deny/ask rules apply as if their methods and paths matched
//     and http allow rules do not apply.
//  6. Unknown content: when the fact lacks the method, path or body size and
//     the outcome depends on them, the answer is `need-content` (the proxy
//     terminates TLS and asks again per request). A request whose body size is
//     not known up front (chunked) is allowed with `bodyLimit`, which the proxy
//     enforces while relaying.
//  7. Deny and ask rules are matched generously and allow rules strictly:
//     methods compare case-insensitively for deny/ask and exactly for allow;
//     deny/ask paths also match case-insensitively and with ";parameters"
//     removed from each segment; a path that cannot be normalised matches every
//     deny/ask path rule and no allow path rule.
//
// PATHS
//  Request paths are normalised before matching: the query is dropped;
//  percent-encoded unreserved characters (A-Z a-z 0-9 - . _ ~) are decoded and
//  other escapes upper-cased; "//" collapses to "/"; "." and ".." segments are
//  resolved. Refused (the path "cannot be normalised"): encoded "/", "\" or NUL
//  (%2F %5C %00) and their double encodings (%252F...), raw "\", "#", bytes
//  outside printable ASCII, bad escapes, ".." above the root, and ".." in a
//  path that also has "//" (servers disagree on the order).
//  Patterns are normalised the same way. A pattern without "*", or ending in
//  "/", is a prefix on segment boundaries: "/v1/files" and "/v1/files/" both
//  match /v1/files, /v1/files/ and /v1/files/x but not /v1/filesx. Any other
//  pattern must match the whole path: "*" matches within one segment
//  ("/repos/*/pulls", "/v1/*.json"), a "**" segment matches zero or more
//  segments ("/a/**/b"). A trailing "/" on the request path is ignored.

import { hostMatches } from './host-pattern.ts';
import type { Decision, NetworkRule } from './types.ts';

export const NETWORK_PRECEDENCE: readonly string[] = [
  'default: deny',
  'a rule applies when its host, port, protocol, method and path all match',
  'deny beats ask beats allow among the rules that apply (rule order does not matter)',
  'maxBodyBytes on an allow rule turns a larger request body into a deny',
  'tcp rules cover every flow to their host and ports; http allow rules never cover raw TCP',
  'deny/ask rules match methods and paths case-insensitively; allow rules match exactly',
  'paths are normalised first (escapes, "//", "." and ".."); encoded "/" is refused',
];

export interface NetworkFact {
  /** Normalised host name or canonical IP literal. */
  host: string;
  port: number;
  protocol: 'http' | 'tcp';
  /** Request method; absent for a connection-level fact (before any request is seen). */
  method?: string;
  /** Request target path (a query is ignored). */
  path?: string;
  /** Request body size when known up front (Content-Length). */
  bodyBytes?: number;
}

export type ContentNeed = 'method' | 'path' | 'body';

export interface DecidedVerdict {
  decision: Decision;
  rule: NetworkRule | null;
  reason: string;
  /** Rules that definitely match, by index. */
  matched: NetworkRule[];
  /** For allow: the largest body the proxy may relay (null: unlimited). */
  bodyLimit: number | null;
}

export interface NeedContentVerdict {
  decision: 'need-content';
  rule: null;
  reason: string;
  matched: NetworkRule[];
  /** Rules whose match depends on the missing content. */
  pending: NetworkRule[];
  needs: ContentNeed[];
}

export type NetworkVerdict = DecidedVerdict | NeedContentVerdict;

export interface RuleExplanation {
  rule: NetworkRule;
  status: 'match' | 'no-match' | 'pending';
  /** What the rule decides when it matches (an allow over its body limit decides deny). */
  effective: Decision;
  because: string[];
}

// ---------------------------------------------------------------------------
// Path normalisation and matching

export type NormalizedPath = { ok: true; path: string; segments: string[] } | { ok: false; reason: string };

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
const HEX2 = /^[0-9a-fA-F]{2}$/;
const FORBIDDEN_ESCAPES: Record<string, string> = { '2F': 'an encoded "/"', '5C': 'an encoded "\\"', '00': 'an encoded NUL' };

function normalize(raw: string): NormalizedPath {
  const q = raw.indexOf('?');
  const p = q >= 0 ? raw.slice(0, q) : raw;
  if (!p.startsWith('/')) return { ok: false, reason: 'the path does not start with "/"' };
  if (p.length > 16384) return { ok: false, reason: 'the path is too long' };
  let decoded = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    const code = c.charCodeAt(0);
    if (code <= 0x20 || code >= 0x7f) return { ok: false, reason: 'the path has a control, space or non-ASCII character' };
    if (c === '\\') return { ok: false, reason: 'the path has a "\\"' };
    if (c === '#') return { ok: false, reason: 'the path has a "#"' };
    if (c !== '%') {
      decoded += c;
      continue;
    }
    const hex = p.slice(i + 1, i + 3);
    if (!HEX2.test(hex)) return { ok: false, reason: 'the path has a malformed %-escape' };
    const up = hex.toUpperCase();
    const forbidden = FORBIDDEN_ESCAPES[up];
    if (forbidden) return { ok: false, reason: `the path has ${forbidden}` };
    if (up === '25') {
      const inner = p.slice(i + 3, i + 5).toUpperCase();
      if (inner in FORBIDDEN_ESCAPES || inner === '2E') return { ok: false, reason: 'the path has a double-encoded separator' };
    }
    const ch = String.fromCharCode(parseInt(up, 16));
    decoded += UNRESERVED.test(ch) ? ch : `%${up}`;
    i += 2;
  }
  const parts = decoded.split('/').slice(1);
  const trailingSlash = parts.length > 0 && parts[parts.length - 1] === '';
  let sawEmpty = false;
  let sawDotDot = false;
  const segs: string[] = [];
  parts.forEach((seg, idx) => {
    if (seg === '') {
      if (idx !== parts.length - 1) sawEmpty = true;
      return;
    }
    if (seg === '.') return;
    if (seg === '..') {
      sawDotDot = true;
      if (segs.length === 0) segs.push('\0above-root');
      else segs.pop();
      return;
    }
    segs.push(seg);
  });
  if (segs.includes('\0above-root')) return { ok: false, reason: 'the path climbs above the root with ".."' };
  if (sawDotDot && sawEmpty) return { ok: false, reason: 'the path mixes "//" and ".." (servers resolve that differently)' };
  const path = `/${segs.join('/')}${trailingSlash && segs.length > 0 ? '/' : ''}`;
  return { ok: true, path, segments: segs };
}

/** Normalise a request path (see PATHS at the top of this file). */
export function normalizeRequestPath(raw: string): NormalizedPath {
  return normalize(raw);
}

/** Why a rule's path pattern is unusable, or null. For policy validation. */
export function pathPatternProblem(pattern: string): string | null {
  if (pattern.includes('?')) return 'a path pattern cannot hold a query';
  const n = normalize(pattern);
  return n.ok ? null : n.reason;
}

/** Glob within one segment: "*" (or "**") matches any run of characters. */
function segmentMatches(pattern: string, seg: string): boolean {
  if (!pattern.includes('*')) return pattern === seg;
  const parts = pattern.split(/\*+/);
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (seg.length < first.length + last.length || !seg.startsWith(first) || !seg.endsWith(last)) return false;
  let at = first.length;
  const end = seg.length - last.length;
  for (const mid of parts.slice(1, -1)) {
    const found = seg.indexOf(mid, at);
    if (found < 0 || found + mid.length > end) return false;
    at = found + mid.length;
  }
  return true;
}

function segmentsMatch(pat: readonly string[], path: readonly string[], prefix: boolean): boolean {
  // Memoised over (pattern index, path index): "**" cannot blow up on long paths.
  const width = path.length + 1;
  const memo = new Uint8Array((pat.length + 1) * width); // 0 unknown, 1 false, 2 true
  const go = (pi: number, qi: number): boolean => {
    const key = pi * width + qi;
    if (memo[key]) return memo[key] === 2;
    let r: boolean;
    if (pi === pat.length) r = prefix || qi === path.length;
    else if (pat[pi] === '**') {
      r = false;
      for (let k = qi; k <= path.length && !r; k++) r = go(pi + 1, k);
    } else r = qi < path.length && segmentMatches(pat[pi]!, path[qi]!) && go(pi + 1, qi + 1);
    memo[key] = r ? 2 : 1;
    return r;
  };
  return go(0, 0);
}

const stripParams = (segs: readonly string[]) => segs.map((s) => s.split(';')[0]!);

/**
 * Whether a rule's path pattern covers a normalised request path. `generous`
 * (deny/ask rules) also compares case-insensitively and without ";params".
 * An unusable pattern matches everything when generous and nothing otherwise.
 */
export function pathMatches(pattern: string, segments: readonly string[], generous = false): boolean {
  const n = normalize(pattern);
  if (!n.ok) return generous;
  const prefix = !pattern.includes('*') || pattern.endsWith('/');
  if (segmentsMatch(n.segments, segments, prefix)) return true;
  if (!generous) return false;
  const lowerPat = n.segments.map((s) => s.toLowerCase());
  const lowerPath = segments.map((s) => s.toLowerCase());
  return segmentsMatch(lowerPat, lowerPath, prefix) || segmentsMatch(lowerPat, stripParams(lowerPath), prefix);
}

// ---------------------------------------------------------------------------
// Evaluation

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The decisions a rule may contribute: 'none' = may not match. */
type Contribution = 'none' | Decision;

interface Evaluation extends RuleExplanation {
  possible: Set<Contribution>;
  needs: ContentNeed[];
  bodyLimit: number | null;
}

function factProblem(f: NetworkFact): string | null {
  if (typeof f.host !== 'string' || f.host.length === 0) return 'no host';
  if (!Number.isInteger(f.port) || f.port < 1 || f.port > 65535) return 'invalid port';
  if (f.protocol !== 'http' && f.protocol !== 'tcp') return 'invalid protocol';
  if (f.method !== undefined && !TOKEN.test(f.method)) return 'invalid method';
  if (f.path !== undefined && typeof f.path !== 'string') return 'invalid path';
  if (f.bodyBytes !== undefined && !(Number.isSafeInteger(f.bodyBytes) && f.bodyBytes >= 0)) return 'invalid body size';
  return null;
}

function evaluate(rule: NetworkRule, fact: NetworkFact, path: NormalizedPath | undefined): Evaluation {
  const because: string[] = [];
  const needs: ContentNeed[] = [];
  let no = false;
  let effective: Decision = rule.decision;
  let bodyLimit: number | null = null;
  let bodyUnknownAtConnection = false;
  const generous = rule.decision !== 'allow';

  if (hostMatches(rule.host, fact.host)) because.push(`host ${fact.host} matches ${rule.host}`);
  else {
    because.push(`host ${fact.host} does not match ${rule.host}`);
    no = true;
  }
  if (rule.ports.length === 0) because.push('the rule covers every port');
  else if (rule.ports.includes(fact.port)) because.push(`port ${fact.port} is in [${rule.ports.join(', ')}]`);
  else {
    because.push(`port ${fact.port} is not in [${rule.ports.join(', ')}]`);
    no = true;
  }

  let checkContent = true;
  if (rule.protocol === 'tcp') {
    because.push('a tcp rule covers every flow to its host and ports');
    checkContent = false;
  } else if (fact.protocol === 'tcp') {
    checkContent = false;
    if (rule.decision === 'allow') {
      because.push('an http allow rule does not cover a raw TCP flow');
      no = true;
    } else {
      because.push(`a raw TCP flow cannot be inspected, so this http ${rule.decision} rule applies in full`);
    }
  }

  if (checkContent) {
    if (rule.methods === null) because.push('any method');
    else if (fact.method === undefined) {
      because.push(`method must be one of [${rule.methods.join(', ')}]: not known yet`);
      needs.push('method');
    } else {
      const m = generous ? fact.method.toUpperCase() : fact.method;
      if (rule.methods.includes(m)) because.push(`method ${fact.method} is in [${rule.methods.join(', ')}]`);
      else {
        because.push(`method ${fact.method} is not in [${rule.methods.join(', ')}]`);
        no = true;
      }
    }

    if (rule.paths === null) because.push('any path');
    else if (path === undefined) {
      because.push(`path must match [${rule.paths.join(', ')}]: not known yet`);
      needs.push('path');
    } else if (!path.ok) {
      if (generous) because.push(`the path cannot be normalised (${path.reason}), so this ${rule.decision} rule applies`);
      else {
        because.push(`the path cannot be normalised (${path.reason})`);
        no = true;
      }
    } else if (rule.paths.some((p) => pathMatches(p, path.segments, generous))) {
      because.push(`path ${path.path} matches [${rule.paths.join(', ')}]`);
    } else {
      because.push(`path ${path.path} does not match [${rule.paths.join(', ')}]`);
      no = true;
    }

    if (rule.decision === 'allow' && rule.maxBodyBytes !== null) {
      if (fact.bodyBytes !== undefined) {
        if (fact.bodyBytes > rule.maxBodyBytes) {
          effective = 'deny';
          because.push(`body of ${fact.bodyBytes} bytes exceeds maxBodyBytes ${rule.maxBodyBytes}: decides deny`);
        } else because.push(`body of ${fact.bodyBytes} bytes is within maxBodyBytes ${rule.maxBodyBytes}`);
      } else if (fact.method === undefined) {
        because.push(`body must be at most ${rule.maxBodyBytes} bytes: not known yet`);
        needs.push('body');
        bodyUnknownAtConnection = true;
      } else {
        because.push(`body limited to ${rule.maxBodyBytes} bytes while relaying`);
        bodyLimit = rule.maxBodyBytes;
      }
    }
  }

  const possible = new Set<Contribution>();
  let status: RuleExplanation['status'];
  if (no) {
    status = 'no-match';
    possible.add('none');
  } else if (needs.length > 0) {
    status = 'pending';
    if (needs.some((n) => n !== 'body')) possible.add('none');
    possible.add(effective);
    if (bodyUnknownAtConnection) possible.add('deny');
  } else {
    status = 'match';
    possible.add(effective);
  }
  return { rule, status, effective, because, possible, needs, bodyLimit };
}

type Outcome = 'deny' | 'ask' | 'allow' | 'default';

function outcomeOf(mask: number): Outcome {
  // bit 0 deny, bit 1 ask, bit 2 allow
  return mask & 1 ? 'deny' : mask & 2 ? 'ask' : mask & 4 ? 'allow' : 'default';
}

const BIT: Record<Contribution, number> = { none: 0, deny: 1, ask: 2, allow: 4 };

function combine(fact: NetworkFact, evals: Evaluation[]): NetworkVerdict {
  // Every set of decisions the rules can jointly produce (at most 8 states).
  let states = new Set<number>([0]);
  for (const e of evals) {
    const next = new Set<number>();
    for (const s of states) for (const c of e.possible) next.add(s | BIT[c]);
    states = next;
  }
  const outcomes = new Set<'deny' | 'ask' | 'allow'>();
  for (const s of states) {
    const o = outcomeOf(s);
    outcomes.add(o === 'default' ? 'deny' : o);
  }
  const matched = evals.filter((e) => e.status === 'match').map((e) => e.rule);
  const where = `${fact.host}:${fact.port}`;

  if (outcomes.size > 1) {
    const pending = evals.filter((e) => e.status === 'pending');
    const needs = [...new Set(pending.flatMap((e) => e.needs))];
    return {
      decision: 'need-content',
      rule: null,
      reason: `the decision for ${where} depends on the request's ${needs.join(', ')}`,
      matched,
      pending: pending.map((e) => e.rule),
      needs,
    };
  }

  const decided = [...outcomes][0]!;
  const firstMatched = (d: Decision) => evals.find((e) => e.status === 'match' && e.effective === d);
  if (decided === 'allow') {
    const allows = evals.filter((e) => e.status === 'match' && e.effective === 'allow');
    const limits = allows.map((e) => e.bodyLimit).filter((l): l is number => l !== null);
    const rule = allows[0]!.rule;
    return {
      decision: 'allow',
      rule,
      reason: `allowed by rule #${rule.index} (${rule.host})`,
      matched,
      bodyLimit: limits.length > 0 ? Math.min(...limits) : null,
    };
  }
  const hit = firstMatched(decided);
  if (!hit) {
    return { decision: 'deny', rule: null, reason: `no rule allows ${where}`, matched, bodyLimit: null };
  }
  const r = hit.rule;
  const reason =
    decided === 'deny' && r.decision === 'allow'
      ? `the request body exceeds maxBodyBytes of rule #${r.index} (${r.host})`
      : `${decided === 'deny' ? 'denied' : 'needs approval'} by rule #${r.index} (${r.host})`;
  return { decision: decided, rule: r, reason, matched, bodyLimit: null };
}

function run(rules: readonly NetworkRule[], fact: NetworkFact): { verdict: NetworkVerdict; evals: Evaluation[] } {
  const problem = factProblem(fact);
  if (problem) {
    return { verdict: { decision: 'deny', rule: null, reason: `invalid request: ${problem}`, matched: [], bodyLimit: null }, evals: [] };
  }
  const path = fact.path === undefined ? undefined : normalizeRequestPath(fact.path);
  const ordered = [...rules].sort((a, b) => a.index - b.index);
  const evals = ordered.map((r) => evaluate(r, fact, path));
  return { verdict: combine(fact, evals), evals };
}

/** Decide one flow or request. See PRECEDENCE at the top of this file. */
export function decideNetwork(rules: readonly NetworkRule[], fact: NetworkFact): NetworkVerdict {
  return run(rules, fact).verdict;
}

/** The verdict plus, for every rule, whether and why it matched (for `cordon policy explain`). */
export function explainNetwork(
  rules: readonly NetworkRule[],
  fact: NetworkFact,
): { verdict: NetworkVerdict; precedence: readonly string[]; rules: RuleExplanation[] } {
  const { verdict, evals } = run(rules, fact);
  return {
    verdict,
    precedence: NETWORK_PRECEDENCE,
    rules: evals.map(({ rule, status, effective, because }) => ({ rule, status, effective, because })),
  };
}
