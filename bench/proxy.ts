// Proxy benchmark, against a loopback TLS server: throughput of a large
// download direct / spliced / terminated, added latency of small requests,
// 200 concurrent connections, and truncations over 100 transfers.
// Called from `npm run bench`; prints nothing, returns numbers.

import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { NetworkRule } from '../src/policy/types.ts';
import { createSessionCa, createSessionProxy } from '../src/proxy/index.ts';
import { syntheticAddress } from './proxy-dns.ts';

export interface Percentiles {
  p50: number;
  p99: number;
}

export interface ProxyBenchResult {
  sizeMB: number;
  /** MB/s for one download of sizeMB over TLS. */
  throughputMBps: { direct: number; spliced: number; terminated: number };
  /** spliced/direct and terminated/direct. */
  throughputRatio: { spliced: number; terminated: number };
  /** ms for a small GET on an open keep-alive connection. */
  keepAliveLatencyMs: { direct: Percentiles; spliced: Percentiles; terminated: Percentiles };
  /** ms for a small GET on a fresh connection (connect + TLS + request). */
  freshLatencyMs: { direct: Percentiles; spliced: Percentiles; terminated: Percentiles };
  /** Added by the proxy (proxied percentile minus direct percentile), fresh connections. */
  addedLatencyMs: { spliced: Percentiles; terminated: Percentiles };
  concurrent: { connections: number; ok: number; failed: number; wallMs: number };
  truncation: { transfers: number; truncated: number; bytesEach: number };
}

export interface ProxyBenchOptions {
  sizeMB?: number;
  latencySamples?: number;
  concurrency?: number;
  transfers?: number;
}

const MB = 1024 * 1024;

function pct(values: number[]): Percentiles {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  return { p50: round(at(0.5)), p99: round(at(0.99)) };
}
const round = (n: number) => Math.round(n * 1000) / 1000;

type Connector = () => Promise<tls.TLSSocket>;

/** GET `path` on an open TLS stream; resolves with body bytes and sha256 (Content-Length bodies only). */
function get(t: tls.TLSSocket, path: string, close = false): Promise<{ status: number; bytes: number; sha: string }> {
  return new Promise((resolve, reject) => {
    let head: Buffer | null = Buffer.alloc(0);
    let need = -1;
    let got = 0;
    let status = 0;
    const h = createHash('sha256');
    const finish = () => {
      t.off('data', onData);
      t.off('end', onEnd);
      resolve({ status, bytes: got, sha: h.digest('hex') });
    };
    const onData = (c: Buffer) => {
      if (head) {
        head = Buffer.concat([head, c]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const text = head.subarray(0, end).toString('latin1');
        status = Number(text.split(' ')[1]);
        need = Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1] ?? 0);
        c = head.subarray(end + 4);
        head = null;
      }
      got += c.length;
      h.update(c);
      if (got >= need) finish();
    };
    const onEnd = () => (got >= need && need >= 0 ? finish() : reject(new Error(`truncated at ${got}/${need}`)));
    t.on('data', onData);
    t.once('end', onEnd);
    t.write(`GET ${path} HTTP/1.1\r\nHost: api.test\r\n${close ? 'Connection: close\r\n' : ''}\r\n`);
  });
}

