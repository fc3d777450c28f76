// Credential injection benchmark: what the broker's inspector adds to a
// request on a terminated (TLS-intercepted) flow. Small requests on an open
// keep-alive connection through three setups, interleaved:
//   baseline   terminated, no inspector (a path rule forces termination)
//   scanned    the broker's inspector, an unbound host (leak scan only)
//   injected   the broker's inspector, a bound host (scan, foreign check,
//              injection, response scrubbing)
// for a GET and for a POST with a 4 KiB body. Called from `npm run bench`;
// prints nothing, returns numbers (ms).

import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { issueCredentials } from '../src/broker/index.ts';
import { compileBinding } from '../src/policy/bindings.ts';
import type { NetworkRule } from '../src/policy/types.ts';
import { createSessionCa, createSessionProxy, type Inspector, type SessionCa, type SessionProxy } from '../src/proxy/index.ts';
import { syntheticAddress } from './proxy-dns.ts';

interface Percentiles {
  p50: number;
  p99: number;
}

const round = (n: number) => Math.round(n * 1000) / 1000;
function pct(values: number[]): Percentiles {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  return { p50: round(at(0.5)), p99: round(at(0.99)) };
}
const minus = (a: Percentiles, b: Percentiles): Percentiles => ({ p50: round(a.p50 - b.p50), p99: round(a.p99 - b.p99) });

/** One request on an open stream; resolves when the whole response (Content-Length or chunked) is in. */
function roundTrip(t: tls.TLSSocket, bytes: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      if (!head.startsWith('HTTP/1.1 200')) return finish(new Error(`unexpected response: ${head.split('\r\n')[0]}`));
      const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
      const body = buf.subarray(end + 4);
      if (cl ? body.length >= Number(cl[1]) : body.subarray(-5).toString() === '0\r\n\r\n') finish();
    };
    const finish = (e?: Error) => {
      t.off('data', onData);
      t.off('error', finish);
      if (e) reject(e);
      else resolve();
    };
    t.on('data', onData);
    t.once('error', finish);
    t.write(bytes);
  });
}


async function server(ca: SessionCa, name: string): Promise<{ server: https.Server; port: number }> {
  const leaf = await ca.leafFor(name);
  const srv = https.createServer({ key: leaf.keyPem, cert: leaf.certPem }, (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Length': 2 });
      res.end('ok');
    });
  });
  srv.keepAliveTimeout = 60_000;
  srv.maxRequestsPerSocket = 0;
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { server: srv, port: (srv.address() as net.AddressInfo).port };
}

export async function benchInjection(requests = 500): Promise<Record<string, unknown>> {
  const upstreamCa = await createSessionCa({ label: 'bench upstream' });
  const bound = await server(upstreamCa, 'bound.test');
  const other = await server(upstreamCa, 'other.test');
  const dir = mkdtempSync(join(tmpdir(), 'cordon-bench-inject-'));
  const rule = (host: string, port: number, index: number): NetworkRule => ({ decision: 'allow', host, ports: [port], methods: null, paths: ['/'], maxBodyBytes: null, protocol: 'http', index });
  const policy = {
    rules: [rule('bound.test', bound.port, 0), rule('other.test', other.port, 1), { ...rule('127.0.0.1', 1, 2), ports: [bound.port, other.port] }],
    hosts: { 'bound.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'] },
  };
  const real = `sk-ant-api03-${'R'.repeat(95)}`;
  const creds = issueCredentials({
    sessionId: 'bench',
    bindings: [compileBinding({ secret: 'anthropic', hosts: ['bound.test'], ports: [bound.port], header: 'x-api-key', placeholderPrefix: 'sk-ant-api03-' }, 0, { role: 'cli', source: 'bench' })],
    canaries: [{ env: 'GITHUB_TOKEN', file: null, format: 'token' }],
    secrets: new Map([['anthropic', Buffer.from(real)]]),
    home: '/home/bench',
    audit: () => {},
  });
  const ph = creds.issued()[0]!.placeholder!;
  const proxies: Array<{ proxy: SessionProxy; socketPath: string; ca: SessionCa }> = [];
  const start = async (name: string, inspectors: Inspector[]) => {
    const ca = await createSessionCa({ label: `bench ${name}` });
    const proxy = createSessionProxy({ sessionId: name, policy, audit: () => {}, ca, upstreamCa: upstreamCa.caPem, inspectors });
    const socketPath = join(dir, `${name}.sock`);
    await proxy.listen(socketPath);
    const p = { proxy, socketPath, ca };
    proxies.push(p);
    return p;
  };
  const plainProxy = await start('baseline', []);
  const brokerProxy = await start('broker', [creds.inspector()]);
  const connect = async (p: (typeof proxies)[0], host: string, port: number): Promise<tls.TLSSocket> => {
    const addr = await syntheticAddress(p.socketPath, host);
    return new Promise((resolve, reject) => {
      const s = net.connect({ path: p.socketPath }, () => {
        s.write(`CORDON/1 TCP ${addr} ${port} 40000\n`);
        const t = tls.connect({ socket: s, servername: host, ca: p.ca.caPem, ALPNProtocols: ['http/1.1'] }, () => resolve(t));
        t.once('error', reject);
      });
      s.once('error', reject);
    });
  };
  try {
    const setups = {
      baseline: { t: await connect(plainProxy, 'bound.test', bound.port), host: 'bound.test' },
      scanned: { t: await connect(brokerProxy, 'other.test', other.port), host: 'other.test' },
      injected: { t: await connect(brokerProxy, 'bound.test', bound.port), host: 'bound.test' },
    };
    const body = 'b'.repeat(4096);
    const get = (host: string) => `GET /v1/models HTTP/1.1\r\nHost: ${host}\r\nx-api-key: ${host === 'other.test' ? 'none' : ph}\r\n\r\n`;
    const post = (host: string) => `POST /v1/messages HTTP/1.1\r\nHost: ${host}\r\nx-api-key: ${host === 'other.test' ? 'none' : ph}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const kinds = ['get', 'post4k'] as const;
    const names = Object.keys(setups) as Array<keyof typeof setups>;
    const samples: Record<string, number[]> = {};
    for (const k of kinds) for (const n of names) samples[`${k}/${n}`] = [];
    const warmup = 50;
    for (let i = 0; i < requests + warmup; i++) {
      for (const k of kinds) {
        const order = i % 2 === 0 ? names : [...names].reverse();
        for (const n of order) {
          const { t, host } = setups[n];
          const t0 = performance.now();
          await roundTrip(t, k === 'get' ? get(host) : post(host));
          if (i >= warmup) samples[`${k}/${n}`]!.push(performance.now() - t0);
        }
      }
    }
    for (const { t } of Object.values(setups)) t.destroy();
    const out: Record<string, unknown> = { requests, unit: 'ms' };
    for (const k of kinds) {
      const r = Object.fromEntries(names.map((n) => [n, pct(samples[`${k}/${n}`]!)])) as Record<keyof typeof setups, Percentiles>;
      out[k] = { ...r, addedByInjection: minus(r.injected, r.baseline), addedByScanOnly: minus(r.scanned, r.baseline) };
    }
    return out;
  } finally {
    creds.close();
    for (const p of proxies) await p.proxy.close();
    bound.server.closeAllConnections();
    other.server.closeAllConnections();
    bound.server.close();
    other.server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
