// The sandbox's resolver, as pure logic: query bytes in, response bytes and an
// audit fact out. Nothing is ever forwarded upstream; every answer is local:
//   - an allowed name gets, for A, one synthetic IPv4 address that the session
//     maps back to the name (the proxy resolves the real name itself, at dial
//     time, and checks the address class there); TTL 1-5 s
//   - AAAA and every other type for an allowed name: NOERROR, no answers
//     (IPv6 is not offered to the sandbox; TXT/NULL carry nothing)
//   - denied or unknown names, and names that are IP literals: NXDOMAIN
//   - names with bytes other than letters, digits, '-' and '_' (control,
//     non-ASCII, dots inside labels...), bad label shapes, non-IN classes:
//     REFUSED
//   - malformed packets, not exactly one question, compression or extended
//     labels in the question, over-long names: FORMERR; opcodes other than
//     QUERY: NOTIMP
//   - fewer than 12 bytes, or a packet that is itself a response: dropped (null)
// So a DNS tunnel through the resolver reaches nobody: the labels end in the
// audit log, not on the network.

import { Buffer } from 'node:buffer';
import * as dnsPacket from 'dns-packet';
import { hostNameProblem } from '../policy/host-pattern.ts';
import { endsInNumber, isCanonicalIpv4 } from '../policy/ip.ts';

export interface DnsContext {
  /** The policy's answer for a normalised name (lower-case, no trailing dot). */
  decide(name: string): 'allow' | 'deny';
  /** The session's synthetic IPv4 address for an allowed name. */
  addressFor(name: string): string;
  /** Answer TTL in seconds, clamped to 1..5 (default 1). */
  ttlSeconds?: number;
}

export type DnsRcode = 'NOERROR' | 'FORMERR' | 'SERVFAIL' | 'NXDOMAIN' | 'NOTIMP' | 'REFUSED' | 'BADVERS';

export interface DnsAuditFact {
  id: number;
  /** Normalised name; bytes outside printable ASCII as \DDD (RFC 1035 master-file escapes). Null if unreadable. */
  name: string | null;
  /** Query type mnemonic ("A", "TXT", "TYPE65"...). */
  type: string | null;
  /** 'allow'/'deny' are the policy's; the others mean the query never reached the policy. */
  decision: 'allow' | 'deny' | 'refused' | 'malformed' | 'error';
  rcode: DnsRcode;
  /** The synthetic address given, or null. */
  answer: string | null;
  reason: string;
}

export interface DnsAnswer {
  response: Uint8Array;
  audit: DnsAuditFact;
}

const RCODE: Record<DnsRcode, number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 };
const TYPE_A = 1;
const TYPE_AAAA = 28;
const CLASS_IN = 1;
const FLAG_QR = 0x8000;
const FLAG_AA = 0x0400;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;

const TYPE_NAMES: Record<number, string> = {
  1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 10: 'NULL', 12: 'PTR', 13: 'HINFO', 15: 'MX', 16: 'TXT', 28: 'AAAA',
  33: 'SRV', 35: 'NAPTR', 43: 'DS', 46: 'RRSIG', 48: 'DNSKEY', 52: 'TLSA', 64: 'SVCB', 65: 'HTTPS', 99: 'SPF',
  252: 'AXFR', 255: 'ANY', 257: 'CAA',
};

const typeName = (t: number) => TYPE_NAMES[t] ?? `TYPE${t}`;

interface RawQuestion {
  /** Labels as raw bytes. */
  labels: Uint8Array[];
  qtype: number;
  qclass: number;
  /** Offset just past the question. */
  end: number;
}

