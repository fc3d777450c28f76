// The proxy's own HTTP/1.1 relay, for plain HTTP and terminated TLS. Every
// request head is judged by the one strict parser (http-head.ts), checked
// against the flow's identity, decided on its own, shown to the inspectors,
// and only then written upstream - re-serialised, never passed through raw.
// Keep-alive carries several requests per connection, each decided
// separately; bodies stream in both directions at once without being held;
// WebSocket upgrades are judged on the upgrade request and then spliced
// (through the inspectors' frame filters, when they ask for them).

import type { Duplex, Transform } from 'node:stream';
import { checkFlowIdentity, parseAbsoluteUri, type FlowIdentityInput } from './identity.ts';
import { HeadReader, parseRequestHead, type RequestHead } from './http-head.ts';
import { BodyError, readBody, sendBody, write } from './http-body.ts';
import { denyResponse, statusFor, textResponse, type DenyKind } from './deny.ts';
import { DialError } from './dial.ts';
import type { Flow } from './flow.ts';
import { headerNames, headerValue, inspectedHeadersProblem, inspectedTargetProblem, snapshotGuarded, upstreamRequestHead } from './http-message.ts';
import { judgeRequest } from './judge.ts';
import { relayResponse, UpstreamFailure } from './http-response.ts';
import { hardClose, splice } from './splice.ts';
import { ReadTimeout, type StreamReader } from './stream-reader.ts';
import type { BodyPiece } from './http-body.ts';
import type { InspectedRequest } from './types.ts';
import type { UpstreamSlot } from './upstream.ts';

/** The flow's fixed destination (transparent flows, CONNECT tunnels), or explicit-proxy requests. */
export type RelayTarget =
  | { kind: 'fixed'; claimField: 'dialedAddress' | 'connect'; claim: string; host: string; port: number; sni?: string | null; tls: boolean }
  | { kind: 'proxy' };

/** A connection-level refusal, answered on the first request. */
export interface ConnectionDeny {
  deny: DenyKind;
  reason: string;
}

export interface Relay {
  flow: Flow;
  client: Duplex;
  reader: StreamReader;
  target: RelayTarget;
  slot: UpstreamSlot;
  connectionDeny?: ConnectionDeny;
}

type ParsedRequest = RequestHead & { kind: 'parsed' };
type HeadRead = { kind: 'eof' } | { kind: 'invalid'; status: number; reason: string } | { kind: 'h2' } | { kind: 'head'; head: ParsedRequest; rawHead: Uint8Array };
type Next = 'continue' | 'close';

/** Read one request head; 'eof' when the client ends (or idles out) between requests. */
export async function readRequestHead(reader: StreamReader, idleMs: number, headMs: number): Promise<HeadRead> {
  const hr = new HeadReader();
  let got = 0;
  for (;;) {
    let chunk: Buffer | null;
    try {
      chunk = await reader.read(got === 0 ? idleMs : headMs, 'a request head');
    } catch (e) {
      if (e instanceof ReadTimeout) return got === 0 ? { kind: 'eof' } : { kind: 'invalid', status: 408, reason: 'the request head did not arrive in time' };
      throw e;
    }
    if (chunk === null) return got === 0 ? { kind: 'eof' } : { kind: 'invalid', status: 400, reason: 'the connection ended inside a request head' };
    got += chunk.length;
    const r = hr.push(chunk);
    if (r.kind === 'need-more') continue;
    if (r.kind === 'invalid') return r;
    reader.unshift(r.rest);
    const p = parseRequestHead(r.head);
    if (p.kind === 'h2-preface') return { kind: 'h2' };
    if (p.kind === 'invalid') return p;
    if (p.kind === 'need-more') return { kind: 'invalid', status: 400, reason: 'an incomplete request head' };
    return { kind: 'head', head: p, rawHead: r.head };
  }
}

type RequestTarget = { ok: true; host: string; port: number; secure: boolean; scheme: string; originTarget: string } | { ok: false; reason: string };

