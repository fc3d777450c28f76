// A flow whose destination is fixed - a transparently captured connection
// (to a synthetic address or an IP literal) or the inside of a CONNECT
// tunnel - from its first bytes to its end:
//
//   TLS   identity = claimed destination + SNI. Splice when the rules allow the
//         host outright and no inspector wants it; terminate when a rule
//         needs the request's method, path or body, an inspector wants the
//         flow, or the hello carries ECH (its hidden name could front another
//         origin). A denied host is terminated too, to answer a readable 403
//         over TLS (no byte goes upstream); identity failures just close.
//   HTTP  always relayed (never spliced): each request is judged.
//   raw   decided on the address and port only (protocol tcp), then spliced.
//   silent  (nothing sent within firstByteMs) a server-speaks-first protocol:
//         judged as raw TCP; if that is not allowed, wait for bytes.

import type net from 'node:net';
import { checkFlowIdentity, type FlowIdentityInput } from './identity.ts';
import { DialError } from './dial.ts';
import type { Flow } from './flow.ts';
import { relayHttp, type ConnectionDeny } from './http-relay.ts';
import { judge } from './judge.ts';
import { peekFlow } from './peek.ts';
import { splice } from './splice.ts';
import { terminateClientTls } from './tls-terminate.ts';
import { StreamReader } from './stream-reader.ts';
import { dialUpstream, UpstreamSlot, type Seed } from './upstream.ts';

export interface Claim {
  field: 'dialedAddress' | 'connect';
  /** "host:port" as the flow names it ("[v6]:port" for IPv6). */
  authority: string;
  host: string;
  port: number;
}

export async function runTunnel(flow: Flow, reader: StreamReader, claim: Claim, seed: Seed | null): Promise<void> {
  const ctx = flow.ctx;
  const t = ctx.timeouts;
  flow.set({ host: claim.host, port: claim.port });
  let peek = await peekFlow(reader, t.firstByteMs, t.handshakeMs);
  if (peek.kind === 'silent') {
    const j = judge(flow.view, { host: claim.host, port: claim.port, protocol: 'tcp' });
    if (j.kind === 'allow') return spliceRaw(flow, reader, claim, seed, j.rule, j.reason);
    peek = await peekFlow(reader, t.handshakeMs, t.handshakeMs);
    if (peek.kind === 'silent') {
      seed?.socket.destroy();
      flow.set({ protocol: 'unknown' });
      return flow.refuse('protocol', `the client sent nothing and raw TCP is not allowed (${j.kind === 'deny' ? j.reason : 'content rules only'})`);
    }
  }
  switch (peek.kind) {
    case 'empty':
      seed?.socket.destroy();
      return flow.refuse('protocol', 'the client ended without sending anything');
    case 'bad':
      seed?.socket.destroy();
      flow.set({ protocol: 'unknown' });
      return flow.refuse('protocol', peek.reason);
    case 'raw': {
      flow.set({ protocol: 'tcp' });
      const id = checkFlowIdentity({ [claim.field]: claim.authority });
      if (!id.ok) return flow.refuse('identity', id.reason);
      const j = judge(flow.view, { host: claim.host, port: claim.port, protocol: 'tcp' });
      if (j.kind !== 'allow') {
        seed?.socket.destroy();
        flow.set({ decision: j.kind === 'deny' ? j.decision : 'deny', rule: j.kind === 'deny' ? j.rule : null });
        return flow.refuse('policy', j.reason);
      }
      return spliceRaw(flow, reader, claim, seed, j.rule, j.reason);
    }
    case 'http': {
      flow.set({ protocol: 'http' });
      const j = judge(flow.view, { host: claim.host, port: claim.port, protocol: 'http' });
      flow.set(
        j.kind === 'allow'
          ? { decision: 'allow', rule: j.rule, reason: j.reason }
          : j.kind === 'need-content'
            ? { decision: 'per-request', reason: j.reason }
            : { decision: j.decision, rule: j.rule, reason: j.reason },
      );
      const slot = new UpstreamSlot(flow, seed);
      try {
        await relayHttp({
          flow,
          client: reader.stream,
          reader,
          target: { kind: 'fixed', claimField: claim.field, claim: claim.authority, host: claim.host, port: claim.port, tls: false },
          slot,
        });
      } finally {
        slot.close();
      }
      return;
    }
    case 'tls':
      return tlsFlow(flow, reader, claim, seed, peek.hello.sni, peek.hello.hasEch);
  }
}

