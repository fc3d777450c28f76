// The session's egress proxy: the only route out of the sandbox. The
// forwarder (cordon-netcap) delivers every captured TCP flow, and the DNS
// channel, over a Unix socket; this module accepts them and routes each:
//
//   198.18.0.1:3128     explicit proxy (HTTP_PROXY): CONNECT and absolute-form
//   198.18.0.53:53      DNS over TCP to the sandbox resolver
//   198.19.0.0/16       a synthetic DNS answer: mapped back to its name
//   anything else       a transparent flow to that IP literal
//   (other 198.18.0.0/15 addresses are cordon's and are refused)
//
// Then: one identity per flow (identity.ts), a decision (decide-network.ts),
// a dial to a checked address (dial.ts), and a splice or a terminated,
// request-by-request relay (tunnel.ts, http-relay.ts). Every flow ends in one
// `net.flow` audit record; relayed requests add `net.request` records; DNS
// queries are `dns.query` records.
//
// RELOAD: reload(policy) swaps the rules atomically and closes every open
// flow (all of them, whatever the new policy would say: the simplest rule
// that can never leave a connection running under rules that no longer
// hold). New flows use the new policy. The DNS channel stays open (its
// answers always use the current policy), and synthetic addresses keep their
// names.
//
// One instance per session; no module-level state. A failure inside one
// flow ends that flow (fail closed, audited) and nothing else.

import { lookup } from 'node:dns/promises';
import { chmod } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import { asCordonError, CordonError } from '../errors.ts';
import { formatIp } from '../policy/ip.ts';
import { upstreamContext } from './dial.ts';
import { serveDnsChannel, serveDnsTcp } from './dns-server.ts';
import { runExplicit } from './explicit.ts';
import { Flow, type ProxyContext } from './flow.ts';
import { readForwarderHeader } from './forwarder-header.ts';
import { compilePolicy, type PolicyView } from './policy-view.ts';
import { ReadTimeout, StreamAborted, StreamReader } from './stream-reader.ts';
import { BodyError } from './http-body.ts';
import { isSyntheticAddress, SyntheticAddresses } from './synthetic.ts';
import { runTunnel } from './tunnel.ts';
import { DEFAULT_TIMEOUTS, type ProxyOptions, type ProxyPolicy, type ProxyStats, type SessionProxy } from './types.ts';
import { EgressBudget } from './budget.ts';

export type {
  FlowMode,
  FlowProtocol,
  FlowTarget,
  Header,
  InspectedRequest,
  InspectedResponse,
  Inspector,
  InspectorVerdict,
  ProxyOptions,
  ProxyPolicy,
  ProxyStats,
  ProxyTimeouts,
  SessionProxy,
} from './types.ts';
export { DEFAULT_TIMEOUTS } from './types.ts';
export { createSessionCa, type LeafCertificate, type SessionCa, type SessionCaOptions } from './ca.ts';
export { APPROVAL_UNAVAILABLE } from './judge.ts';

export const EXPLICIT_PROXY = { address: '198.18.0.1', port: 3128 } as const;
export const RESOLVER = { address: '198.18.0.53', port: 53 } as const;

async function hostResolve(name: string): Promise<string[]> {
  const all = await lookup(name, { all: true, verbatim: true });
  return all.map((a) => a.address);
}

const MAX_LEAF_CONTEXTS = 1000;

