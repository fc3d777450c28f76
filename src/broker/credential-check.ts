// Which credentials a request to a credentialed host carries, and whether it
// may carry them (the /v1/files case: an attacker's API key, planted in a
// file the agent read, must not reach the user's credentialed host).
//
// Looked at: the bound headers of the covering bindings, plus authorization,
// x-api-key, proxy-authorization, cookie, x-auth-token and api-key; the
// bound query parameters; for AWS also x-amz-security-token and presigned
// query parameters. Each field must hold one of this session's live
// placeholders, in its binding's header and form (scheme + " " + value), on a
// request its binding matches (method, path). Anything else there - another
// key, a cookie, a placeholder of another session, a revoked or expired
// placeholder - is refused. `dangerouslyAllowForeignCredentials` lets foreign
// values through; it takes every binding covering the host to set it (one
// binding without it keeps the host strict).

import type { Header } from '../proxy/index.ts';
import { bindingMatchesRequest } from './binding-match.ts';
import type { CredentialState, IssuedCredential } from './book.ts';
import { looksLikePlaceholder } from './placeholders.ts';
import { parseAuthorization, type SigV4Authorization } from './sigv4.ts';

export const CREDENTIAL_HEADERS: readonly string[] = ['authorization', 'x-api-key', 'proxy-authorization', 'cookie', 'x-auth-token', 'api-key'];

export interface Accepted {
  /** Token placeholders in their bound header: header index. */
  headers: Array<{ credential: IssuedCredential; index: number }>;
  /** Token placeholders in their bound query parameter. */
  query: IssuedCredential[];
  /** The AWS placeholder that signed the request. */
  aws: { credential: IssuedCredential; auth: SigV4Authorization } | null;
}

export type CheckResult = { ok: true; accepted: Accepted } | { ok: false; reason: string; credential: IssuedCredential | null };

export interface CheckedRequest {
  method: string;
  target: string;
  headers: readonly Header[];
}

function boundForm(c: IssuedCredential, value: string): boolean {
  const ph = c.placeholder!;
  const v = value.trim();
  if (c.binding.scheme === '') return v === ph;
  const m = /^(\S+)\s+(\S+)$/.exec(v);
  return m !== null && m[1]!.toLowerCase() === c.binding.scheme.toLowerCase() && m[2] === ph;
}

function presents(c: IssuedCredential, name: string, value: string): SigV4Authorization | boolean {
  if (c.binding.kind === 'token') return c.binding.header === name && boundForm(c, value);
  if (name !== 'authorization') return false;
  const auth = parseAuthorization(value);
  return auth !== null && auth.accessKeyId === c.awsPlaceholder!.accessKeyId ? auth : false;
}

function mentions(c: IssuedCredential, value: string): boolean {
  if (c.placeholder !== null) return value.includes(c.placeholder);
  return value.includes(c.awsPlaceholder!.accessKeyId) || value.includes(c.awsPlaceholder!.secretAccessKey);
}

function queryParams(target: string): Array<[string, string]> {
  const q = target.indexOf('?');
  if (q < 0) return [];
  const out: Array<[string, string]> = [];
  for (const part of target.slice(q + 1).split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const dec = (s: string) => {
      try {
        return decodeURIComponent(s.replace(/\+/g, ' '));
      } catch {
        return s;
      }
    };
    out.push([dec(eq < 0 ? part : part.slice(0, eq)), dec(eq < 0 ? '' : part.slice(eq + 1))]);
  }
  return out;
}

export function checkCredentials(covering: readonly IssuedCredential[], req: CheckedRequest, stateOf: (c: IssuedCredential) => CredentialState): CheckResult {
  const accepted: Accepted = { headers: [], query: [], aws: null };
  const strict = covering.some((c) => !c.binding.allowForeign);
  const path = req.target.split('?')[0]!;
  const usable = (c: IssuedCredential): string | null => {
    const s = stateOf(c);
    if (s !== 'live') return `credential ${s}`;
    if (!bindingMatchesRequest(c.binding, req.method, req.target)) return `the credential is not bound to ${req.method} ${path}`;
    return null;
  };
  const foreign = (where: string, value: string): CheckResult | null => {
    if (!strict) return null;
    const own = covering.find((c) => mentions(c, value));
    if (own) return { ok: false, reason: `a credential placeholder in ${where}, which is not where or how its binding sends it`, credential: own };
    if (looksLikePlaceholder(value)) return { ok: false, reason: `a credential placeholder from another session in ${where}`, credential: null };
    return { ok: false, reason: `a foreign credential in ${where} (only this session's placeholder may go to this host)`, credential: null };
  };

  const names = new Set([...CREDENTIAL_HEADERS, ...covering.filter((c) => c.binding.kind === 'token').map((c) => c.binding.header)]);
  const hasAws = covering.some((c) => c.binding.kind === 'aws');
  if (hasAws) names.add('x-amz-security-token');
  const seen = new Map<string, number>();
  for (let i = 0; i < req.headers.length; i++) {
    const [rawName, value] = req.headers[i]!;
    const name = rawName.toLowerCase();
    if (!names.has(name)) continue;
    seen.set(name, (seen.get(name) ?? 0) + 1);
    if (seen.get(name)! > 1 && strict) return { ok: false, reason: `more than one ${name} header`, credential: null };
    let matched = false;
    for (const c of covering) {
      const p = presents(c, name, value);
      if (p === false) continue;
      const why = usable(c);
      if (why) return { ok: false, reason: why, credential: c };
      if (typeof p === 'object') accepted.aws = { credential: c, auth: p };
      else accepted.headers.push({ credential: c, index: i });
      matched = true;
      break;
    }
    if (matched) continue;
    const refusal = foreign(`the ${name} header`, value);
    if (refusal) return refusal;
  }

  const params = queryParams(req.target);
  for (const c of covering) {
    const q = c.binding.kind === 'token' ? c.binding.query : null;
    if (q === null) continue;
    for (const [k, v] of params) {
      if (k !== q) continue;
      if (v === c.placeholder) {
        const why = usable(c);
        if (why) return { ok: false, reason: why, credential: c };
        if (!accepted.query.includes(c)) accepted.query.push(c);
        continue;
      }
      const refusal = foreign(`the ${q} query parameter`, v);
      if (refusal) return refusal;
    }
  }

  if (hasAws) {
    const presigned = params.find(([k]) => /^x-amz-(credential|signature|security-token)$/i.test(k));
    const ours = params.some(([k, v]) => /^x-amz-credential$/i.test(k) && covering.some((c) => c.awsPlaceholder !== null && v.startsWith(`${c.awsPlaceholder.accessKeyId}/`)));
    if (presigned && (strict || ours)) {
      return { ok: false, reason: 'a presigned (query-string) AWS signature: cordon signs requests in the Authorization header only', credential: null };
    }
  }
  return { ok: true, accepted };
}