/** Read the single question without decoding it, so odd bytes are seen as bytes. */
function readQuestion(b: Uint8Array): RawQuestion | string {
  let off = 12;
  const labels: Uint8Array[] = [];
  let wire = 0;
  for (;;) {
    if (off >= b.length) return 'the question name is truncated';
    const len = b[off]!;
    off++;
    wire++;
    if (len === 0) break;
    if ((len & 0xc0) === 0xc0) return 'a compression pointer in the question';
    if (len & 0xc0) return 'an extended label type (or a label over 63 bytes)';
    if (off + len > b.length) return 'the question name is truncated';
    labels.push(b.subarray(off, off + len));
    off += len;
    wire += len;
    if (wire > 255) return 'the question name is over 255 bytes';
  }
  if (off + 4 > b.length) return 'the question is truncated';
  const qtype = (b[off]! << 8) | b[off + 1]!;
  const qclass = (b[off + 2]! << 8) | b[off + 3]!;
  return { labels, qtype, qclass, end: off + 4 };
}

function displayName(labels: readonly Uint8Array[]): string {
  return labels
    .map((l) =>
      Array.from(l, (c) =>
        c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c ? String.fromCharCode(c).toLowerCase() : `\\${String(c).padStart(3, '0')}`,
      ).join(''),
    )
    .join('.');
}

/** Header-only or header+raw-question response, for answers that must not re-encode the name. */
function rawResponse(query: Uint8Array, rcode: DnsRcode, questionEnd: number | null): Uint8Array {
  const qLen = questionEnd === null ? 0 : questionEnd - 12;
  const out = new Uint8Array(12 + qLen);
  const flagsIn = (query[2]! << 8) | query[3]!;
  const flags = FLAG_QR | (flagsIn & 0x7800) | (flagsIn & FLAG_RD) | FLAG_RA | (RCODE[rcode] & 0xf);
  out[0] = query[0]!;
  out[1] = query[1]!;
  out[2] = flags >> 8;
  out[3] = flags & 0xff;
  out[5] = questionEnd === null ? 0 : 1;
  if (questionEnd !== null) out.set(query.subarray(12, questionEnd), 12);
  return out;
}

