// Test harness for the proxy: a proxy on a Unix socket in a temp dir, fake
// upstream servers on 127.0.0.1 with certificates from a test CA, and a
// client that plays the forwarder (header line, then the flow's bytes).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import * as dnsPacket from 'dns-packet';
import { createSessionCa, createSessionProxy, type Inspector, type ProxyOptions, type ProxyPolicy, type SessionCa, type SessionProxy } from '../../src/proxy/index.ts';
import type { NetworkRule } from '../../src/policy/types.ts';

let upstreamCaPromise: Promise<SessionCa> | null = null;
/** The test CA that signs the fake upstream servers' certificates. */
export function upstreamCa(): Promise<SessionCa> {
  upstreamCaPromise ??= createSessionCa({ label: 'test upstream' });
  return upstreamCaPromise;
}

let idx = 0;
export function rule(decision: NetworkRule['decision'], host: string, ports: number[], extra: Partial<NetworkRule> = {}): NetworkRule {
  return { decision, host, ports, methods: null, paths: null, maxBodyBytes: null, protocol: 'http', index: idx++, ...extra };
}

export interface AuditRecord {
  type: string;
  data: Record<string, unknown>;
}

export interface TestProxy {
  proxy: SessionProxy;
  socketPath: string;
  records: AuditRecord[];
  ca: SessionCa;
  close(): Promise<void>;
  /** Resolves with the first net.flow record matching `pred` (already written or yet to come). */
  flowRecord(pred?: (d: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export async function startProxy(policy: ProxyPolicy, extra: Partial<ProxyOptions> = {}): Promise<TestProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-proxy-'));
  const socketPath = join(dir, 'proxy.sock');
  const records: AuditRecord[] = [];
  const waiters: Array<{ pred: (d: Record<string, unknown>) => boolean; resolve: (d: Record<string, unknown>) => void; seen: number }> = [];
  const ca = await createSessionCa({ label: 'test session' });
  const up = await upstreamCa();
  const proxy = createSessionProxy({
    sessionId: 'sess-test',
    policy,
    ca,
    upstreamCa: up.caPem,
    audit: (type, data) => {
      records.push({ type, data });
      if (type === 'net.flow') {
        for (const w of [...waiters]) {
          if (w.pred(data)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(data);
          }
        }
      }
    },
    ...extra,
  });
  await proxy.listen(socketPath);
  return {
    proxy,
    socketPath,
    records,
    ca,
    async close() {
      await proxy.close();
      rmSync(dir, { recursive: true, force: true });
    },
    flowRecord(pred = () => true, timeoutMs = 10_000) {
      const existing = records.find((r) => r.type === 'net.flow' && pred(r.data));
      if (existing) return Promise.resolve(existing.data);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no matching net.flow record')), timeoutMs);
        waiters.push({
          pred,
          resolve: (d) => {
            clearTimeout(t);
            resolve(d);
          },
          seen: records.length,
        });
      });
    },
  };
}

/** Open a Unix connection to the proxy as the forwarder would for a captured flow. */
export function openFlow(socketPath: string, origIp: string, origPort: number, clientPort = 40000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path: socketPath, allowHalfOpen: true }, () => {
      s.write(`CORDON/1 TCP ${origIp} ${origPort} ${clientPort}\n`);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** TLS from the "sandbox" through a flow socket, trusting the session CA. */
export function tlsOver(sock: net.Socket, servername: string | undefined, ca: string | string[], alpn: string[] = ['http/1.1']): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const t = tls.connect({ socket: sock, ...(servername ? { servername } : {}), ca, ALPNProtocols: alpn, checkServerIdentity: () => undefined }, () => resolve(t));
    t.once('error', reject);
  });
}

/** Send bytes and collect everything until the peer ends or closes (or `ms` passes). */
export function exchange(stream: net.Socket | tls.TLSSocket, bytes: string | Buffer, ms = 5000, end = false): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(t);
      resolve(Buffer.concat(chunks));
    };
    const t = setTimeout(done, ms);
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', done);
    stream.once('close', done);
    stream.on('error', () => {});
    if (bytes.length > 0) stream.write(bytes);
    if (end) stream.end();
  });
}

