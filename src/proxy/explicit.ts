// Explicit-proxy mode: flows to 198.18.0.1:3128, where HTTP_PROXY points
// inside the sandbox. The first request decides the shape of the connection:
//   CONNECT host:port   judged on the authority (as HTTP, the common case);
//                       refused with a 403 here, or answered 200 after the
//                       upstream is dialled and checked, then handled as a
//                       tunnel whose SNI / Host must agree with the authority
//   absolute-form       relayed request by request, each with its own
//                       identity (absolute URI and Host must agree)
//   anything else       400: the proxy itself serves nothing

import type net from 'node:net';
import { DialError } from './dial.ts';
import { denyResponse, textResponse } from './deny.ts';
import type { Flow } from './flow.ts';
import { write } from './http-body.ts';
import { readRequestHead, relayHttp } from './http-relay.ts';
import { checkFlowIdentity } from './identity.ts';
import { judge } from './judge.ts';
import type { StreamReader } from './stream-reader.ts';
import { runTunnel } from './tunnel.ts';
import { dialUpstream, UpstreamSlot } from './upstream.ts';

async function answerAndClose(flow: Flow, bytes: Buffer): Promise<void> {
  try {
    await write(flow.client, bytes);
  } catch {
    // gone
  }
  flow.client.end();
}

export async function runExplicit(flow: Flow, reader: StreamReader): Promise<void> {
  const t = flow.ctx.timeouts;
  const h = await readRequestHead(reader, t.handshakeMs, t.handshakeMs);
  if (h.kind === 'eof') return flow.refuse('protocol', 'no request on the proxy connection');
  if (h.kind === 'h2') return flow.refuse('protocol', 'HTTP/2 with prior knowledge is not supported');
  if (h.kind === 'invalid') {
    flow.refuse('protocol', `malformed request: ${h.reason}`);
    return answerAndClose(flow, textResponse(h.status, `cordon refused a malformed or ambiguous request: ${h.reason}.\n`, true));
  }
  const req = h.head;
  if (req.method !== 'CONNECT') {
    if (req.targetForm !== 'absolute') {
      flow.refuse('protocol', 'a non-proxy request to the proxy address');
      return answerAndClose(flow, textResponse(400, 'This is cordon\'s egress proxy: send CONNECT or absolute-form requests.\n', true));
    }
    // Hand the head back: the relay reads it as its first request.
    reader.unshift(Buffer.from(h.rawHead));
    flow.set({ protocol: 'http', decision: 'per-request' });
    const slot = new UpstreamSlot(flow);
    try {
      await relayHttp({ flow, client: flow.client, reader, target: { kind: 'proxy' }, slot });
    } finally {
      slot.close();
    }
    return;
  }

  // CONNECT
  const id = checkFlowIdentity({ connect: req.target });
  if (!id.ok || id.identity.port === null) {
    flow.refuse('identity', id.ok ? 'CONNECT without a port' : id.reason);
    return answerAndClose(flow, textResponse(400, `cordon refused the CONNECT target: ${id.ok ? 'no port' : id.reason}.\n`, true));
  }
  const host = id.identity.host;
  const port = id.identity.port;
  flow.set({ host, port });
  const target = { host, port, scheme: port === 443 ? 'https' : 'http' };
  const j = judge(flow.view, { host, port, protocol: 'http' });
  if (j.kind === 'deny') {
    flow.set({ decision: j.decision, rule: j.rule, reason: j.reason, stage: 'policy', protocol: 'unknown' });
    return answerAndClose(flow, denyResponse(j.deny, target, true));
  }
  // Nothing is resolved or dialled once the session's egress budget is spent
  // (a name lookup can carry data too); the tunnel itself is admitted and counted in runTunnel.
  const over = flow.ctx.budget.check(flow.view.budget, host, port);
  if (over) {
    flow.set({ decision: 'deny', rule: j.kind === 'allow' ? j.rule : null, protocol: 'unknown' });
    flow.refuse('policy', over);
    return answerAndClose(flow, denyResponse('budget', target, true));
  }
  // Dial before answering, so an unreachable or forbidden address is a readable error.
  let seed: { socket: net.Socket; address: string };
  try {
    seed = await dialUpstream(flow, host, port);
  } catch (e) {
    const refused = e instanceof DialError && e.refused;
    flow.set({ decision: refused ? 'deny' : 'allow', rule: j.kind === 'allow' ? j.rule : null });
    flow.refuse('dial', e instanceof Error ? e.message : String(e));
    return answerAndClose(flow, denyResponse(refused ? 'address' : 'upstream', target, true));
  }
  await write(flow.client, Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n', 'latin1'));
  await runTunnel(flow, reader, { field: 'connect', authority: req.target, host, port }, { host, port, ...seed });
}
