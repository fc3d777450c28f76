// Host patterns in network rules, and how they match a flow's host.
// Pure: no I/O, no node:* imports.
//
// A pattern is one of:
//   api.example.com     an exact name (lower-case, one trailing dot dropped)
//   *.example.com       a wildcard: the whole leading label, label-bounded;
//                       matches a.example.com and a.b.example.com, never
//                       example.com itself nor badexample.com
//   93.184.215.14       an IPv4 address, written as a canonical dotted quad
//   2001:db8::1         an IPv6 address, bare or in brackets (stored canonical)
// Names are ASCII: internationalised names are written in their punycode
// (xn--) form, so what the policy says is what goes on the wire.
// Over-broad wildcards are refused: a wildcard whose base is a public suffix
// hands the agent every name anyone can register under it.

import { endsInNumber, inspectIpLiteral, isCanonicalIpv4, parseIpLiteral } from './ip.ts';

export type HostPatternResult =
  | { ok: true; pattern: string; wildcard: boolean; kind: 'name' | 'ipv4' | 'ipv6' }
  | { ok: false; reason: string };

// ---------------------------------------------------------------------------
// Public suffixes
//
// A curated subset of the Public Suffix List (publicsuffix.org), not the list
// itself: the suffixes people actually write wildcards under. It errs toward
// refusing. Three rules decide whether a wildcard base is a public suffix:
//  1. every single-label base (`*.com`, `*.io`, `*.internal`) is one;
//  2. a two-label base whose first label is a generic second-level word
//     (com, co, net, org, gov, edu, ac, ...) under a two-letter country code
//     is one (`*.co.uk`, `*.com.br`, `*.ac.jp`), without listing them all;
//  3. the names below are, and for DEEP_SUFFIXES so is everything under them
//     (cloud providers that hand out customer names at several depths).
// A refused wildcard can always be replaced by the exact names needed.

const GENERIC_SECOND_LEVEL = new Set([
  'ac', 'biz', 'co', 'com', 'edu', 'firm', 'gen', 'go', 'gob', 'gouv', 'gov', 'govt', 'gr', 'id', 'in', 'ind',
  'info', 'int', 'ltd', 'me', 'mil', 'ne', 'net', 'nhs', 'nic', 'nom', 'or', 'org', 'plc', 'sch',
]);

export const PUBLIC_SUFFIXES: ReadonlySet<string> = new Set([
  // country second levels not caught by rule 2
  'asn.au', 'id.au', 'lg.jp', 'ed.jp', 'ad.jp', 'kyoto.jp', 'tokyo.jp', 'osaka.jp', 'priv.no', 'gv.at',
  'ac.at', 'or.at', 'co.at', 'blogspot.com', 'us.com', 'uk.com', 'eu.com', 'uk.net', 'gb.net', 'jpn.com',
  'br.com', 'cn.com', 'de.com', 'ru.com', 'za.com', 'us.org', 'eu.org',
  // code hosting and static pages
  'github.io', 'githubusercontent.com', 'gitlab.io', 'bitbucket.io', 'codeberg.page', 'sourceforge.io',
  'readthedocs.io', 'gitbook.io', 'pages.dev', 'workers.dev', 'r2.dev', 'vercel.app', 'now.sh',
  'netlify.app', 'netlify.com', 'surge.sh', 'web.app', 'firebaseapp.com', 'glitch.me', 'repl.co',
  'replit.app', 'replit.dev', 'deno.dev', 'fly.dev', 'onrender.com', 'railway.app', 'up.railway.app',
  'herokuapp.com', 'herokudns.com', 'pythonanywhere.com', 'pantheonsite.io', 'webflow.io', 'notion.site',
  'myshopify.com', 'wixsite.com', 'weebly.com', 'wordpress.com', 'tumblr.com', 'substack.com', 'ghost.io',
  'hashnode.dev', 'carrd.co', 'neocities.org', 'blogspot.co.uk', 'stackblitz.io', 'csb.app', 'gitpod.io',
  'ngrok.io', 'ngrok.app', 'ngrok-free.app', 'ngrok.dev', 'trycloudflare.com', 'loca.lt', 'serveo.net',
  // Google
  'appspot.com', 'run.app', 'cloudfunctions.net', 'googleusercontent.com', 'storage.googleapis.com',
  'firebasestorage.app', 'withgoogle.com', 'ondigitalocean.app', 'digitaloceanspaces.com',
  // Microsoft
  'azurewebsites.net', 'azurestaticapps.net', 'azureedge.net', 'azurefd.net', 'trafficmanager.net',
  'cloudapp.net', 'azurecontainer.io', 'azure-api.net', 'azure-mobile.net',
  // AWS (amazonaws.com is deep, below)
  'cloudfront.net', 'elasticbeanstalk.com', 'awsapprunner.com', 'amplifyapp.com', 'on.aws',
  // dynamic DNS
  'duckdns.org', 'dyndns.org', 'ddns.net', 'no-ip.org', 'no-ip.com', 'hopto.org', 'zapto.org', 'sytes.net',
  'freeddns.org', 'dynu.net', 'nip.io', 'sslip.io', 'xip.io', 'localtest.me', 'lvh.me',
]);

/** Everything under these is a public suffix too (customer names at several depths). */
export const DEEP_SUFFIXES: readonly string[] = ['amazonaws.com', 'windows.net', 'cloudapp.azure.com'];

/** Whether `name` (lower-case, no trailing dot) is a public suffix by the rules above. */
export function isPublicSuffix(name: string): boolean {
  const labels = name.split('.');
  if (labels.length <= 1) return true;
  if (labels.length === 2 && GENERIC_SECOND_LEVEL.has(labels[0]!) && /^[a-z]{2}$/.test(labels[1]!)) return true;
  if (PUBLIC_SUFFIXES.has(name)) return true;
  return DEEP_SUFFIXES.some((d) => name === d || name.endsWith(`.${d}`));
}

