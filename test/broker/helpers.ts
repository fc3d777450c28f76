// Harness for the credential broker: a session's credentials plugged into a
// real proxy (over its Unix socket, as the forwarder would), with loopback
// TLS upstreams that record every request exactly as received.

import type http from 'node:http';
import type net from 'node:net';
import type tls from 'node:tls';
import { issueCredentials } from '../../src/broker/index.ts';
import type { SessionCredentials } from '../../src/broker/types.ts';
import { compileBinding, compileCanary } from '../../src/policy/bindings.ts';
import type { BindingInput, CanaryInput } from '../../src/policy/schema.ts';
import type { Binding } from '../../src/policy/types.ts';
import type { ProxyOptions } from '../../src/proxy/index.ts';
import {
  fakeServer,
  openFlow,
  readResponses,
  rule,
  startProxy,
  syntheticFor,
  tlsOver,
  type AuditRecord,
  type FakeServer,
  type ParsedResponse,
  type TestProxy,
} from '../proxy/helpers.ts';

export interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** Header lines exactly as sent (name, value pairs). */
  rawHeaders: string[];
  body: Buffer;
  /** The request body did not arrive whole (aborted upstream). */
  aborted: boolean;
}

export interface Upstream {
  server: FakeServer;
  port: number;
  name: string;
  received: Received[];
}

/** An HTTPS upstream for `name` that records requests and answers by path ("*": any other path). */
export type Route = (req: http.IncomingMessage, res: http.ServerResponse, received: Received) => void;

export async function upstream(name: string, routes: Record<string, Route> = {}): Promise<Upstream> {
  const received: Received[] = [];
  const server = await fakeServer(
    (req, res) => {
      const chunks: Buffer[] = [];
      const rec: Received = { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.alloc(0), aborted: true };
      received.push(rec);
      req.on('data', (c: Buffer) => {
        chunks.push(c);
        rec.body = Buffer.concat(chunks);
      });
      req.on('error', () => {});
      req.on('end', () => {
        rec.body = Buffer.concat(chunks);
        rec.aborted = false;
        const path = (req.url ?? '/').split('?')[0]!;
        const route = routes[path] ?? routes['*'];
        if (route) return route(req, res, rec);
        if (path === '/echo-headers') {
          res.setHeader('Content-Type', 'application/json');
          return res.end(JSON.stringify(req.headers));
        }
        if (path === '/echo-body') return res.end(rec.body);
        res.end(`ok ${req.method} ${req.url}`);
      });
    },
    { name },
  );
  return { server, port: server.port, name, received };
}

/** Bindings from their policy-file form, compiled as the policy loader would. */
export function bindings(inputs: BindingInput[]): Binding[] {
  return inputs.map((b, i) => compileBinding(b, i, { role: 'cli', source: 'test' }));
}

export interface Session {
  creds: SessionCredentials;
  tp: TestProxy;
  /** The broker's audit records. */
  audit: AuditRecord[];
  close(): Promise<void>;
  /** Send raw bytes (each element a separate write, 15 ms apart) over TLS to host:port and read one response. */
  send(host: string, port: number, writes: Array<string | Buffer>, opts?: { gapMs?: number }): Promise<ParsedResponse>;
  /** An open TLS connection to host:port through the proxy (several requests on it). */
  open(host: string, port: number): Promise<tls.TLSSocket>;
  /** The placeholder of binding i (token kind). */
  ph(i?: number): string;
  records(type: string): Array<Record<string, unknown>>;
}

export interface SessionOptions {
  bindings: BindingInput[];
  canaries?: CanaryInput[];
  secrets: Record<string, string>;
  /** Names -> 127.0.0.1 for the proxy, with an allow rule for each port. */
  hosts: Record<string, number>;
  now?: () => number;
  sessionId?: string;
  home?: string;
  maxSignedBodyBytes?: number;
  proxy?: Partial<ProxyOptions>;
}

export async function session(o: SessionOptions): Promise<Session> {
  const audit: AuditRecord[] = [];
  const creds = issueCredentials({
    sessionId: o.sessionId ?? 'sess-broker',
    bindings: bindings(o.bindings),
    canaries: (o.canaries ?? []).map(compileCanary),
    secrets: new Map(Object.entries(o.secrets).map(([k, v]) => [k, Buffer.from(v)])),
    home: o.home ?? '/home/agent',
    audit: (type, data) => audit.push({ type, data }),
    ...(o.now ? { now: o.now } : {}),
    ...(o.maxSignedBodyBytes ? { maxSignedBodyBytes: o.maxSignedBodyBytes } : {}),
  });
  const names = Object.keys(o.hosts);
  const tp = await startProxy(
    {
      // The loopback rule lets the proxy dial 127.0.0.1 (the upstreams' address).
      rules: [...names.map((n) => rule('allow', n, [o.hosts[n]!])), rule('allow', '127.0.0.1', [])],
      hosts: Object.fromEntries(names.map((n) => [n, ['127.0.0.1']])),
    },
    { inspectors: [creds.inspector()], ...o.proxy },
  );
  const synthetic = new Map<string, string>();
  for (const n of names) synthetic.set(n, await syntheticFor(tp.socketPath, n));
  return {
    creds,
    tp,
    audit,
    async close() {
      creds.close();
      await tp.close();
    },
    async send(host, port, writes, opts = {}) {
      const s: net.Socket = await openFlow(tp.socketPath, synthetic.get(host)!, port);
      const t: tls.TLSSocket = await tlsOver(s, host, tp.ca.caPem);
      t.on('error', () => {});
      const p = readResponses(t, 1, 10_000);
      for (let i = 0; i < writes.length; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, opts.gapMs ?? 15));
        if (!t.destroyed) t.write(writes[i]!);
      }
      try {
        return (await p)[0]!;
      } finally {
        t.destroy();
      }
    },
    async open(host, port) {
      const t = await tlsOver(await openFlow(tp.socketPath, synthetic.get(host)!, port), host, tp.ca.caPem);
      t.on('error', () => {});
      return t;
    },
    ph(i = 0) {
      return creds.issued()[i]!.placeholder!;
    },
    records(type) {
      return audit.filter((r) => r.type === type).map((r) => r.data);
    },
  };
}

/** A request head (and optional body) as raw HTTP/1.1. */
export function req(method: string, path: string, host: string, headers: Record<string, string> = {}, body?: string): string {
  const h = Object.entries({ Host: host, ...headers, ...(body !== undefined && !('Transfer-Encoding' in headers) ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}) })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return `${method} ${path} HTTP/1.1\r\n${h}\r\n${body ?? ''}`;
}

/** A chunked body with these chunks. */
export function chunked(parts: string[]): string {
  return parts.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join('') + '0\r\n\r\n';
}

/** Wait until `pred` holds (polling), or fail after `ms`. */
export async function until(pred: () => boolean, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
