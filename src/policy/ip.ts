// IP literals and address classes. Pure: no I/O, no node:* imports.
//
// Two jobs:
//  1. Recognise every spelling of an address that a real client or resolver
//     would accept, so an attacker's spelling is seen as the address it is.
//     IPv4 follows inet_aton and the WHATWG URL host parser: 1-4 parts, each
//     decimal, octal (leading 0) or hex (0x); the last part fills the remaining
//     bytes (`127.1`, `0x7f.1`, `2130706433`). IPv6 follows RFC 4291 text form
//     with an optional dotted-quad tail; zone ids (`fe80::1%eth0`) are reported
//     and refused: a zone names an interface of the proxy host.
//  2. Classify an address, so the proxy dials only public unicast space unless
//     the user named the exact address.
//
// Canonical text: IPv4 as a dotted quad without leading zeros; IPv6 as the
// WHATWG URL serializer writes it (RFC 5952 compression, lower-case hex, and
// hex even for an embedded IPv4 tail: `::ffff:7f00:1`).

export type IpFamily = 4 | 6;

export interface IpLiteral {
  family: IpFamily;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
  canonical: string;
}

export type IpInspection =
  | { kind: 'ip'; ip: IpLiteral }
  /** Looks like an IP literal (ends in a number, has ':', is bracketed) but is not a valid one. */
  | { kind: 'invalid'; reason: string }
  | { kind: 'not-ip' };

export type AddressClass =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'metadata'
  | 'cgnat'
  | 'unspecified'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'documentation'
  | 'benchmark'
  | 'nat64'
  | '6to4'
  | 'teredo'
  | 'ipv4-mapped'
  | 'ipv4-compatible'
  | 'ipv4-translated'
  | 'unique-local';

export interface EmbeddedIpv4 {
  /** How the IPv6 address carries it. For Teredo this is the client's (de-obfuscated) address. */
  via: 'ipv4-mapped' | 'ipv4-compatible' | 'ipv4-translated' | 'nat64' | '6to4' | 'teredo';
  bytes: Uint8Array;
  canonical: string;
  class: AddressClass;
}

// ---------------------------------------------------------------------------
// IPv4

const DIGITS = /^[0-9]+$/;
const OCTAL = /^[0-7]+$/;
const HEX = /^[0-9a-fA-F]*$/;

/** One part of an inet_aton/WHATWG IPv4 literal, or null. */
function ipv4Part(part: string): number | null {
  if (part.length === 0 || part.length > 40) return null;
  let value: number;
  if (part.length >= 2 && part[0] === '0' && (part[1] === 'x' || part[1] === 'X')) {
    const digits = part.slice(2);
    if (!HEX.test(digits)) return null;
    value = digits === '' ? 0 : parseInt(digits, 16);
  } else if (part.length >= 2 && part[0] === '0') {
    if (!OCTAL.test(part)) return null;
    value = parseInt(part, 8);
  } else {
    if (!DIGITS.test(part)) return null;
    value = parseInt(part, 10);
  }
  return Number.isFinite(value) ? value : null;
}

/** True when the last label is numeric, i.e. a URL parser would treat the host as IPv4. */
export function endsInNumber(host: string): boolean {
  const parts = host.split('.');
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  const last = parts[parts.length - 1] ?? '';
  return last !== '' && (DIGITS.test(last) || /^0[xX][0-9a-fA-F]*$/.test(last));
}