function requestTarget(target: RelayTarget, req: ParsedRequest): RequestTarget {
  const hostRaw = headerValue(req.headers, 'host');
  if (target.kind === 'fixed') {
    const input: FlowIdentityInput = { [target.claimField]: target.claim };
    if (hostRaw !== undefined) input.host = hostRaw;
    if (req.targetForm === 'absolute') input.absoluteUri = req.target;
    if (target.sni !== undefined) input.sni = target.sni;
    const r = checkFlowIdentity(input);
    if (!r.ok) return { ok: false, reason: r.reason };
    let originTarget = req.target;
    if (req.targetForm === 'absolute') {
      const u = parseAbsoluteUri(req.target);
      if (!u.ok) return { ok: false, reason: u.reason };
      originTarget = u.pathAndQuery;
    }
    const scheme = target.tls ? 'https' : 'http';
    return { ok: true, host: target.host, port: target.port, secure: target.tls, scheme, originTarget };
  }
  if (req.targetForm !== 'absolute') return { ok: false, reason: 'requests to the proxy must name their destination (absolute-form) or use CONNECT' };
  const u = parseAbsoluteUri(req.target);
  if (!u.ok) return { ok: false, reason: u.reason };
  const input: FlowIdentityInput = { absoluteUri: req.target };
  if (hostRaw !== undefined) input.host = hostRaw;
  const r = checkFlowIdentity(input);
  if (!r.ok) return { ok: false, reason: r.reason };
  const secure = u.scheme === 'https' || u.scheme === 'wss';
  return { ok: true, host: r.identity.host, port: u.authority.port!, secure, scheme: secure ? 'https' : 'http', originTarget: u.pathAndQuery };
}

/** Relay requests until the client is done, a refusal closes the connection, or an upgrade takes over. */
export async function relayHttp(r: Relay): Promise<void> {
  const ctx = r.flow.ctx;
  for (;;) {
    if (r.flow.aborted) return;
    const h = await readRequestHead(r.reader, ctx.timeouts.idleMs, ctx.timeouts.handshakeMs);
    if (h.kind === 'eof') return;
    if (h.kind === 'h2') {
      r.flow.refuse('protocol', 'HTTP/2 with prior knowledge is not supported');
      return;
    }
    if (h.kind === 'invalid') {
      r.flow.refuse('protocol', `malformed request: ${h.reason}`);
      r.flow.record.requests++;
      r.flow.record.requestsDenied++;
      ctx.audit('net.request', { session: ctx.sessionId, flow: r.flow.id, decision: 'refused', status: h.status, reason: h.reason });
      await endWith(r.client, textResponse(h.status, `cordon refused a malformed or ambiguous request: ${h.reason}.\n`, true));
      return;
    }
    const next = await handleRequest(r, h.head);
    if (next === 'close') return;
  }
}

/**
 * The body as it goes upstream, each piece charged to the egress budget before
 * it is written: the piece that would overspend is not sent, and the request
 * fails (BodyError 'budget').
 */
async function* metered(pieces: AsyncIterable<BodyPiece>, charge: (n: number) => string | null): AsyncGenerator<BodyPiece> {
  for await (const p of pieces) {
    let n = 0;
    for (const d of p.data) n += d.length;
    const over = n > 0 ? charge(n) : null;
    if (over) throw new BodyError('budget', over);
    yield p;
  }
}

/** The reason an inspector's body transform refused the request with (an Error carrying a string `deny`), or null. */
function transformDenial(e: unknown): string | null {
  const deny = e instanceof Error ? (e as Error & { deny?: unknown }).deny : undefined;
  return typeof deny === 'string' ? deny : null;
}

async function* bufferedBody(body: Buffer): AsyncGenerator<BodyPiece> {
  if (body.length > 0) yield { raw: body, data: [body] };
}

/** Write a final response and half-close; errors are ignored (the flow is ending). */
async function endWith(client: Duplex, bytes: Buffer): Promise<void> {
  try {
    await write(client, bytes);
  } catch {
    // the client went away
  }
  client.end();
}

interface RequestRecord {
  method: string;
  host: string | null;
  port: number | null;
  path: string | null;
  queryBytes: number;
  headers: string[];
  decision: 'allow' | 'deny' | 'ask' | 'refused';
  rule: number | null;
  reason: string;
  status: number | null;
  bytesUp: number;
  bytesDown: number;
  websocket: boolean;
}

