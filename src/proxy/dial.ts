// Reaching upstream. The proxy resolves names itself (the policy's static
// hosts first, then the resolver), checks every candidate address with
// dialAllowed at dial time, and connects to the checked address as an IP
// literal, so nothing re-resolves between the check and the connect (DNS
// rebinding). Only public unicast addresses pass, unless an allow rule names
// the exact address. Upstream TLS verifies the real server against the host's
// trust store (plus an optional extra CA), pinned to HTTP/1.1.

import net from 'node:net';
import tls from 'node:tls';
import { CordonError } from '../errors.ts';
import { dialAllowed, formatIp, parseIpLiteral, type IpLiteral } from '../policy/ip.ts';
import type { PolicyView } from './policy-view.ts';

export type DialStage = 'resolve' | 'address' | 'connect' | 'tls';

export class DialError extends CordonError {
  readonly stage: DialStage;
  /** A policy refusal (address class), as opposed to a network failure. */
  readonly refused: boolean;
  constructor(stage: DialStage, message: string, refused = false) {
    super('CORDON_NETWORK_SETUP', message, { detail: { stage } });
    this.stage = stage;
    this.refused = refused;
  }
}

export interface Dialed {
  socket: net.Socket;
  /** The address connected to, "ip:port" ("[v6]:port"). */
  address: string;
}

export interface DialParams {
  host: string;
  port: number;
  view: PolicyView;
  resolve: (name: string) => Promise<string[]>;
  resolveMs: number;
  connectMs: number;
  /** Called with each socket as soon as it exists, so an aborted flow can destroy it. */
  track: (s: net.Socket) => void;
}

const hostPort = (ip: IpLiteral, port: number) => (ip.family === 6 ? `[${ip.canonical}]:${port}` : `${ip.canonical}:${port}`);

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DialError('resolve', `${what} timed out`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The addresses for a host: itself if an IP literal, else static hosts, else the resolver. */
async function addressesFor(p: DialParams): Promise<string[]> {
  const literal = parseIpLiteral(p.host);
  if (literal) return [literal.canonical];
  const fixed = p.view.staticAddresses(p.host);
  if (fixed) return [...fixed];
  let answers: string[];
  try {
    answers = await withTimeout(p.resolve(p.host), p.resolveMs, `resolving ${p.host}`);
  } catch (e) {
    if (e instanceof DialError) throw e;
    throw new DialError('resolve', `${p.host} does not resolve`);
  }
  if (!Array.isArray(answers) || answers.length === 0) throw new DialError('resolve', `${p.host} has no addresses`);
  return answers;
}

function connectOnce(ip: IpLiteral, port: number, p: DialParams): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: ip.canonical,
      port,
      family: ip.family,
      allowHalfOpen: true,
      noDelay: true,
      // The host is an IP literal: Node does not look it up. Refuse loudly if it ever tries.
      lookup: (_h, _o, cb) => (cb as (e: Error) => void)(new Error('the proxy never resolves at connect time')),
    });
    p.track(socket);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new DialError('connect', `connecting to ${hostPort(ip, port)} timed out`));
    }, p.connectMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
    const onError = (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new DialError('connect', `connecting to ${hostPort(ip, port)} failed (${e.code ?? e.message})`));
    };
    socket.once('error', onError);
  });
}

/**
 * Resolve, check and connect. Tries each permitted address in the resolver's
 * order until one connects. Throws DialError (refused=true when no address
 * may be dialled).
 */
export async function dial(p: DialParams): Promise<Dialed> {
  const raw = await addressesFor(p);
  const allowed: IpLiteral[] = [];
  let firstRefusal: string | null = null;
  for (const a of raw) {
    const ip = typeof a === 'string' ? parseIpLiteral(a) : null;
    if (!ip) {
      firstRefusal ??= `the resolver returned something that is not an address`;
      continue;
    }
    const v = dialAllowed(ip.bytes, p.view.exactAllowedFor(p.port));
    if (v.ok) allowed.push({ ...ip, canonical: formatIp(ip.bytes) });
    else firstRefusal ??= v.reason;
  }
  if (allowed.length === 0) throw new DialError('address', `${p.host} resolves only to addresses cordon will not dial: ${firstRefusal}`, true);
  let last: unknown;
  for (const ip of allowed) {
    try {
      const socket = await connectOnce(ip, p.port, p);
      return { socket, address: hostPort(ip, p.port) };
    } catch (e) {
      last = e;
    }
  }
  throw last instanceof DialError ? last : new DialError('connect', `connecting to ${p.host}:${p.port} failed`);
}

/**
 * The TLS context for upstream servers: the host's trust store (Node's
 * default and the system's) plus an extra CA. Built once per proxy: parsing
 * hundreds of roots per connection would cost more than the handshake.
 */
export function upstreamContext(extra?: string | Buffer): tls.SecureContext {
  const list = new Set<string>(tls.getCACertificates('default'));
  try {
    for (const c of tls.getCACertificates('system')) list.add(c);
  } catch {
    // no system store readable: Node's bundled roots remain
  }
  if (extra) list.add(extra.toString());
  return tls.createSecureContext({ ca: [...list], minVersion: 'TLSv1.2' });
}

/** TLS to the real server over a connected socket, verified for `host`, HTTP/1.1 only. */
export function upstreamTls(socket: net.Socket, host: string, context: tls.SecureContext, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const isIp = parseIpLiteral(host) !== null;
    const t = tls.connect({
      socket,
      ...(isIp ? {} : { servername: host }),
      secureContext: context,
      ALPNProtocols: ['http/1.1'],
      rejectUnauthorized: true,
      checkServerIdentity: (_name, cert) => tls.checkServerIdentity(host, cert),
    });
    const timer = setTimeout(() => {
      t.destroy();
      reject(new DialError('tls', `the TLS handshake with ${host} timed out`));
    }, timeoutMs);
    t.once('secureConnect', () => {
      clearTimeout(timer);
      t.off('error', onError);
      if (t.alpnProtocol && t.alpnProtocol !== 'http/1.1') {
        t.destroy();
        reject(new DialError('tls', `${host} chose ${t.alpnProtocol} over http/1.1`));
        return;
      }
      resolve(t);
    });
    const onError = (e: Error) => {
      clearTimeout(timer);
      reject(new DialError('tls', `the TLS handshake with ${host} failed: ${e.message}`));
    };
    t.once('error', onError);
  });
}