function parseIpv4(s: string): Uint8Array | null {
  const parts = s.split('.');
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  if (parts.length === 0 || parts.length > 4) return null;
  const nums: number[] = [];
  for (const p of parts) {
    const n = ipv4Part(p);
    if (n === null) return null;
    nums.push(n);
  }
  const last = nums.pop()!;
  for (const n of nums) if (n > 255) return null;
  if (last >= 256 ** (4 - nums.length)) return null;
  const out = new Uint8Array(4);
  nums.forEach((n, i) => (out[i] = n));
  let rest = last;
  for (let i = 3; i >= nums.length; i--) {
    out[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  return out;
}

/** `a.b.c.d`, each 0-255 in decimal without leading zeros. */
export function isCanonicalIpv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

// ---------------------------------------------------------------------------
// IPv6

const HEXGROUP = /^[0-9a-fA-F]{1,4}$/;

/** The strict dotted quad allowed as the tail of an IPv6 address (inet_pton: no leading zeros). */
function strictDottedQuad(s: string): number[] | null {
  return isCanonicalIpv4(s) ? s.split('.').map(Number) : null;
}

function parseIpv6(s: string): Uint8Array | null {
  if (s.length < 2 || s.length > 45) return null;
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parseSide = (side: string, isTail: boolean): number[] | null => {
    if (side === '') return [];
    const pieces = side.split(':');
    const groups: number[] = [];
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (isTail && i === pieces.length - 1 && piece.includes('.')) {
        const q = strictDottedQuad(piece);
        if (!q) return null;
        groups.push((q[0]! << 8) | q[1]!, (q[2]! << 8) | q[3]!);
      } else if (HEXGROUP.test(piece)) {
        groups.push(parseInt(piece, 16));
      } else {
        return null;
      }
    }
    return groups;
  };
  let groups: number[];
  if (halves.length === 2) {
    const head = parseSide(halves[0]!, false);
    const tail = parseSide(halves[1]!, true);
    if (!head || !tail || head.length + tail.length > 7) return null;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = parseSide(s, true);
    if (!all || all.length !== 8) return null;
    groups = all;
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

function formatIpv6(b: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  // Longest run of at least two zero groups; the first one wins a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** Canonical text for 4 or 16 address bytes. */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length === 16) return formatIpv6(bytes);
  throw new RangeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
}

// ---------------------------------------------------------------------------
// Parsing entry points

/**
 * Recognise an IP literal in any spelling a client would accept. Brackets are
 * allowed around IPv6 only. Case-insensitive. One trailing dot is accepted on
 * IPv4 forms (URL parsers do). Zone ids are refused with a reason.
 */
export function inspectIpLiteral(input: string): IpInspection {
  let s = input;
  let bracketed = false;
  if (s.startsWith('[')) {
    if (!s.endsWith(']')) return { kind: 'invalid', reason: 'unbalanced "[" in an IPv6 literal' };
    s = s.slice(1, -1);
    bracketed = true;
  }
  if (s.includes('%')) {
    const before = s.slice(0, s.indexOf('%'));
    if (parseIpv6(before)) {
      return { kind: 'invalid', reason: 'IPv6 zone ids ("%eth0") name an interface of the proxy host and are refused' };
    }
    return bracketed ? { kind: 'invalid', reason: 'not a valid IPv6 address' } : { kind: 'not-ip' };
  }
  if (bracketed || s.includes(':')) {
    const b = parseIpv6(s);
    if (!b) return { kind: 'invalid', reason: bracketed ? 'brackets hold an IPv6 address only' : 'not a valid IPv6 address' };
    return { kind: 'ip', ip: { family: 6, bytes: b, canonical: formatIpv6(b) } };
  }
  if (!endsInNumber(s)) return { kind: 'not-ip' };
  const b = parseIpv4(s);
  if (!b) return { kind: 'invalid', reason: 'looks like an IPv4 address (its last label is a number) but is not a valid one' };
  return { kind: 'ip', ip: { family: 4, bytes: b, canonical: formatIp(b) } };
}

/** The address an IP literal denotes, in any accepted spelling; null otherwise (zone ids included). */
export function parseIpLiteral(s: string): IpLiteral | null {
  const r = inspectIpLiteral(s);
  return r.kind === 'ip' ? r.ip : null;
}

// ---------------------------------------------------------------------------
// Classification

interface Cidr {
  bytes: Uint8Array;
  bits: number;
  cls: AddressClass;
}

function cidr(text: string, cls: AddressClass): Cidr {
  const [addr, bits] = text.split('/') as [string, string];
  const ip = parseIpLiteral(addr);
  if (!ip) throw new Error(`bad built-in CIDR ${text}`);
  return { bytes: ip.bytes, bits: Number(bits), cls };
}

function inCidr(b: Uint8Array, c: Cidr): boolean {
  if (b.length !== c.bytes.length) return false;
  let bits = c.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((b[i]! & mask) !== (c.bytes[i]! & mask)) return false;
  }
  return true;
}

/**
 * Cloud metadata endpoints. They are in non-public ranges anyway; naming them
 * makes audit records say what the agent was reaching for.
 */
export const METADATA_ADDRESSES: readonly string[] = [
  '169.254.169.254', // AWS, GCP, Azure, OCI, DigitalOcean, OpenStack...
  '169.254.170.2', // AWS ECS task credentials
  '169.254.170.23', // AWS EKS Pod Identity agent
  '100.100.100.200', // Alibaba Cloud
  '192.0.0.192', // Oracle Cloud (classic)
  'fd00:ec2::254', // AWS IMDS over IPv6
  'fd00:ec2::23', // AWS EKS Pod Identity agent over IPv6
];

// First match wins. Anything not listed is public for IPv4; for IPv6 only
// 2000::/3 (global unicast) outside the special blocks is public.
const V4_TABLE: readonly Cidr[] = [
  ...METADATA_ADDRESSES.filter((a) => !a.includes(':')).map((a) => cidr(`${a}/32`, 'metadata')),
  cidr('0.0.0.0/32', 'unspecified'),
  cidr('0.0.0.0/8', 'reserved'), // "this network"; Linux treats 0.0.0.0 as local
  cidr('10.0.0.0/8', 'private'),
  cidr('100.64.0.0/10', 'cgnat'),
  cidr('127.0.0.0/8', 'loopback'),
  cidr('169.254.0.0/16', 'link-local'),
  cidr('172.16.0.0/12', 'private'),
  cidr('192.0.0.0/24', 'reserved'), // IETF protocol assignments
  cidr('192.0.2.0/24', 'documentation'),
  cidr('192.88.99.0/24', 'reserved'), // former 6to4 relay anycast
  cidr('192.168.0.0/16', 'private'),
  cidr('198.18.0.0/15', 'benchmark'),
  cidr('198.51.100.0/24', 'documentation'),
  cidr('203.0.113.0/24', 'documentation'),
  cidr('224.0.0.0/4', 'multicast'),
  cidr('255.255.255.255/32', 'broadcast'),
  cidr('240.0.0.0/4', 'reserved'),
];

const V6_TABLE: readonly Cidr[] = [
  ...METADATA_ADDRESSES.filter((a) => a.includes(':')).map((a) => cidr(`${a}/128`, 'metadata')),
  cidr('::/128', 'unspecified'),
  cidr('::1/128', 'loopback'),
  cidr('::ffff:0:0/96', 'ipv4-mapped'),
  cidr('::ffff:0:0:0/96', 'ipv4-translated'), // SIIT, RFC 2765
  cidr('::/96', 'ipv4-compatible'), // deprecated, RFC 4291
  cidr('64:ff9b::/96', 'nat64'), // RFC 6052 well-known prefix
  cidr('64:ff9b:1::/48', 'nat64'), // RFC 8215 local-use
  cidr('100::/64', 'reserved'), // discard-only
  cidr('2001::/32', 'teredo'),
  cidr('2001:2::/48', 'benchmark'),
  cidr('2001:db8::/32', 'documentation'),
  cidr('2001::/23', 'reserved'), // IETF protocol assignments (ORCHID, AMT, AS112...)
  cidr('2002::/16', '6to4'),
  cidr('3fff::/20', 'documentation'), // RFC 9637
  cidr('5f00::/16', 'reserved'), // SRv6 SIDs
  cidr('fc00::/7', 'unique-local'),
  cidr('fe80::/10', 'link-local'),
  cidr('fec0::/10', 'reserved'), // deprecated site-local
  cidr('ff00::/8', 'multicast'),
  cidr('2000::/3', 'public'),
  cidr('::/0', 'reserved'),
];

const V6_NAT64_WKP = cidr('64:ff9b::/96', 'nat64');

/** The class of a 4- or 16-byte address. Anything malformed is 'reserved'. */
export function classifyAddress(bytes: Uint8Array): AddressClass {
  const table = bytes.length === 4 ? V4_TABLE : bytes.length === 16 ? V6_TABLE : null;
  if (!table) return 'reserved';
  for (const c of table) if (inCidr(bytes, c)) return c.cls;
  return bytes.length === 4 ? 'public' : 'reserved';
}

/**
 * The IPv4 address an IPv6 address carries, for the forms that carry one:
 * mapped, compatible, translated and NAT64 /96 (last 32 bits), 6to4 (bits
 * 16-47), Teredo (the client address, bits 96-127 inverted). For the RFC 8215
 * local-use NAT64 prefix the embedding depends on an unknown prefix length,
 * so nothing is reported. Null for IPv4 input and every other form.
 */
export function embeddedIpv4(bytes: Uint8Array): EmbeddedIpv4 | null {
  if (bytes.length !== 16) return null;
  const cls = classifyAddress(bytes);
  let v4: Uint8Array;
  let via: EmbeddedIpv4['via'];
  switch (cls) {
    case 'ipv4-mapped':
    case 'ipv4-compatible':
    case 'ipv4-translated':
      via = cls;
      v4 = bytes.slice(12, 16);
      break;
    case 'nat64':
      if (!inCidr(bytes, V6_NAT64_WKP)) return null;
      via = 'nat64';
      v4 = bytes.slice(12, 16);
      break;
    case '6to4':
      via = '6to4';
      v4 = bytes.slice(2, 6);
      break;
    case 'teredo':
      via = 'teredo';
      v4 = bytes.slice(12, 16).map((x) => x ^ 0xff);
      break;
    default:
      return null;
  }
  return { via, bytes: v4, canonical: formatIp(v4), class: classifyAddress(v4) };
}


export type DialVerdict = { ok: true } | { ok: false; reason: string };

/**
 * Whether the proxy may open a connection to this address. Only 'public'
 * addresses pass, unless the exact canonical address is in `exactAllowed`
 * (entries in any accepted spelling; a mapped or NAT64 form of an allowed
 * IPv4 address is a different address and does not pass).
 */
export function dialAllowed(bytes: Uint8Array, exactAllowed: readonly string[]): DialVerdict {
  if (bytes.length !== 4 && bytes.length !== 16) return { ok: false, reason: 'not an IP address' };
  const canonical = formatIp(bytes);
  if (exactAllowed.some((a) => parseIpLiteral(a)?.canonical === canonical)) return { ok: true };
  const cls = classifyAddress(bytes);
  if (cls === 'public') return { ok: true };
  const inner = embeddedIpv4(bytes);
  const extra = inner ? ` (it carries ${inner.canonical}, a ${inner.class} address)` : '';
  return { ok: false, reason: `${canonical} is a ${cls} address${extra}` };
}
