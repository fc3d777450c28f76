// Relaying one response from upstream to the agent: interim (1xx) heads, the
// final head (shown to inspectors), then the body with correct framing for
// HEAD, 204, 304, chunked, Content-Length and close-delimited bodies, and for
// HTTP/1.0 clients. A 101 answers a WebSocket upgrade and ends the HTTP part.

import type { Duplex, Transform } from 'node:stream';
import { CordonError } from '../errors.ts';
import { HeadReader, parseResponseHead, type RequestHead, type ResponseHead } from './http-head.ts';
import { readBody, sendBody, write } from './http-body.ts';
import { clientResponseHead, connectionTokens, interimHead, type BodyMode } from './http-message.ts';
import type { Flow } from './flow.ts';
import { ReadTimeout } from './stream-reader.ts';
import type { InspectedRequest, InspectedResponse } from './types.ts';
import type { ByteFilter } from './ws-frames.ts';
import type { Upstream } from './upstream.ts';

export class UpstreamFailure extends CordonError {
  /** An inspector refused the response. */
  readonly inspector: boolean;
  constructor(message: string, inspector = false) {
    super('CORDON_INTERNAL', message);
    this.inspector = inspector;
  }
}

export interface ResponseJob {
  flow: Flow;
  client: Duplex;
  req: RequestHead;
  upstream: Upstream;
  inspected: InspectedRequest;
  /** Called just before the final head is written to the client. */
  onHead: () => void;
}

export interface ResponseResult {
  status: number;
  /** Payload bytes relayed. */
  bytes: number;
  /** The agent's connection must close after this response (close-delimited, HTTP/1.0). */
  closeClient: boolean;
  reuseUpstream: boolean;
  /** 101: the connection now carries another protocol. */
  upgraded: boolean;
  /** With `upgraded`: the inspectors' filters for each direction (none: a plain splice). */
  fromServer?: ByteFilter[];
  fromClient?: ByteFilter[];
}

type ParsedResponse = ResponseHead & { kind: 'parsed' };

async function readResponseHead(job: ResponseJob): Promise<ParsedResponse> {
  const reader = job.upstream.reader;
  const hr = new HeadReader();
  for (;;) {
    let chunk: Buffer | null;
    try {
      chunk = await reader.read(job.flow.ctx.timeouts.idleMs, 'the response head');
    } catch (e) {
      if (e instanceof ReadTimeout) throw new UpstreamFailure('the server did not answer in time');
      throw new UpstreamFailure(`the server connection failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (chunk === null) throw new UpstreamFailure('the server closed the connection without a response');
    const r = hr.push(chunk);
    if (r.kind === 'need-more') continue;
    if (r.kind === 'invalid') throw new UpstreamFailure(`a malformed response head: ${r.reason}`);
    reader.unshift(r.rest);
    const p = parseResponseHead(r.head, job.req.method);
    if (p.kind !== 'parsed') throw new UpstreamFailure(`a malformed response head: ${p.kind === 'invalid' ? p.reason : 'incomplete'}`);
    return p;
  }
}

const FRAMING_FIELDS = ['content-length', 'transfer-encoding'];
const framingOf = (h: InspectedResponse['headers']) =>
  JSON.stringify(h.filter(([n]) => FRAMING_FIELDS.includes(n.toLowerCase())));

/** Show a head to every inspector (they may edit its headers); a deny or a throw fails the response. */
async function inspectHead(job: ResponseJob, head: ParsedResponse, body: boolean): Promise<{ inspected: InspectedResponse; transforms: Transform[] }> {
  const inspected: InspectedResponse = { request: job.inspected, status: head.status, reason: head.reason, headers: head.headers.map(([n, v]) => [n, v]) };
  const before = framingOf(inspected.headers);
  const transforms: Transform[] = [];
  for (const ins of job.flow.ctx.inspectors) {
    let verdict: void | { deny: string };
    try {
      verdict = await ins.onResponse?.(inspected);
      const tr = body ? (ins.responseBody?.(inspected) ?? null) : null;
      if (tr) transforms.push(tr);
    } catch {
      verdict = { deny: `the ${ins.name} check failed` };
    }
    if (verdict && typeof verdict === 'object' && 'deny' in verdict) throw new UpstreamFailure(`inspector ${ins.name}: ${verdict.deny}`, true);
  }
  if (framingOf(inspected.headers) !== before) throw new UpstreamFailure('an inspector changed the response framing', true);
  if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(inspected.reason)) throw new UpstreamFailure('an inspector left control bytes in the reason phrase', true);
  return { inspected, transforms };
}

export async function relayResponse(job: ResponseJob): Promise<ResponseResult> {
  const { flow, client, req } = job;
  const ctx = flow.ctx;
  for (;;) {
    const head = await readResponseHead(job);
    if (head.status === 101) {
      if (!req.websocket) throw new UpstreamFailure('the server switched protocols without being asked');
      const { inspected } = await inspectHead(job, head, false);
      const fromServer: ByteFilter[] = [];
      const fromClient: ByteFilter[] = [];
      for (const ins of ctx.inspectors) {
        let f;
        try {
          f = ins.upgraded?.(inspected) ?? null;
        } catch {
          throw new UpstreamFailure(`inspector ${ins.name}: the check of the upgraded connection failed`, true);
        }
        if (f?.fromServer) fromServer.push(f.fromServer);
        if (f?.fromClient) fromClient.push(f.fromClient);
      }
      job.onHead();
      await write(client, clientResponseHead({ ...head, reason: inspected.reason }, inspected.headers, { body: 'none', close: false, upgrade: true }));
      return { status: 101, bytes: 0, closeClient: false, reuseUpstream: false, upgraded: true, fromServer, fromClient };
    }
    if (head.informational) {
      // 100 Continue was already sent by the proxy when the agent asked for it.
      if (head.status === 100 || req.version !== '1.1') continue;
      // Interim heads are shown to the inspectors too: a 103 can quote what the request carried.
      const { inspected } = await inspectHead(job, head, false);
      await write(client, interimHead({ ...head, reason: inspected.reason }, inspected.headers));
      continue;
    }
    if (head.tunnel) throw new UpstreamFailure('the server answered with a tunnel');

    const { inspected, transforms } = await inspectHead(job, head, true);

    let mode: BodyMode;
    let closeClient = req.version === '1.0' || req.connectionTokens.includes('close');
    if (head.framing.kind === 'none') mode = 'none';
    else if (transforms.length > 0) mode = req.version === '1.1' ? 'chunked' : 'close';
    else if (head.framing.kind === 'chunked' && req.version !== '1.1') mode = 'close';
    else mode = 'verbatim';
    if (mode === 'close' || head.framing.kind === 'close') closeClient = true;

    job.onHead();
    await write(client, clientResponseHead({ ...head, reason: inspected.reason }, inspected.headers, { body: mode, close: closeClient, upgrade: false }));
    const bytes = await sendBody(readBody(job.upstream.reader, head.framing, { limit: null, idleMs: ctx.timeouts.idleMs }), client, mode, transforms);
    const upstreamCloses =
      head.framing.kind === 'close' ||
      connectionTokens(head.headers).includes('close') ||
      (head.version === '1.0' && !connectionTokens(head.headers).includes('keep-alive')) ||
      req.version === '1.0';
    return { status: head.status, bytes, closeClient, reuseUpstream: !upstreamCloses, upgraded: false };
  }
}