async function spliceRaw(flow: Flow, reader: StreamReader, claim: Claim, seed: Seed | null, rule: number | null, reason: string): Promise<void> {
  flow.set({ protocol: flow.record.protocol === 'tls-splice' ? 'tls-splice' : 'tcp', decision: 'allow', rule, reason });
  const limits = flow.view.budget;
  const over = flow.ctx.budget.admit(limits, claim.host, claim.port);
  if (over) {
    seed?.socket.destroy();
    flow.set({ decision: 'deny' });
    return flow.refuse('policy', over);
  }
  const upstream = await dialFor(flow, claim, seed);
  if (!upstream) return;
  const c = reader.detach();
  const meter = flow.ctx.budget.meter(limits);
  const s = await splice({ stream: reader.stream, pending: c.pending, ended: c.ended, filters: meter ? [meter] : [] }, { stream: upstream });
  if (!s.clean) flow.set({ stage: 'relay', reason: `${reason}; ended uncleanly: ${s.error ?? 'reset'}` });
}

/** The seed connection or a fresh dial; null (flow refused) when the dial fails. */
async function dialFor(flow: Flow, claim: Claim, seed: Seed | null): Promise<net.Socket | null> {
  if (seed && !seed.socket.destroyed) {
    flow.set({ dialed: seed.address });
    return seed.socket;
  }
  try {
    return (await dialUpstream(flow, claim.host, claim.port)).socket;
  } catch (e) {
    flow.set({ decision: e instanceof DialError && e.refused ? 'deny' : flow.record.decision });
    flow.refuse('dial', e instanceof Error ? e.message : String(e));
    return null;
  }
}

async function tlsFlow(flow: Flow, reader: StreamReader, claim: Claim, seed: Seed | null, sni: string | null, hasEch: boolean): Promise<void> {
  const ctx = flow.ctx;
  flow.set({ sni, protocol: 'tls-splice' });
  const input: FlowIdentityInput = { [claim.field]: claim.authority, sni };
  const id = checkFlowIdentity(input);
  if (!id.ok) {
    seed?.socket.destroy();
    return flow.refuse('identity', id.reason);
  }
  const target = { host: claim.host, port: claim.port };
  const j = judge(flow.view, { ...target, protocol: 'http' });
  const wanted = ctx.inspectors.filter((i) => {
    try {
      return i.wants(target);
    } catch {
      return true; // an inspector that cannot answer gets to see the flow
    }
  });
  if (j.kind === 'allow' && wanted.length === 0 && !hasEch) {
    return spliceRaw(flow, reader, claim, seed, j.rule, j.reason);
  }
  let connectionDeny: ConnectionDeny | undefined;
  if (j.kind === 'deny') {
    seed?.socket.destroy();
    seed = null;
    connectionDeny = { deny: j.deny, reason: j.reason };
    flow.set({ decision: j.decision, rule: j.rule, reason: j.reason, stage: 'policy' });
  } else if (j.kind === 'allow') {
    const why = hasEch ? 'ECH offered' : `inspected by ${wanted.map((i) => i.name).join(', ')}`;
    flow.set({ decision: 'allow', rule: j.rule, reason: `${j.reason}; terminated: ${why}` });
  } else {
    flow.set({ decision: 'per-request', reason: j.reason });
  }
  flow.set({ protocol: 'tls-terminate' });
  let secure;
  try {
    secure = await terminateClientTls(flow, reader, claim.host);
    flow.clientTop = secure;
  } catch (e) {
    seed?.socket.destroy();
    return flow.refuse('protocol', e instanceof Error ? e.message : String(e));
  }
  const slot = new UpstreamSlot(flow, seed);
  try {
    await relayHttp({
      flow,
      client: secure,
      reader: new StreamReader(secure),
      target: { kind: 'fixed', claimField: claim.field, claim: claim.authority, host: claim.host, port: claim.port, sni, tls: true },
      slot,
      ...(connectionDeny ? { connectionDeny } : {}),
    });
  } finally {
    slot.close();
  }
}