export interface ParsedResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Read `n` responses from a stream (Content-Length, chunked, or until close),
 * with a small parser of its own (not the proxy's).
 */
export function readResponses(stream: net.Socket | tls.TLSSocket, n: number, ms = 10_000, headRequests = 0): Promise<ParsedResponse[]> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const out: ParsedResponse[] = [];
    let ended = false;
    const timer = setTimeout(() => reject(new Error(`timed out with ${out.length}/${n} responses; buffered: ${buf.toString('latin1').slice(0, 300)}`)), ms);
    const tryParse = () => {
      for (;;) {
        if (out.length === n) {
          clearTimeout(timer);
          stream.off('data', onData);
          resolve(out);
          return;
        }
        const headEnd = buf.indexOf('\r\n\r\n');
        if (headEnd < 0) break;
        const lines = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
        const status = Number(lines[0]!.split(' ')[1]);
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const c = l.indexOf(':');
          headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
        }
        let rest = buf.subarray(headEnd + 4);
        if (status >= 100 && status < 200 && status !== 101) {
          buf = rest;
          continue;
        }
        const noBody = status === 204 || status === 304 || status === 101 || out.length < headRequests;
        if (noBody) {
          out.push({ status, headers, body: Buffer.alloc(0) });
          buf = rest;
          continue;
        }
        if (headers['content-length'] !== undefined) {
          const len = Number(headers['content-length']);
          if (rest.length < len) break;
          out.push({ status, headers, body: rest.subarray(0, len) });
          buf = rest.subarray(len);
          continue;
        }
        if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
          const body: Buffer[] = [];
          let off = 0;
          let complete = false;
          for (;;) {
            const le = rest.indexOf('\r\n', off);
            if (le < 0) break;
            const size = parseInt(rest.subarray(off, le).toString('latin1'), 16);
            if (size === 0) {
              const te = rest.indexOf('\r\n\r\n', le - 2 >= 0 ? le : off);
              if (te < 0) break;
              off = te + 4;
              complete = true;
              break;
            }
            if (rest.length < le + 2 + size + 2) break;
            body.push(rest.subarray(le + 2, le + 2 + size));
            off = le + 2 + size + 2;
          }
          if (!complete) break;
          out.push({ status, headers, body: Buffer.concat(body) });
          buf = rest.subarray(off);
          continue;
        }
        if (!ended) break;
        out.push({ status, headers, body: rest });
        buf = Buffer.alloc(0);
        rest = buf;
      }
      if (ended && out.length < n) {
        clearTimeout(timer);
        reject(new Error(`stream ended with ${out.length}/${n} responses; buffered: ${buf.toString('latin1').slice(0, 300)}`));
      }
    };
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      tryParse();
    };
    stream.on('data', onData);
    stream.once('end', () => {
      ended = true;
      tryParse();
    });
    stream.once('close', () => {
      ended = true;
      tryParse();
    });
  });
}

export interface FakeServer {
  port: number;
  close(): Promise<void>;
  /** Requests seen (method, url, headers). */
  seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders }>;
}

/** An HTTPS (or HTTP) server on 127.0.0.1 with a certificate from the test CA for `names`. */
export async function fakeServer(
  handler: http.RequestListener,
  opts: { tls?: boolean; name?: string; onUpgrade?: (req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => void } = {},
): Promise<FakeServer> {
  const seen: FakeServer['seen'] = [];
  const wrapped: http.RequestListener = (req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    handler(req, res);
  };
  let server: http.Server;
  if (opts.tls === false) server = http.createServer(wrapped);
  else {
    const leaf = await (await upstreamCa()).leafFor(opts.name ?? 'api.test');
    server = https.createServer({ key: leaf.keyPem, cert: leaf.certPem }, wrapped);
  }
  server.keepAliveTimeout = 30_000;
  if (opts.onUpgrade) {
    const up = opts.onUpgrade;
    server.on('upgrade', (req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers });
      up(req, socket, head);
    });
  }
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Query the proxy's DNS channel and decode the answer. */
export function dnsChannelQuery(socketPath: string, name: string, type: dnsPacket.RecordType = 'A', id = 7): Promise<dnsPacket.DecodedPacket & { rcode?: string }> {
  const q = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type, class: 'IN' }] });
  return dnsChannelRaw(socketPath, q).then((r) => dnsPacket.decode(r) as dnsPacket.DecodedPacket & { rcode?: string });
}