export function createSessionProxy(opts: ProxyOptions): SessionProxy {
  if (!opts || typeof opts.sessionId !== 'string' || opts.sessionId === '') throw new CordonError('CORDON_USAGE', 'createSessionProxy needs a sessionId');
  if (typeof opts.audit !== 'function') throw new CordonError('CORDON_USAGE', 'createSessionProxy needs an audit callback');
  let view: PolicyView = compilePolicy(opts.policy, 1);
  const stats: ProxyStats = {
    generation: 1,
    flowsActive: 0,
    flowsTotal: 0,
    flowsAllowed: 0,
    flowsDenied: 0,
    requests: 0,
    requestsDenied: 0,
    dnsQueries: 0,
    bytesUp: 0,
    bytesDown: 0,
    auditErrors: 0,
    flowErrors: 0,
  };
  const leafContexts = new Map<string, Promise<tls.SecureContext>>();
  const ctx: ProxyContext = {
    sessionId: opts.sessionId,
    view: () => view,
    synthetic: new SyntheticAddresses(),
    inspectors: [...(opts.inspectors ?? [])],
    resolve: opts.resolve ?? hostResolve,
    timeouts: { ...DEFAULT_TIMEOUTS, ...opts.timeouts },
    upstreamContext: upstreamContext(opts.upstreamCa),
    leafContext(host) {
      let p = leafContexts.get(host);
      if (!p) {
        p = opts.ca.leafFor(host).then((leaf) => tls.createSecureContext({ key: leaf.keyPem, cert: leaf.certPem, minVersion: 'TLSv1.2' }));
        p.catch(() => leafContexts.delete(host));
        leafContexts.set(host, p);
        if (leafContexts.size > MAX_LEAF_CONTEXTS) leafContexts.delete(leafContexts.keys().next().value!);
        // Leaves are short-lived: forget the context well before the leaf expires.
        setTimeout(() => leafContexts.delete(host), 3600_000).unref();
      }
      return p;
    },
    audit(type, data) {
      try {
        opts.audit(type, data);
      } catch {
        stats.auditErrors++;
      }
    },
    stats,
    budget: new EgressBudget((data) => ctx.audit('net.budget', { session: opts.sessionId, ...data })),
  };
  const flows = new Set<Flow>();
  const channels = new Set<net.Socket>();
  const connections = new Set<net.Socket>();
  let nextFlow = 1;
  let closed = false;

  async function onConnection(sock: net.Socket): Promise<void> {
    sock.on('error', () => {});
    if (closed) {
      sock.destroy();
      return;
    }
    const reader = new StreamReader(sock);
    let header;
    try {
      header = await readForwarderHeader(reader, ctx.timeouts.headerMs);
    } catch (e) {
      header = { kind: 'invalid' as const, reason: e instanceof Error ? e.message : String(e) };
    }
    if (header.kind === 'dns') {
      channels.add(sock);
      try {
        await serveDnsChannel(ctx, sock, reader);
      } catch {
        // the channel failed; the forwarder reconnects
      } finally {
        channels.delete(sock);
        sock.destroy();
      }
      return;
    }
    const id = `f${nextFlow++}`;
    stats.flowsTotal++;
    stats.flowsActive++;
    if (header.kind === 'invalid') {
      const flow = new Flow(id, ctx, sock, 'transparent', 'unknown', 0);
      flow.refuse('header', `bad forwarder header: ${header.reason}`);
      flow.abort('bad forwarder header', 'header');
      await flow.finish();
      return;
    }
    const { ip, port, clientPort } = header;
    const original = ip.family === 6 ? `[${ip.canonical}]:${port}` : `${ip.canonical}:${port}`;
    const explicit = ip.canonical === EXPLICIT_PROXY.address && port === EXPLICIT_PROXY.port;
    const flow = new Flow(id, ctx, sock, explicit ? 'explicit' : 'transparent', original, clientPort);
    flow.addBytes(-header.lineBytes, 0); // the forwarder's header line is not the agent's traffic
    flows.add(flow);
    try {
      await route(flow, reader, ip.bytes, port);
    } catch (e) {
      const err = asCordonError(e);
      if (flow.aborted) {
        // torn down from outside; the record already says why
      } else if (e instanceof StreamAborted || e instanceof ReadTimeout || e instanceof BodyError) {
        flow.refuse(flow.record.stage ?? 'relay', err.message);
      } else {
        stats.flowErrors++;
        flow.refuse(flow.record.stage ?? 'internal', `internal error: ${err.message}`);
      }
    } finally {
      flows.delete(flow);
      await flow.finish();
    }
  }

  async function route(flow: Flow, reader: StreamReader, bytes: Uint8Array, port: number): Promise<void> {
    const text = formatIp(bytes);
    if (flow.record.mode === 'explicit') return runExplicit(flow, reader);
    if (text === RESOLVER.address && port === RESOLVER.port) return serveDnsTcp(flow, reader, `${RESOLVER.address}:${flow.record.clientPort}`);
    if (bytes.length === 4 && bytes[0] === 198 && (bytes[1] === 18 || (bytes[1] === 19 && !isSyntheticAddress(bytes)))) {
      return flow.refuse('identity', `${text}:${port} is one of cordon's own addresses`);
    }
    if (isSyntheticAddress(bytes)) {
      const name = ctx.synthetic.nameFor(text);
      if (!name) return flow.refuse('identity', `${text} was never handed out by the sandbox resolver`);
      return runTunnel(flow, reader, { field: 'dialedAddress', authority: `${name}:${port}`, host: name, port }, null);
    }
    const authority = bytes.length === 16 ? `[${text}]:${port}` : `${text}:${port}`;
    return runTunnel(flow, reader, { field: 'dialedAddress', authority, host: text, port }, null);
  }

  // Connections still being handled: close() waits for them, so that every
  // flow's audit record is written before the session closes its audit log.
  const handling = new Set<Promise<void>>();
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    connections.add(sock);
    sock.once('close', () => connections.delete(sock));
    const p = onConnection(sock).catch(() => {
      sock.destroy();
    });
    handling.add(p);
    void p.finally(() => handling.delete(p));
  });
  server.on('error', () => {});

  return {
    listen(socketPath: string): Promise<void> {
      return new Promise((resolve, reject) => {
        const onError = (e: Error) => reject(new CordonError('CORDON_NETWORK_SETUP', `the proxy cannot listen on ${socketPath}: ${e.message}`, { cause: e }));
        server.once('error', onError);
        server.listen(socketPath, () => {
          server.off('error', onError);
          chmod(socketPath, 0o600).then(resolve, resolve);
        });
      });
    },
    reload(policy: ProxyPolicy): void {
      const next = compilePolicy(policy, view.generation + 1);
      view = next;
      stats.generation = next.generation;
      const open = [...flows];
      for (const f of open) f.abort('policy reloaded', 'reload');
      ctx.audit('net.reload', { session: ctx.sessionId, generation: next.generation, rules: next.rules.length, closedFlows: open.length });
    },
    async close(): Promise<void> {
      closed = true;
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const f of [...flows]) f.abort('proxy closed', 'close');
      for (const c of [...connections]) c.destroy();
      await done;
      // Aborted flows finish quickly; the cap only guards against a bug hanging the session's exit.
      let cap: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...handling]), new Promise((r) => (cap = setTimeout(r, 6_000)))]);
      clearTimeout(cap);
    },
    stats(): ProxyStats {
      return { ...stats };
    },
  };
}
