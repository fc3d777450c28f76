// Egress benchmark: the whole path a sandboxed client's traffic takes in
// `network.mode: proxy` (cordon-netcap capture, the session proxy, DNS,
// splice or TLS termination), against a loopback HTTPS server, with every
// baseline measured in the same run:
//
//   throughput   one 100 MB download, median of 5 interleaved rounds:
//                (a) direct from the host, (b) proxy-aware curl over a spliced
//                CONNECT tunnel, (c) curl --noproxy '*' captured and spliced,
//                (d) TLS terminated (a rule with methods); ratios vs direct
//   latency      small GETs (Node 24 https), keep-alive and fresh connections,
//                p50/p99 direct vs through the sandbox (spliced, terminated)
//                and the difference
//   concurrency  200 fresh connections at once from inside: all must succeed
//   truncation   100 fresh downloads from inside (spliced and terminated),
//                each checked against the server's bytes by sha256
//
// Targets reported (not asserted): spliced >= 70% of direct, terminated >=
// 35% of direct, zero truncated or corrupted transfers. bench/proxy.ts
// measures the proxy alone, without the sandbox. Called from `npm run bench`;
// prints nothing, returns numbers.

import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFreshBuild, isolated, ROOT } from '../test/helpers/cordon.ts';
import { Content, MiB, NODE24, NODE_DIR, policyFile, prelude, requireTool, results, startServers, writeClient, writeTestCa, type Results } from '../test/egress/servers.ts';

export interface Percentiles {
  p50: number;
  p99: number;
}

const SIZE = 100 * MiB;
const ROUNDS = 5;
const KEEPALIVE_SAMPLES = 400;
const FRESH_SAMPLES = 150;
const CONCURRENT = 200;
const TRANSFERS = 100;
const TRANSFER_BYTES = 2 * MiB;
const TARGETS = { splicedRatio: 0.7, terminatedRatio: 0.35, truncated: 0 };

/** The in-sandbox (and direct) client for latency, concurrency and truncation runs. */
const BENCH_MJS = String.raw`
import { createHash } from 'node:crypto';
import https from 'node:https';
const [cmd, label, base, ...rest] = process.argv.slice(2);
const out = (o) => console.log('@@ ' + label + ' ' + JSON.stringify(o));
// Direct runs (on the host) send the same names to 127.0.0.1 themselves.
const lookup = process.env.BENCH_DIRECT === '1'
  ? (_h, o, cb) => (o && o.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4))
  : undefined;
function get(url, agent) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = https.get(url, { agent, ...(lookup ? { lookup } : {}), ...(agent === false ? { headers: { connection: 'close' } } : {}) }, (res) => {
      const h = createHash('sha256');
      let n = 0;
      res.on('data', (c) => { h.update(c); n += c.length; });
      res.on('error', () => {});
      res.on('close', () => resolve({ status: res.statusCode, bytes: n, sha: h.digest('hex'), expected: res.headers['x-sha256'], complete: res.complete, ms: performance.now() - t0 }));
    });
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ error: String(e.code ?? e.message), ms: performance.now() - t0 }));
  });
}
const good = (r) => r.status === 200 && r.complete && r.sha === r.expected;
if (cmd === 'latency') {
  const [n, mode] = rest;
  const agent = mode === 'keepalive' ? new https.Agent({ keepAlive: true, maxSockets: 1 }) : false;
  for (let i = 0; i < 20; i++) await get(base + '/hello', agent);
  const ms = [];
  let failed = 0;
  for (let i = 0; i < Number(n); i++) {
    const r = await get(base + '/hello', agent);
    if (r.status === 200 && r.complete) ms.push(r.ms); else failed++;
  }
  if (agent) agent.destroy();
  out({ ms, failed });
} else if (cmd === 'concurrent') {
  const n = Number(rest[0]);
  const t0 = performance.now();
  const all = await Promise.all(Array.from({ length: n }, (_, i) => get(base + '/blob/65536?off=' + i * 4096, false)));
  out({ wallMs: performance.now() - t0, ok: all.filter(good).length, failed: all.filter((r) => !good(r)).map((r) => r.error ?? r.status) });
} else if (cmd === 'transfers') {
  const [n, size] = rest.map(Number);
  const list = [];
  for (let i = 0; i < n; i++) {
    const off = (i * 65536 * 7) % (64 * 1024 * 1024);
    const r = await get(base + '/blob/' + size + '?off=' + off, false);
    list.push({ off, status: r.status ?? null, bytes: r.bytes ?? 0, sha: r.sha ?? null, complete: r.complete ?? false, error: r.error ?? null });
  }
  out({ list });
}
`;

function pct(values: number[]): Percentiles {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { p50: round(at(0.5)), p99: round(at(0.99)) };
}
const round = (n: number) => Math.round(n * 1000) / 1000;
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;
const minus = (a: Percentiles, b: Percentiles): Percentiles => ({ p50: round(a.p50 - b.p50), p99: round(a.p99 - b.p99) });