// ---------------------------------------------------------------------------
// Names

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/i;

/**
 * Why `name` is not a valid DNS host name, or null when it is. Checks the
 * shape only: labels of 1-63 letters, digits, '-' and '_' (not starting or
 * ending with '-'), at most 253 characters. Case is not checked.
 */
export function hostNameProblem(name: string): string | null {
  if (name.length === 0) return 'the host name is empty';
  if (name.length > 253) return 'the host name is longer than 253 characters';
  for (const label of name.split('.')) {
    if (label.length === 0) return 'the host name has an empty label';
    if (label.length > 63) return 'a label of the host name is longer than 63 characters';
    if (!LABEL.test(label)) {
      return /^-|-$/.test(label)
        ? `the label "${label}" starts or ends with "-"`
        : `the label "${label}" has characters other than letters, digits, "-" and "_"`;
    }
  }
  return null;
}

function punycodeHint(raw: string): string {
  let hint = '';
  try {
    const ascii = new URL(`http://${raw.replace(/^\*\./, 'wildcard-placeholder.')}/`).hostname;
    if (/^[\x21-\x7e]+$/.test(ascii)) hint = `: "${ascii.replace(/^wildcard-placeholder\./, '*.')}"`;
  } catch {
    // no hint
  }
  return `non-ASCII host names are not accepted; write the punycode (xn--) form${hint}`;
}

const fail = (reason: string): HostPatternResult => ({ ok: false, reason });

/** Validate and normalise a host pattern from a policy file. */
export function normalizeHostPattern(raw: string): HostPatternResult {
  if (typeof raw !== 'string' || raw.length === 0) return fail('the host pattern is empty');
  if (raw.length > 300) return fail('the host pattern is too long');
  if (/[\x00-\x1f\x7f]/.test(raw)) return fail('control characters are not allowed in a host pattern');
  if (/[^\x00-\x7f]/.test(raw)) return fail(punycodeHint(raw));
  if (/\s/.test(raw)) return fail('spaces are not allowed in a host pattern');
  if (raw.includes('://')) return fail('a host pattern is a host, not a URL: drop the scheme (and any path)');
  if (/^[0-9a-fA-F:.[\]]+\/\d+$/.test(raw)) return fail('address ranges (CIDR) are not supported; name exact addresses');
  if (/[/?#\\]/.test(raw)) return fail('paths belong in "paths", not in the host pattern');
  if (raw.includes('@')) return fail('user information ("user@") is not part of a host pattern');
  const s = raw.toLowerCase();

  if (s.startsWith('[') || s.includes(':')) {
    const close = s.indexOf(']');
    if (s.startsWith('[') && close >= 0 && close < s.length - 1) {
      return fail('ports are not part of a host pattern; use "ports"');
    }
    const ins = inspectIpLiteral(s);
    if (ins.kind === 'ip' && ins.ip.family === 6) return { ok: true, pattern: ins.ip.canonical, wildcard: false, kind: 'ipv6' };
    if (!s.startsWith('[') && /^[^:]*:[0-9]*$/.test(s)) return fail('ports are not part of a host pattern; use "ports"');
    return fail(ins.kind === 'invalid' ? ins.reason : 'not a valid IPv6 address');
  }
  if (s.includes('%')) return fail('percent-encoding is not allowed in a host pattern');

  const name = s.endsWith('.') ? s.slice(0, -1) : s;
  if (name === '' || name === '*') return fail(`"${raw}" is over-broad: it matches every host`);

  if (endsInNumber(name)) {
    if (name.includes('*')) return fail('wildcards are not allowed in IP addresses (and ranges are not supported)');
    const ip = parseIpLiteral(name);
    if (!ip) return fail('looks like an IPv4 address (its last label is a number) but is not a valid one');
    if (!isCanonicalIpv4(name)) return fail(`write the address as a plain dotted quad: "${ip.canonical}"`);
    return { ok: true, pattern: ip.canonical, wildcard: false, kind: 'ipv4' };
  }

  const wildcard = name.startsWith('*.');
  const base = wildcard ? name.slice(2) : name;
  if (base.includes('*')) return fail('a wildcard must be the whole leading label, as in "*.example.com"');
  const problem = hostNameProblem(base);
  if (problem) return fail(problem);
  if (wildcard && isPublicSuffix(base)) {
    return fail(`"${raw}" is over-broad: ${base} is a public suffix, so anyone can register names under it`);
  }
  return { ok: true, pattern: name, wildcard, kind: 'name' };
}

/**
 * Whether a normalised pattern covers a flow's host. The host should already
 * be normalised (identity.ts); case and one trailing dot are tolerated. A host
 * that is an IP literal matches only an IP pattern for the same address (in
 * whatever spelling the host uses); names never match IP patterns and the
 * other way round. A host that is not a valid name matches nothing.
 */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern.length === 0 || host.length === 0) return false;
  let h = host.toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  const hostIp = inspectIpLiteral(h);
  if (hostIp.kind === 'invalid') return false;
  const patternIp = parseIpLiteral(pattern);
  if (patternIp) return hostIp.kind === 'ip' && hostIp.ip.canonical === patternIp.canonical;
  if (hostIp.kind === 'ip' || hostNameProblem(h) !== null) return false;
  if (pattern.startsWith('*.')) {
    const base = pattern.slice(2);
    return h.length > base.length + 1 && h.endsWith(`.${base}`);
  }
  return h === pattern;
}