/** Answer one DNS query. Null means: drop it silently. */
export function answerQuery(query: Uint8Array, ctx: DnsContext): DnsAnswer | null {
  if (query.length < 12) return null;
  const id = (query[0]! << 8) | query[1]!;
  const flagsIn = (query[2]! << 8) | query[3]!;
  if (flagsIn & FLAG_QR) return null; // a response: never answer one (no loops, no reflection)
  const fact = (f: Omit<DnsAuditFact, 'id'>): DnsAuditFact => ({ id, ...f });
  const bare = (rcode: DnsRcode, decision: DnsAuditFact['decision'], reason: string, name: string | null = null, type: string | null = null): DnsAnswer => ({
    response: rawResponse(query, rcode, null),
    audit: fact({ name, type, decision, rcode, answer: null, reason }),
  });

  const opcode = (flagsIn >> 11) & 0xf;
  if (opcode !== 0) return bare('NOTIMP', 'refused', `opcode ${opcode} is not supported`);
  const qd = (query[4]! << 8) | query[5]!;
  const an = (query[6]! << 8) | query[7]!;
  const ns = (query[8]! << 8) | query[9]!;
  if (qd !== 1) return bare('FORMERR', 'malformed', `${qd} questions (exactly one is answered)`);
  if (an !== 0 || ns !== 0) return bare('FORMERR', 'malformed', 'a query with answer or authority records');
  const q = readQuestion(query);
  if (typeof q === 'string') return bare('FORMERR', 'malformed', q);
  const shown = displayName(q.labels);
  const type = typeName(q.qtype);

  let decoded: dnsPacket.DecodedPacket;
  try {
    decoded = dnsPacket.decode(Buffer.from(query.buffer, query.byteOffset, query.length));
  } catch (e) {
    return bare('FORMERR', 'malformed', `the packet does not decode (${e instanceof Error ? e.message : 'error'})`, shown, type);
  }
  const opt = (decoded.additionals ?? []).find((a): a is dnsPacket.OptAnswer => a.type === 'OPT');

  const refuse = (rcode: DnsRcode, decision: DnsAuditFact['decision'], reason: string): DnsAnswer => ({
    response: rawResponse(query, rcode, q.end),
    audit: fact({ name: shown, type, decision, rcode, answer: null, reason }),
  });
  if (q.qclass !== CLASS_IN) return refuse('REFUSED', 'refused', `class ${q.qclass} is not IN`);
  for (const label of q.labels) {
    for (const c of label) {
      const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x5f;
      if (!ok) return refuse('REFUSED', 'refused', 'the name has bytes other than letters, digits, "-" and "_"');
    }
  }
  const original = q.labels.map((l) => String.fromCharCode(...l)).join('.');
  const name = original.toLowerCase();
  const problem = hostNameProblem(name);
  if (problem) return refuse('REFUSED', 'refused', problem);

  const reply = (rcode: DnsRcode, decision: 'allow' | 'deny' | 'error', reason: string, answer: string | null): DnsAnswer => {
    const ttl = Math.min(5, Math.max(1, Math.floor(ctx.ttlSeconds ?? 1)));
    const packet: dnsPacket.Packet = {
      type: 'response',
      id,
      flags: (flagsIn & FLAG_RD) | FLAG_AA | FLAG_RA | (RCODE[rcode] & 0xf),
      questions: [{ name: original, type: decoded.questions![0]!.type, class: 'IN' }],
      answers: answer === null ? [] : [{ type: 'A', name: original, ttl, class: 'IN', data: answer }],
    };
    if (opt) {
      packet.additionals = [
        { type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: RCODE[rcode] >> 4, ednsVersion: 0, flags: 0, flag_do: false, options: [] },
      ];
    }
    return { response: new Uint8Array(dnsPacket.encode(packet)), audit: fact({ name, type, decision, rcode, answer, reason }) };
  };

  if (opt && opt.ednsVersion !== 0) return reply('BADVERS', 'error', `EDNS version ${opt.ednsVersion} is not supported`, null);
  if (endsInNumber(name)) return reply('NXDOMAIN', 'deny', 'the name is (or looks like) an IP literal', null);

  let verdict: 'allow' | 'deny';
  try {
    verdict = ctx.decide(name) === 'allow' ? 'allow' : 'deny';
  } catch {
    return reply('SERVFAIL', 'error', 'the policy could not decide', null);
  }
  if (verdict === 'deny') return reply('NXDOMAIN', 'deny', 'the name is not allowed', null);
  if (q.qtype === TYPE_A) {
    let addr: string;
    try {
      addr = ctx.addressFor(name);
    } catch {
      return reply('SERVFAIL', 'error', 'no synthetic address is available', null);
    }
    if (typeof addr !== 'string' || !isCanonicalIpv4(addr)) return reply('SERVFAIL', 'error', 'the synthetic address is not an IPv4 address', null);
    return reply('NOERROR', 'allow', 'allowed: synthetic address', addr);
  }
  const why = q.qtype === TYPE_AAAA ? 'allowed: IPv6 is not offered to the sandbox' : `allowed: ${type} records are not served`;
  return reply('NOERROR', 'allow', why, null);
}

// ---------------------------------------------------------------------------
// DNS over TCP: each message is preceded by its length (RFC 1035 4.2.2).

export function encodeTcpFrame(message: Uint8Array): Uint8Array {
  if (message.length > 0xffff) throw new RangeError('a DNS message over TCP is at most 65535 bytes');
  const out = new Uint8Array(message.length + 2);
  out[0] = message.length >> 8;
  out[1] = message.length & 0xff;
  out.set(message, 2);
  return out;
}

/**
 * Split a TCP byte stream into messages. `rest` is an incomplete trailing
 * frame to prepend to the next read; `error` (a zero-length frame) means
 * close the connection.
 */
export function decodeTcpFrames(stream: Uint8Array): { frames: Uint8Array[]; rest: Uint8Array; error?: string } {
  const frames: Uint8Array[] = [];
  let off = 0;
  while (off + 2 <= stream.length) {
    const len = (stream[off]! << 8) | stream[off + 1]!;
    if (len === 0) return { frames, rest: stream.subarray(off), error: 'a zero-length DNS message' };
    if (off + 2 + len > stream.length) break;
    frames.push(stream.subarray(off + 2, off + 2 + len));
    off += 2 + len;
  }
  return { frames, rest: stream.subarray(off) };
}