export function dnsChannelRaw(socketPath: string, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path: socketPath }, () => {
      s.write('CORDON/1 DNS\n');
      const frame = Buffer.alloc(2 + 7 + payload.length);
      frame.writeUInt16BE(7 + payload.length, 0);
      frame[2] = 4;
      Buffer.from([10, 0, 0, 2]).copy(frame, 3);
      frame.writeUInt16BE(5353, 7);
      payload.copy(frame, 9);
      s.write(frame);
    });
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error('no DNS answer'));
    }, 5000);
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(t);
        s.destroy();
        if (buf[2] !== 4 || buf.readUInt16BE(7) !== 5353) reject(new Error('bad frame address'));
        resolve(buf.subarray(9, 2 + buf.readUInt16BE(0)));
      }
    });
    s.on('error', reject);
  });
}

/** A synthetic address for `name` from the proxy's resolver. */
export async function syntheticFor(socketPath: string, name: string): Promise<string> {
  const r = await dnsChannelQuery(socketPath, name);
  const a = r.answers?.[0] as dnsPacket.StringAnswer | undefined;
  if (!a) throw new Error(`no synthetic address for ${name} (${r.rcode})`);
  return a.data;
}

/** A tiny inspector that adds a header to every request of the hosts it wants. */
export function headerInspector(hosts: string[], name = 'X-Cordon-Test', value = 'inspected'): Inspector {
  return {
    name: 'test-header',
    wants: (id) => hosts.includes(id.host),
    onRequest: (req) => {
      req.headers.push([name, value]);
    },
  };
}

const u16 = (n: number) => [n >> 8, n & 0xff];

/** A minimal TLS 1.3-style ClientHello record, with the given SNI (or none). */
export function clientHello(sni: string | null, alpn: string[] = ['http/1.1']): Buffer {
  const ext = (type: number, data: number[]) => [...u16(type), ...u16(data.length), ...data];
  const exts: number[] = [];
  if (sni !== null) {
    const name = Array.from(Buffer.from(sni, 'latin1'));
    const entry = [0, ...u16(name.length), ...name];
    exts.push(...ext(0, [...u16(entry.length), ...entry]));
  }
  const list = alpn.flatMap((p) => [p.length, ...Buffer.from(p, 'latin1')]);
  exts.push(...ext(16, [...u16(list.length), ...list]));
  exts.push(...ext(43, [4, 0x03, 0x04, 0x03, 0x03]));
  const body = [...u16(0x0303), ...new Array(32).fill(1), 32, ...new Array(32).fill(7), ...u16(4), 0x13, 0x01, 0x13, 0x02, 1, 0, ...u16(exts.length), ...exts];
  const msg = [1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff, ...body];
  return Buffer.from([22, 3, 1, ...u16(msg.length), ...msg]);
}

/** An explicit-proxy flow (to 198.18.0.1:3128). */
export function openExplicit(socketPath: string): Promise<net.Socket> {
  return openFlow(socketPath, '198.18.0.1', 3128);
}

/** Send CONNECT and read the proxy's answer head. */
export async function connectThrough(s: net.Socket, authority: string): Promise<{ status: number; head: string }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      const head = buf.subarray(0, end).toString('latin1');
      const rest = buf.subarray(end + 4);
      if (rest.length > 0) s.unshift(rest);
      resolve({ status: Number(head.split(' ')[1]), head: buf.toString('latin1') });
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  });
}

/** Wait for the stream to end or close; resolves with whatever it sent. */
export function drained(s: net.Socket | tls.TLSSocket, ms = 5000): Promise<Buffer> {
  return exchange(s, '', ms);
}

/** Resolves true if the TLS handshake fails (the proxy refused the flow). */
export async function tlsRefused(sock: net.Socket, servername: string | undefined, ca: string): Promise<boolean> {
  try {
    const t = await tlsOver(sock, servername, ca);
    t.destroy();
    return false;
  } catch {
    return true;
  }
}