async function handleRequest(r: Relay, req: ParsedRequest): Promise<Next> {
  const flow = r.flow;
  const ctx = flow.ctx;
  const t0 = performance.now();
  flow.record.requests++;
  ctx.stats.requests++;
  const rec: RequestRecord = {
    method: req.method,
    host: null,
    port: null,
    path: null,
    queryBytes: 0,
    headers: headerNames(req.headers),
    decision: 'refused',
    rule: null,
    reason: '',
    status: null,
    bytesUp: 0,
    bytesDown: 0,
    websocket: req.websocket,
  };
  const emit = () => {
    if (rec.decision !== 'allow') {
      flow.record.requestsDenied++;
      ctx.stats.requestsDenied++;
    }
    ctx.audit('net.request', { session: ctx.sessionId, flow: flow.id, ...rec, durationMs: Math.round(performance.now() - t0) });
  };
  const hasBody = !(req.framing.kind === 'none' || (req.framing.kind === 'length' && req.framing.length === 0));
  const clientClose = req.version === '1.0' || req.connectionTokens.includes('close');

  /** Refuse this request; keep the connection only when nothing of its body is in flight. */
  const refuse = async (kind: DenyKind, reason: string, detail?: string, forceClose = false): Promise<Next> => {
    rec.reason = reason;
    const close = forceClose || clientClose || hasBody;
    // Before the identity is settled, say what the request named (made printable), not "unknown".
    const named = (req.host?.host ?? req.target).replace(/[^\x21-\x7e]/g, "?").slice(0, 200);
    const bytes = denyResponse(kind, { method: req.method, scheme: t.ok ? t.scheme : 'http', host: rec.host ?? named, port: rec.port ?? (t.ok && t.scheme === 'https' ? 443 : 80), path: rec.path ?? undefined }, close, detail);
    rec.status = statusFor(kind);
    emit();
    if (close) {
      await endWith(r.client, bytes);
      return 'close';
    }
    await write(r.client, bytes);
    return 'continue';
  };

  // 1. One identity: the request must name the flow's destination.
  const t = requestTarget(r.target, req);
  if (t.ok) {
    rec.host = t.host;
    rec.port = t.port;
    const q = t.originTarget.indexOf('?');
    rec.path = q >= 0 ? t.originTarget.slice(0, q) : t.originTarget;
    rec.queryBytes = q >= 0 ? t.originTarget.length - q - 1 : 0;
  } else {
    flow.refuse('identity', t.reason);
    return refuse('identity', `identity: ${t.reason}`, undefined, true);
  }
  if (flow.record.host === null) flow.set({ host: t.host, port: t.port });

  // 2. Requests the relay never carries.
  if (req.method === 'CONNECT') return refuse('unsupported', 'CONNECT inside a relayed connection', 'CONNECT inside a tunnel', true);
  if (req.h2c) return refuse('unsupported', 'h2c upgrade refused', 'upgrading to HTTP/2 (h2c)', true);
  if (req.websocket && (req.method !== 'GET' || req.version !== '1.1')) return refuse('bad-request', 'a WebSocket upgrade must be an HTTP/1.1 GET', undefined, true);
  if (r.connectionDeny) {
    rec.decision = flow.record.decision === 'ask' ? 'ask' : 'deny';
    rec.rule = flow.record.rule;
    return refuse(r.connectionDeny.deny, r.connectionDeny.reason, undefined, true);
  }

  // 3. The policy, per request.
  const j = judgeRequest(flow.view, {
    host: t.host,
    port: t.port,
    protocol: 'http',
    method: req.method,
    path: t.originTarget,
    ...(req.framing.kind === 'length' ? { bodyBytes: req.framing.length } : req.framing.kind === 'none' ? { bodyBytes: 0 } : {}),
  });
  rec.rule = j.rule;
  if (j.kind === 'deny') {
    rec.decision = j.decision;
    return refuse(j.deny, j.reason);
  }
  const overBudget = ctx.budget.admit(flow.view.budget, t.host, t.port);
  if (overBudget) {
    rec.decision = 'deny';
    return refuse('budget', overBudget);
  }
  rec.decision = 'allow';
  rec.reason = j.reason;

  // 4. Inspectors see (and may edit) the request.
  const inspected: InspectedRequest = {
    flowId: flow.id,
    identity: { host: t.host, port: t.port },
    scheme: t.secure ? 'https' : 'http',
    method: req.method,
    path: t.originTarget,
    headers: req.headers.map(([n, v]) => [n, v]),
  };
  const transforms: Transform[] = [];
  const guarded = snapshotGuarded(inspected.headers);
  // 4a. An inspector that must see the whole body first (to sign it) gets it, bounded.
  let buffered: Buffer | undefined;
  let continueSent = false;
  if (hasBody) {
    let want = 0;
    let wanter = '';
    for (const ins of ctx.inspectors) {
      let n: number | null = null;
      try {
        n = ins.bufferBody?.(inspected) ?? null;
      } catch (e) {
        rec.decision = 'deny';
        rec.reason = `inspector ${ins.name} threw: ${e instanceof Error ? e.message : String(e)}`;
        return refuse('inspector', rec.reason, `the ${ins.name} check failed`, true);
      }
      if (n !== null && n > want) {
        want = n;
        wanter = ins.name;
      }
    }
    if (want > 0) {
      if (req.expectContinue) {
        await write(r.client, Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1'));
        continueSent = true;
      }
      const policyBound = j.bodyLimit !== null && j.bodyLimit <= want;
      try {
        const parts: Buffer[] = [];
        for await (const piece of readBody(r.reader, req.framing, { limit: policyBound ? j.bodyLimit : want, idleMs: ctx.timeouts.idleMs })) parts.push(...piece.data);
        buffered = Buffer.concat(parts);
      } catch (e) {
        if (e instanceof BodyError && e.kind === 'too-large') {
          rec.decision = 'deny';
          if (policyBound) return refuse('body-limit', e.message, undefined, true);
          const why = `the request body is larger than ${want} bytes, the most the ${wanter} check can hold`;
          return refuse('inspector', `inspector ${wanter}: ${why}`, why, true);
        }
        if (e instanceof BodyError && e.kind === 'malformed') return refuse('bad-request', e.message, undefined, true);
        throw e;
      }
      inspected.body = buffered;
    }
  }
  for (const ins of ctx.inspectors) {
    let verdict: void | { deny: string };
    try {
      verdict = await ins.onRequest?.(inspected);
      const tr = ins.requestBody?.(inspected) ?? null;
      if (tr) transforms.push(tr);
    } catch (e) {
      verdict = { deny: `the ${ins.name} check failed` };
      rec.reason = `inspector ${ins.name} threw: ${e instanceof Error ? e.message : String(e)}`;
    }
    if (verdict && typeof verdict === 'object' && 'deny' in verdict) {
      rec.decision = 'deny';
      return refuse('inspector', `inspector ${ins.name}: ${verdict.deny}`, String(verdict.deny).slice(0, 200));
    }
  }
  const problem = inspectedHeadersProblem(guarded, inspected.headers) ?? inspectedTargetProblem(t.originTarget, inspected.path);
  if (problem) {
    rec.decision = 'deny';
    return refuse('inspector', problem);
  }
  if (transforms.length > 0 && hasBody && req.version === '1.0') {
    rec.decision = 'deny';
    return refuse('unsupported', 'an inspected HTTP/1.0 request body', 'an HTTP/1.0 request body on an inspected host');
  }
  const keepLength = req.framing.kind === 'length' && transforms.every((tr) => (tr as Transform & { preservesLength?: unknown }).preservesLength === true);
  const bodyMode =
    req.framing.kind === 'none'
      ? 'none'
      : transforms.length > 0
        ? keepLength
          ? 'length'
          : 'chunked'
        : buffered !== undefined && req.framing.kind === 'chunked'
          ? 'chunked'
          : 'verbatim';

  // 5. Upstream.
  let up;
  try {
    up = await r.slot.get(t.host, t.port, t.secure);
  } catch (e) {
    const refused = e instanceof DialError && e.refused;
    flow.set({ stage: 'dial', reason: e instanceof Error ? e.message : String(e) });
    rec.decision = refused ? 'deny' : 'allow';
    return refuse(refused ? 'address' : 'upstream', e instanceof Error ? e.message : String(e));
  }
  const defaultPort = t.secure ? 443 : 80;
  const hostHeader = t.port === defaultPort ? t.host : `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;
  let responseStarted = false;
  const head = upstreamRequestHead(req, inspected.headers, { target: inspected.path, host: hostHeader, body: bodyMode, websocket: req.websocket });
  const headOver = ctx.budget.charge(flow.view.budget, head.length);
  if (headOver) {
    r.slot.discard();
    rec.decision = 'deny';
    return refuse('budget', headOver, undefined, true);
  }
  try {
    await write(up.socket, head);
    if (req.expectContinue && !continueSent) await write(r.client, Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1'));
  } catch (e) {
    r.slot.discard();
    return refuse('upstream', `writing upstream failed: ${e instanceof Error ? e.message : String(e)}`, undefined, true);
  }

  // 6. Body up and response down, at the same time.
  let bodyError: unknown = null;
  const bodyDone = sendBody(
    metered(
      buffered !== undefined ? bufferedBody(buffered) : readBody(r.reader, req.framing, { limit: j.bodyLimit, idleMs: ctx.timeouts.idleMs }),
      (n) => ctx.budget.charge(flow.view.budget, n),
    ),
    up.socket,
    bodyMode,
    transforms,
    req.framing.kind === 'length' ? req.framing.length : 0,
  ).then(
    (n) => {
      rec.bytesUp = n;
    },
    (e: unknown) => {
      bodyError = e;
      hardClose(up.socket);
    },
  );
  let result;
  try {
    result = await relayResponse({
      flow,
      client: r.client,
      req,
      upstream: up,
      inspected,
      onHead: () => {
        responseStarted = true;
      },
    });
  } catch (e) {
    r.slot.discard(); // stops a body still streaming to a failed upstream
    await bodyDone;
    const be = bodyError as unknown;
    if (be instanceof BodyError && be.kind === 'budget' && !responseStarted) {
      rec.decision = 'deny';
      return refuse('budget', be.message, undefined, true);
    }
    if (be instanceof BodyError && (be.kind === 'too-large' || be.kind === 'malformed') && !responseStarted) {
      rec.decision = be.kind === 'too-large' ? 'deny' : 'refused';
      return refuse(be.kind === 'too-large' ? 'body-limit' : 'bad-request', be.message, undefined, true);
    }
    if (e instanceof UpstreamFailure && e.inspector && !responseStarted) {
      rec.decision = 'deny';
      return refuse('inspector', e.message, e.message.slice(0, 200), true);
    }
    const denied = transformDenial(be);
    if (denied !== null && !responseStarted) {
      rec.decision = 'deny';
      return refuse('inspector', `request body: ${denied}`, denied.slice(0, 200), true);
    }
    rec.reason = `relay failed: ${e instanceof Error ? e.message : String(e)}`;
    flow.set({ stage: 'relay', reason: `${flow.record.reason}; request ${flow.record.requests}: ${rec.reason}` });
    if (!responseStarted && !(be instanceof BodyError && be.kind === 'truncated') && !r.client.destroyed) {
      return refuse('upstream', rec.reason, undefined, true);
    }
    emit();
    hardClose(r.client);
    return 'close';
  }
  await bodyDone;
  rec.status = result.status;
  rec.bytesDown = result.bytes;
  if (bodyError) {
    // The response is complete but the request body was not relayed to its end.
    const denied = transformDenial(bodyError);
    if (denied !== null || (bodyError instanceof BodyError && bodyError.kind === 'budget')) rec.decision = 'deny';
    rec.reason = `request body: ${denied ?? (bodyError as Error).message}`;
    flow.set({ stage: 'relay', reason: `${flow.record.reason}; request ${flow.record.requests}: ${rec.reason}` });
    emit();
    r.slot.discard();
    hardClose(r.client);
    return 'close';
  }
  if (result.upgraded) {
    emit();
    const taken = r.slot.take()!;
    const c = r.reader.detach();
    const u = taken.reader.detach();
    flow.set({ protocol: 'websocket' });
    const meter = ctx.budget.meter(flow.view.budget);
    const s = await splice(
      { stream: r.client, pending: c.pending, ended: c.ended, filters: [...(result.fromClient ?? []), ...(meter ? [meter] : [])] },
      { stream: taken.socket, pending: u.pending, ended: u.ended, filters: result.fromServer ?? [] },
    );
    if (!s.clean) flow.set({ stage: 'relay', reason: `websocket ended: ${s.error ?? 'unclean'}` });
    return 'close';
  }
  emit();
  if (!result.reuseUpstream) r.slot.discard();
  if (clientClose || result.closeClient) {
    r.client.end();
    return 'close';
  }
  return 'continue';
}
