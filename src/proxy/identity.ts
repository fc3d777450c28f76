// The one identity of a flow. A flow may name its destination several times:
// the CONNECT authority, the TLS SNI, the Host header, an absolute-form
// request URI, and (for transparently captured flows) the address it dialled,
// mapped back to a name when it is one of cordon's synthetic DNS answers.
// Every name is parsed strictly and normalised; all present names must agree,
// or the flow is refused. Rules are then decided on that single identity.
//
// Normalised form: lower-case ASCII, one trailing dot removed; IP literals in
// any spelling a client accepts (0x7f.1, 2130706433, [::ffff:127.0.0.1])
// become their canonical address, so they are decided and dialled as what they
// are. Pure: no I/O.

import { hostNameProblem } from '../policy/host-pattern.ts';
import { inspectIpLiteral } from '../policy/ip.ts';

export type HostKind = 'name' | 'ipv4' | 'ipv6';

export interface Authority {
  /** Normalised host: lower-case name or canonical IP (IPv6 without brackets). */
  host: string;
  /** The port given, else the default port passed in, else null. */
  port: number | null;
  /** Whether the text carried a port. */
  explicitPort: boolean;
  kind: HostKind;
}

export type AuthorityResult = ({ ok: true } & Authority) | { ok: false; reason: string };

const MAX_AUTHORITY = 300;

function refuse(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

/** Character-level refusals shared by every name a flow presents. */
function textProblem(s: string): string | null {
  if (s.length === 0) return 'empty';
  if (s.length > MAX_AUTHORITY) return 'too long';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0) return 'contains a NUL byte';
    if (c < 0x20 || c === 0x7f) return 'contains a control character';
    if (c === 0x20) return 'contains a space';
    if (c > 0x7e) return 'contains non-ASCII characters (internationalised names travel in punycode, xn--)';
  }
  if (s.includes('@')) return 'contains user information ("@")';
  if (s.includes('%')) return 'contains "%" (percent-encoding and IPv6 zone ids are refused)';
  if (/[/?#\\]/.test(s)) return 'contains "/", "?", "#" or "\\"';
  return null;
}

/** Normalise a bare host (no port): a name or an IP literal in any spelling. */
function normalizeHostPart(raw: string): { ok: true; host: string; kind: HostKind } | { ok: false; reason: string } {
  if (raw.startsWith('[')) {
    if (!raw.endsWith(']')) return refuse('unbalanced "["');
    const ins = inspectIpLiteral(raw.toLowerCase());
    if (ins.kind !== 'ip' || ins.ip.family !== 6) return refuse(ins.kind === 'invalid' ? ins.reason : 'brackets hold an IPv6 address only');
    return { ok: true, host: ins.ip.canonical, kind: 'ipv6' };
  }
  if (raw.includes(']')) return refuse('unbalanced "]"');
  let h = raw.toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h.length === 0) return refuse('empty host');
  const ins = inspectIpLiteral(h);
  if (ins.kind === 'invalid') return refuse(ins.reason);
  if (ins.kind === 'ip') return { ok: true, host: ins.ip.canonical, kind: ins.ip.family === 4 ? 'ipv4' : 'ipv6' };
  const problem = hostNameProblem(h);
  if (problem) return refuse(problem);
  return { ok: true, host: h, kind: 'name' };
}

/**
 * Parse `host`, `host:port`, `[v6]` or `[v6]:port` (CONNECT authority, Host
 * header, URI authority). Refuses control bytes (NUL included), spaces,
 * userinfo, percent-encoding, zone ids, empty labels, over-long names,
 * non-ASCII, unbracketed IPv6, empty or out-of-range ports. When no port is
 * given, `port` is `defaultPort` (null: none).
 */
export function parseAuthority(s: string, defaultPort: number | null): AuthorityResult {
  const problem = textProblem(s);
  if (problem) return refuse(`the authority ${problem}`);
  let hostText: string;
  let portText: string | null = null;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) return refuse('unbalanced "["');
    hostText = s.slice(0, close + 1);
    const rest = s.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return refuse('unexpected text after "]"');
      portText = rest.slice(1);
    }
  } else {
    const first = s.indexOf(':');
    if (first !== s.lastIndexOf(':')) return refuse('IPv6 addresses must be in brackets');
    if (first >= 0) {
      hostText = s.slice(0, first);
      portText = s.slice(first + 1);
    } else hostText = s;
  }
  let port = defaultPort;
  if (portText !== null) {
    if (!/^[0-9]{1,5}$/.test(portText)) return refuse(portText === '' ? 'empty port' : 'invalid port');
    port = Number(portText);
    if (port < 1 || port > 65535) return refuse('port out of range');
  }
  const h = normalizeHostPart(hostText);
  if (!h.ok) return h;
  return { ok: true, host: h.host, port, explicitPort: portText !== null, kind: h.kind };
}