function run(argv: string[], env: NodeJS.ProcessEnv, cwd: string, timeoutMs = 300_000): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(argv[0]!, argv.slice(1), { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('error', (e) => {
      clearTimeout(timer);
      resolve({ status: -1, stdout, stderr: `${stderr}${e.message}` });
    });
    c.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout, stderr });
    });
  });
}

const CURL_W = '%{http_code} %{size_download} %{time_pretransfer} %{time_total}';

/** MB/s of the transfer itself (after connect, TLS and the request), from curl's -w line. */
function curlRate(line: string | undefined, what: string): number {
  const [code, size, pre, total] = (line ?? '').trim().split(' ');
  if (code !== '200' || Number(size) !== SIZE) throw new Error(`${what}: the 100 MB download failed (${line ?? 'no output'})`);
  return round(SIZE / MiB / (Number(total) - Number(pre)));
}

export async function benchEgress(): Promise<Record<string, unknown>> {
  assertFreshBuild();
  requireTool('curl', 'curl');
  const t = isolated();
  const content = new Content(SIZE + 4 * MiB);
  const servers = await startServers({ content });
  try {
    const S = servers.httpsPort;
    const caFile = await writeTestCa(t.root);
    await writeClient(t.workspace);
    writeFileSync(join(t.workspace, 'bench.mjs'), BENCH_MJS);
    const policy = policyFile(t.root, 'bench.yaml', {
      upstreamCa: caFile,
      read: [NODE_DIR],
      hosts: { 'splice.bench.test': ['127.0.0.1'], 'term.bench.test': ['127.0.0.1'] },
      limits: { timeout: '10m' },
      rules: [
        { allow: '127.0.0.1', ports: [S] },
        { allow: 'splice.bench.test', ports: [S] },
        { allow: 'term.bench.test', ports: [S], methods: ['GET'] },
      ],
    });
    const cordon = join(ROOT, 'bin', 'cordon');
    const inside = async (script: string): Promise<Results> => {
      const r = await run([cordon, 'run', '--no-tty', '--policy', policy, '--', 'sh', '-c', prelude() + script], t.env, t.workspace);
      if (r.status !== 0) throw new Error(`cordon run failed (${r.status}): ${r.stderr.slice(-2000)}`);
      return results(r.stdout);
    };
    const splice = `https://splice.bench.test:${S}`;
    const term = `https://term.bench.test:${S}`;

    // 1. Throughput, interleaved rounds.
    const rates: Record<'direct' | 'splicedExplicit' | 'splicedCaptured' | 'terminated', number[]> = { direct: [], splicedExplicit: [], splicedCaptured: [], terminated: [] };
    for (let round = 0; round < ROUNDS; round++) {
      const d = await run(
        ['curl', '-sS', '--noproxy', '*', '--cacert', caFile, '--resolve', `splice.bench.test:${S}:127.0.0.1`, '-o', '/dev/null', '-w', CURL_W, `${splice}/blob/${SIZE}`],
        { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        t.root,
      );
      rates.direct.push(curlRate(d.stdout, 'direct'));
      const w = `-o /dev/null -w '${CURL_W}'`;
      const r = await inside(
        [
          `echo "@@ x {\\"explicit\\":\\"$(curl -sS --cacert "$TRUST" ${w} ${splice}/blob/${SIZE})\\"}"`,
          `echo "@@ y {\\"captured\\":\\"$(curl -sS --noproxy '*' --cacert "$TRUST" ${w} ${splice}/blob/${SIZE})\\"}"`,
          `echo "@@ z {\\"terminated\\":\\"$(curl -sS ${w} ${term}/blob/${SIZE})\\"}"`,
        ].join('\n'),
      );
      rates.splicedExplicit.push(curlRate(String(r.json.get('x')?.explicit), 'spliced (proxy-aware)'));
      rates.splicedCaptured.push(curlRate(String(r.json.get('y')?.captured), 'spliced (captured)'));
      rates.terminated.push(curlRate(String(r.json.get('z')?.terminated), 'terminated'));
    }
    const throughput = {
      direct: median(rates.direct),
      splicedExplicit: median(rates.splicedExplicit),
      splicedCaptured: median(rates.splicedCaptured),
      terminated: median(rates.terminated),
    };
    const ratio = {
      splicedExplicit: round(throughput.splicedExplicit / throughput.direct),
      splicedCaptured: round(throughput.splicedCaptured / throughput.direct),
      terminated: round(throughput.terminated / throughput.direct),
    };

    // 2. Latency: direct (host, same client) and inside.
    const node = (args: string) => `node24 bench.mjs ${args}`;
    const directEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', BENCH_DIRECT: '1', NODE_EXTRA_CA_CERTS: caFile };
    const direct = async (label: string, args: string[]) => {
      const r = await run([NODE24, join(t.workspace, 'bench.mjs'), args[0]!, label, ...args.slice(1)], directEnv, t.workspace);
      const v = results(r.stdout).json.get(label);
      if (!v) throw new Error(`direct ${label} failed: ${r.stderr.slice(-1000)}`);
      return v;
    };
    const lat = async () => {
      const dk = await direct('dk', ['latency', splice, String(KEEPALIVE_SAMPLES), 'keepalive']);
      const df = await direct('df', ['latency', splice, String(FRESH_SAMPLES), 'fresh']);
      const r = await inside(
        [
          'export NODE_EXTRA_CA_CERTS="$TRUST"',
          node(`latency sk ${splice} ${KEEPALIVE_SAMPLES} keepalive`),
          node(`latency sf ${splice} ${FRESH_SAMPLES} fresh`),
          node(`latency tk ${term} ${KEEPALIVE_SAMPLES} keepalive`),
          node(`latency tf ${term} ${FRESH_SAMPLES} fresh`),
        ].join('\n'),
      );
      const get = (label: string) => {
        const v = r.json.get(label);
        if (!v) throw new Error(`latency ${label}: no result`);
        return v;
      };
      return { dk, df, sk: get('sk'), sf: get('sf'), tk: get('tk'), tf: get('tf') };
    };
    const L = await lat();
    const P = (v: Record<string, unknown>) => pct(v.ms as number[]);
    const latencyMs = {
      keepAlive: { direct: P(L.dk), spliced: P(L.sk), terminated: P(L.tk) },
      fresh: { direct: P(L.df), spliced: P(L.sf), terminated: P(L.tf) },
    };
    const addedLatencyMs = {
      keepAlive: { spliced: minus(latencyMs.keepAlive.spliced, latencyMs.keepAlive.direct), terminated: minus(latencyMs.keepAlive.terminated, latencyMs.keepAlive.direct) },
      fresh: { spliced: minus(latencyMs.fresh.spliced, latencyMs.fresh.direct), terminated: minus(latencyMs.fresh.terminated, latencyMs.fresh.direct) },
    };
    const latencyFailures = [L.dk, L.df, L.sk, L.sf, L.tk, L.tf].reduce((n, v) => n + Number(v.failed), 0);

    // 3. Concurrency and 4. truncation, in one session.
    const half = TRANSFERS / 2;
    const r = await inside(
      [
        'export NODE_EXTRA_CA_CERTS="$TRUST"',
        node(`concurrent c ${splice} ${CONCURRENT}`),
        node(`transfers ts ${splice} ${half} ${TRANSFER_BYTES}`),
        node(`transfers tt ${term} ${TRANSFERS - half} ${TRANSFER_BYTES}`),
      ].join('\n'),
    );
    const c = r.json.get('c');
    if (!c) throw new Error('the concurrency run gave no result');
    const list = [...((r.json.get('ts')?.list ?? []) as TransferResult[]), ...((r.json.get('tt')?.list ?? []) as TransferResult[])];
    let truncated = 0;
    let corrupted = 0;
    let failed = 0;
    for (const x of list) {
      if (x.error || x.status !== 200) failed++;
      else if (!x.complete || x.bytes !== TRANSFER_BYTES) truncated++;
      else if (x.sha !== content.sha(x.off, TRANSFER_BYTES)) corrupted++;
    }
    failed += TRANSFERS - list.length;

    return {
      sizeMB: SIZE / MiB,
      rounds: ROUNDS,
      throughputMBps: throughput,
      throughputRoundsMBps: rates,
      throughputRatio: ratio,
      latencyMs,
      addedLatencyMs,
      latencySamples: { keepAlive: KEEPALIVE_SAMPLES, fresh: FRESH_SAMPLES, failed: latencyFailures },
      concurrent: { connections: CONCURRENT, ok: c.ok, failed: (c.failed as unknown[]).length, failures: c.failed, wallMs: round(Number(c.wallMs)) },
      truncation: { transfers: TRANSFERS, bytesEach: TRANSFER_BYTES, truncated, corrupted, failed },
      targets: {
        spliced: { target: `>= ${TARGETS.splicedRatio} of direct`, met: Math.min(ratio.splicedExplicit, ratio.splicedCaptured) >= TARGETS.splicedRatio },
        terminated: { target: `>= ${TARGETS.terminatedRatio} of direct`, met: ratio.terminated >= TARGETS.terminatedRatio },
        truncations: { target: 'zero truncated or corrupted of 100', met: truncated + corrupted === TARGETS.truncated && failed === 0 },
        concurrency: { target: `${CONCURRENT} of ${CONCURRENT} succeed`, met: c.ok === CONCURRENT },
      },
    };
  } finally {
    await servers.close();
    rmSync(t.root, { recursive: true, force: true });
  }
}

interface TransferResult {
  off: number;
  status: number | null;
  bytes: number;
  sha: string | null;
  complete: boolean;
  error: string | null;
}