export async function benchProxy(options: ProxyBenchOptions = {}): Promise<ProxyBenchResult> {
  const sizeMB = options.sizeMB ?? 100;
  const samples = options.latencySamples ?? 200;
  const concurrency = options.concurrency ?? 200;
  const transfers = options.transfers ?? 100;
  const transferBytes = MB;

  const upstreamCa = await createSessionCa({ label: 'bench upstream' });
  const leaf = await upstreamCa.leafFor('api.test');
  const big = randomBytes(MB);
  const bigSha = (() => {
    const h = createHash('sha256');
    for (let i = 0; i < sizeMB; i++) h.update(big);
    return h.digest('hex');
  })();
  const server = https.createServer({ key: leaf.keyPem, cert: leaf.certPem }, (req, res) => {
    if (req.url === '/big') {
      res.writeHead(200, { 'Content-Length': sizeMB * MB });
      let i = 0;
      const pump = () => {
        while (i < sizeMB) {
          i++;
          if (!res.write(big)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    } else if (req.url === '/mb') {
      res.writeHead(200, { 'Content-Length': transferBytes });
      res.end(big.subarray(0, transferBytes));
    } else {
      res.writeHead(200, { 'Content-Length': 2 });
      res.end('ok');
    }
  });
  server.keepAliveTimeout = 60_000;
  server.maxRequestsPerSocket = 0;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;

  const dir = mkdtempSync(join(tmpdir(), 'cordon-bench-'));
  const socketPath = join(dir, 'proxy.sock');
  const rule = (host: string, extra: Partial<NetworkRule>, index: number): NetworkRule => ({
    decision: 'allow',
    host,
    ports: [port],
    methods: null,
    paths: null,
    maxBodyBytes: null,
    protocol: 'http',
    index,
    ...extra,
  });
  const sessionCa = await createSessionCa({ label: 'bench session' });
  const proxy = createSessionProxy({
    sessionId: 'bench',
    policy: {
      rules: [rule('splice.test', {}, 0), rule('api.test', { paths: ['/'] }, 1), rule('127.0.0.1', { ports: [] }, 2)],
      hosts: { 'splice.test': ['127.0.0.1'], 'api.test': ['127.0.0.1'] },
    },
    audit: () => {},
    ca: sessionCa,
    upstreamCa: upstreamCa.caPem,
  });
  await proxy.listen(socketPath);

  const synthetic = (name: string) => syntheticAddress(socketPath, name);

  const spliceAddr = await synthetic('splice.test');
  const termAddr = await synthetic('api.test');

  const viaProxy = (addr: string, sni: string, trust: string): Connector => () =>
    new Promise((resolve, reject) => {
      const s = net.connect({ path: socketPath, allowHalfOpen: true }, () => {
        s.write(`CORDON/1 TCP ${addr} ${port} 40000\n`);
        const t = tls.connect({ socket: s, servername: sni, ca: trust, checkServerIdentity: () => undefined, ALPNProtocols: ['http/1.1'] }, () => resolve(t));
        t.once('error', reject);
      });
      s.once('error', reject);
    });
  const direct: Connector = () =>
    new Promise((resolve, reject) => {
      const t = tls.connect({ host: '127.0.0.1', port, servername: 'api.test', ca: upstreamCa.caPem, ALPNProtocols: ['http/1.1'] }, () => resolve(t));
      t.once('error', reject);
    });
  const spliced = viaProxy(spliceAddr, 'splice.test', upstreamCa.caPem);
  const terminated = viaProxy(termAddr, 'api.test', sessionCa.caPem);

  const throughput = async (c: Connector) => {
    const t = await c();
    const t0 = performance.now();
    const r = await get(t, '/big', true);
    const secs = (performance.now() - t0) / 1000;
    t.destroy();
    if (r.bytes !== sizeMB * MB || r.sha !== bigSha) throw new Error('benchmark transfer was not byte-exact');
    return Math.round((sizeMB / secs) * 10) / 10;
  };
  const keepAlive = async (c: Connector) => {
    const t = await c();
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      await get(t, '/small');
      times.push(performance.now() - t0);
    }
    t.destroy();
    return pct(times);
  };
  const fresh = async (c: Connector) => {
    const times: number[] = [];
    for (let i = 0; i < Math.max(20, Math.floor(samples / 2)); i++) {
      const t0 = performance.now();
      const t = await c();
      await get(t, '/small', true);
      times.push(performance.now() - t0);
      t.destroy();
    }
    return pct(times);
  };

  try {
    const tDirect = await throughput(direct);
    const tSpliced = await throughput(spliced);
    const tTerminated = await throughput(terminated);
    const kaDirect = await keepAlive(direct);
    const kaSpliced = await keepAlive(spliced);
    const kaTerminated = await keepAlive(terminated);
    const frDirect = await fresh(direct);
    const frSpliced = await fresh(spliced);
    const frTerminated = await fresh(terminated);

    const c0 = performance.now();
    const results = await Promise.allSettled(
      Array.from({ length: concurrency }, async (_, i) => {
        const t = await (i % 2 === 0 ? spliced : terminated)();
        const r = await get(t, '/small', true);
        t.destroy();
        if (r.status !== 200) throw new Error(String(r.status));
      }),
    );
    const wallMs = round(performance.now() - c0);
    const ok = results.filter((r) => r.status === 'fulfilled').length;

    let truncated = 0;
    const expectSha = createHash('sha256').update(big.subarray(0, transferBytes)).digest('hex');
    for (let i = 0; i < transfers; i++) {
      try {
        const t = await (i % 2 === 0 ? spliced : terminated)();
        const r = await get(t, '/mb', true);
        t.destroy();
        if (r.bytes !== transferBytes || r.sha !== expectSha) truncated++;
      } catch {
        truncated++;
      }
    }

    return {
      sizeMB,
      throughputMBps: { direct: tDirect, spliced: tSpliced, terminated: tTerminated },
      throughputRatio: { spliced: round(tSpliced / tDirect), terminated: round(tTerminated / tDirect) },
      keepAliveLatencyMs: { direct: kaDirect, spliced: kaSpliced, terminated: kaTerminated },
      freshLatencyMs: { direct: frDirect, spliced: frSpliced, terminated: frTerminated },
      addedLatencyMs: {
        spliced: { p50: round(frSpliced.p50 - frDirect.p50), p99: round(frSpliced.p99 - frDirect.p99) },
        terminated: { p50: round(frTerminated.p50 - frDirect.p50), p99: round(frTerminated.p99 - frDirect.p99) },
      },
      concurrent: { connections: concurrency, ok, failed: concurrency - ok, wallMs },
      truncation: { transfers, truncated, bytesEach: transferBytes },
    };
  } finally {
    await proxy.close();
    await new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
    rmSync(dir, { recursive: true, force: true });
  }
}