/** Parse a TLS server name: a host name only (no port, no brackets). IP literals are reported by kind. */
export function parseServerName(s: string): AuthorityResult {
  const problem = textProblem(s);
  if (problem) return refuse(`the server name ${problem}`);
  if (s.includes(':') || s.includes('[')) return refuse('the server name has a port or brackets');
  const h = normalizeHostPart(s);
  if (!h.ok) return h;
  return { ok: true, host: h.host, port: null, explicitPort: false, kind: h.kind };
}

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443, ws: 80, wss: 443 };

export type AbsoluteUriResult =
  | { ok: true; scheme: string; authority: Authority; pathAndQuery: string }
  | { ok: false; reason: string };

/** Parse an absolute-form request target (`http://host[:port]/path?query`). */
export function parseAbsoluteUri(s: string): AbsoluteUriResult {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/s.exec(s);
  if (!m) return refuse('not an absolute URI');
  const scheme = m[1]!.toLowerCase();
  const dflt = DEFAULT_PORTS[scheme];
  if (dflt === undefined) return refuse(`the scheme "${scheme}" is not supported`);
  const rest = m[3]!;
  if (rest !== '' && !rest.startsWith('/') && !rest.startsWith('?')) return refuse('malformed URI');
  const a = parseAuthority(m[2]!, dflt);
  if (!a.ok) return a;
  const { ok: _ok, ...authority } = a;
  return { ok: true, scheme, authority, pathAndQuery: rest === '' ? '/' : rest };
}

export interface Identity {
  host: string;
  port?: number | null;
}

/** Same host, and the same port when both carry one. Inputs must be normalised. */
export function sameIdentity(a: Identity, b: Identity): boolean {
  if (a.host !== b.host) return false;
  if (a.port === undefined || a.port === null || b.port === undefined || b.port === null) return true;
  return a.port === b.port;
}

export interface FlowIdentityInput {
  /** CONNECT authority-form target; a port is required. */
  connect?: string;
  /** Transparently captured flows: the dialled `host:port`, synthetic addresses mapped back to their name. */
  dialedAddress?: string;
  /** Absolute-form request target. */
  absoluteUri?: string;
  /** Host header value. */
  host?: string;
  /** TLS server name; null when a ClientHello carried none; absent when the flow is not TLS. */
  sni?: string | null;
}

export type FlowField = keyof FlowIdentityInput;

export type FlowIdentityResult =
  | { ok: true; identity: { host: string; port: number | null; kind: HostKind }; sources: FlowField[] }
  | { ok: false; reason: string; field: FlowField | null };

/**
 * Check that every name a flow presents denotes the same destination, and
 * return it. Refuses: any name that fails to parse; a CONNECT or dialled
 * address without a port; an SNI that is an IP literal (RFC 6066); a TLS
 * flow to a name without SNI; any disagreement in host, or in port where both
 * names carry one (a Host header without a port carries none; an absolute URI
 * always carries one, explicit or by scheme).
 */
export function checkFlowIdentity(input: FlowIdentityInput): FlowIdentityResult {
  const order: FlowField[] = ['connect', 'dialedAddress', 'absoluteUri', 'host', 'sni'];
  const parsed: Array<{ field: FlowField; a: Authority }> = [];
  for (const field of order) {
    const v = input[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') return { ok: false, reason: `${field} is not text`, field };
    let r: AuthorityResult;
    if (field === 'absoluteUri') {
      const u = parseAbsoluteUri(v);
      r = u.ok ? { ok: true, ...u.authority } : u;
    } else if (field === 'sni') {
      r = parseServerName(v);
      if (r.ok && r.kind !== 'name') return { ok: false, reason: 'the TLS server name (SNI) is an IP literal', field };
    } else {
      r = parseAuthority(v, null);
      if (r.ok && (field === 'connect' || field === 'dialedAddress') && !r.explicitPort) {
        return { ok: false, reason: `${field} has no port`, field };
      }
    }
    if (!r.ok) return { ok: false, reason: `${field}: ${r.reason}`, field };
    const { ok: _ok, ...a } = r;
    parsed.push({ field, a });
  }
  const primary = parsed[0];
  if (!primary) return { ok: false, reason: 'the flow names no destination', field: null };
  for (const other of parsed.slice(1)) {
    if (!sameIdentity(primary.a, other.a)) {
      const what = primary.a.host === other.a.host ? 'port' : 'host';
      return {
        ok: false,
        reason: `${other.field} (${fmt(other.a)}) does not match ${primary.field} (${fmt(primary.a)}): ${what} differs`,
        field: other.field,
      };
    }
  }
  if (input.sni === null && primary.a.kind === 'name') {
    return { ok: false, reason: 'the TLS ClientHello carries no server name (SNI)', field: 'sni' };
  }
  const port = parsed.find((p) => p.a.port !== null)?.a.port ?? null;
  return { ok: true, identity: { host: primary.a.host, port, kind: primary.a.kind }, sources: parsed.map((p) => p.field) };
}

function fmt(a: Authority): string {
  const h = a.kind === 'ipv6' ? `[${a.host}]` : a.host;
  return a.port !== null && a.explicitPort ? `${h}:${a.port}` : h;
}
