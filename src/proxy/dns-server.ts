// The sandbox's resolver, served by the proxy: the long-lived datagram
// channel from the forwarder (frames carrying the client's address) and DNS
// over TCP to the resolver address. Answers come from answerQuery
// (netcap/dns-logic.ts): synthetic addresses for names the policy could
// allow, NXDOMAIN otherwise; nothing is ever forwarded upstream. Every query
// is one `dns.query` audit record.
//
// Channel frame, both directions:
//   [u16 len][u8 4][4 bytes client ip][u16 client port][dns message]
// where len counts everything after the length field.

import type { Duplex } from 'node:stream';
import { answerQuery, decodeTcpFrames, encodeTcpFrame } from '../netcap/dns-logic.ts';
import type { Flow, ProxyContext } from './flow.ts';
import { write } from './http-body.ts';
import { ReadTimeout, type StreamReader } from './stream-reader.ts';

const MAX_FRAME = 0xffff;

function answer(ctx: ProxyContext, query: Uint8Array, client: string, transport: 'udp' | 'tcp'): Uint8Array | null {
  ctx.stats.dnsQueries++;
  const view = ctx.view();
  const r = answerQuery(query, {
    decide: (name) => view.dnsDecision(name),
    addressFor: (name) => ctx.synthetic.addressFor(name),
    ttlSeconds: 1,
  });
  if (!r) {
    ctx.audit('dns.query', { session: ctx.sessionId, client, transport, name: null, type: null, decision: 'dropped', rcode: null, answer: null, reason: 'not a query' });
    return null;
  }
  const a = r.audit;
  ctx.audit('dns.query', { session: ctx.sessionId, client, transport, id: a.id, name: a.name, type: a.type, decision: a.decision, rcode: a.rcode, answer: a.answer, reason: a.reason });
  return r.response;
}

/** Serve the forwarder's DNS channel until it closes. */
export async function serveDnsChannel(ctx: ProxyContext, stream: Duplex, reader: StreamReader): Promise<void> {
  let buf: Buffer = Buffer.alloc(0);
  for (;;) {
    const chunk = await reader.read();
    if (chunk === null) return;
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    let off = 0;
    while (buf.length - off >= 2) {
      const len = buf.readUInt16BE(off);
      if (buf.length - off - 2 < len) break;
      const frame = buf.subarray(off + 2, off + 2 + len);
      off += 2 + len;
      if (len < 7 || frame[0] !== 4) {
        ctx.audit('dns.query', { session: ctx.sessionId, client: null, transport: 'udp', decision: 'malformed', reason: 'a malformed channel frame' });
        continue;
      }
      const addr = frame.subarray(1, 7);
      const client = `${addr[0]}.${addr[1]}.${addr[2]}.${addr[3]}:${addr.readUInt16BE(4)}`;
      const response = answer(ctx, frame.subarray(7), client, 'udp');
      if (!response || response.length + 7 > MAX_FRAME) continue;
      const out = Buffer.alloc(2 + 7 + response.length);
      out.writeUInt16BE(7 + response.length, 0);
      out[2] = 4;
      addr.copy(out, 3);
      out.set(response, 9);
      await write(stream, out);
    }
    buf = buf.subarray(off);
  }
}

/** DNS over TCP to the resolver address: length-prefixed messages, answered in order. */
export async function serveDnsTcp(flow: Flow, reader: StreamReader, client: string): Promise<void> {
  const ctx = flow.ctx;
  flow.set({ protocol: 'dns-tcp', decision: 'allow', reason: 'the sandbox resolver (answered locally)' });
  let rest: Uint8Array = new Uint8Array(0);
  for (;;) {
    let chunk: Buffer | null;
    try {
      chunk = await reader.read(ctx.timeouts.idleMs, 'a DNS query');
    } catch (e) {
      if (e instanceof ReadTimeout) return;
      throw e;
    }
    if (chunk === null) return;
    const all = rest.length === 0 ? chunk : Buffer.concat([rest, chunk]);
    const d = decodeTcpFrames(all);
    for (const q of d.frames) {
      flow.record.requests++;
      const response = answer(ctx, q, client, 'tcp');
      if (response) await write(flow.client, Buffer.from(encodeTcpFrame(response)));
    }
    if (d.error) return flow.refuse('protocol', d.error);
    rest = Uint8Array.from(d.rest);
  }
}
