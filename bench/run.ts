// `npm run bench`: every benchmark, measured in this run against baselines
// measured in the same run, printed as tables of absolute figures and ratios.
// Targets are checked and reported here, never asserted in tests.
//
//   npm run bench                 everything
//   npm run bench -- startup      one section (startup | proxy | injection | egress)
//   npm run bench -- --json       machine-readable

import { benchStartup } from './startup.ts';

const args = process.argv.slice(2);
const json = args.includes('--json');
const only = args.filter((a) => !a.startsWith('--'));
const want = (s: string) => only.length === 0 || only.includes(s);
const out: Record<string, unknown> = {};

function table(title: string, head: string[], rows: (string | number)[][]): void {
  if (json) return;
  const cells = [head, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? (Number.isInteger(c) ? String(c) : c.toFixed(1)) : c)))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)));
  process.stdout.write(`\n${title}\n`);
  cells.forEach((r, j) => {
    process.stdout.write(r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]!) : String(c).padStart(widths[i]!))).join('  ') + '\n');
    if (j === 0) process.stdout.write(widths.map((w) => '-'.repeat(w)).join('  ') + '\n');
  });
}

const progress = (msg: string) => {
  if (!json) process.stderr.write(`bench: ${msg}\n`);
};

if (want('startup')) {
  progress('start-up (30 interleaved runs of each)...');
  const rows = await benchStartup(30);
  const [cordon, bwrap, bare] = rows as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0]];
  const over = cordon.medianMs - bwrap.medianMs;
  out.startup = { rows, overBwrapMs: over, targetMs: 60, met: over <= 60 };
  table(
    'Start-up: cordon run -- true (median of 30, same run)',
    ['command', 'median ms', 'p90 ms', 'x true', 'x bwrap', 'peak RSS KiB'],
    rows.map((r) => [r.name, r.medianMs, r.p90Ms, r.medianMs / bare.medianMs, r.medianMs / bwrap.medianMs, r.peakRssKiB]),
  );
  if (!json) process.stdout.write(`cordon adds ${over.toFixed(1)} ms over bare bwrap (target <= 60 ms): ${over <= 60 ? 'met' : 'NOT met'}\n`);
}

if (want('proxy')) {
  progress('proxy alone, over its Unix socket (100 MB transfers, latency, concurrency, truncation)...');
  const { benchProxy } = await import('./proxy.ts');
  const r = (await benchProxy()) as unknown as Record<string, any>;
  out.proxy = r;
  table(
    `Proxy alone: ${r.sizeMB} MB HTTPS download (same run)`,
    ['path', 'MB/s', 'x direct'],
    [
      ['direct', r.throughputMBps.direct, 1],
      ['spliced', r.throughputMBps.spliced, r.throughputRatio.spliced],
      ['terminated', r.throughputMBps.terminated, r.throughputRatio.terminated],
    ],
  );
  table('Proxy alone: added latency of a fresh small request (ms)', ['path', 'p50', 'p99'], Object.entries(r.addedLatencyMs as Record<string, { p50: number; p99: number }>).map(([k, v]) => [k, v.p50, v.p99]));
}

if (want('injection')) {
  progress('credential injection (500 interleaved keep-alive requests per case)...');
  const { benchInjection } = await import('./injection.ts');
  const r = (await benchInjection()) as Record<string, any>;
  out.injection = r;
  const rows: (string | number)[][] = [];
  for (const k of ['get', 'post4k']) {
    const v = r[k] as Record<string, { p50: number; p99: number }>;
    for (const n of ['baseline', 'scanned', 'injected', 'addedByScanOnly', 'addedByInjection']) if (v[n]) rows.push([k, n, v[n]!.p50, v[n]!.p99]);
  }
  table('Credential injection on a terminated flow vs the same flow without an inspector (ms)', ['request', 'case', 'p50', 'p99'], rows);
}

if (want('egress')) {
  progress('egress through the sandbox (100 MB transfers direct, spliced, captured, terminated; latency; 200 connections; 100 transfers checked)...');
  const { benchEgress } = await import('./egress.ts');
  const r = (await benchEgress()) as Record<string, any>;
  out.egress = r;
  const tp = r.throughputMBps as Record<string, number>;
  const ratio = r.throughputRatio as Record<string, number>;
  table(
    `Egress: ${r.sizeMB} MB HTTPS download from a loopback server (median of ${r.rounds} interleaved rounds, same run)`,
    ['path', 'MB/s', 'x direct'],
    Object.keys(tp).map((k) => [k, tp[k]!, k === 'direct' ? 1 : (ratio[k] ?? tp[k]! / tp.direct!)]),
  );
  const lat = r.latencyMs as Record<string, Record<string, { p50: number; p99: number }>>;
  const added = r.addedLatencyMs as Record<string, Record<string, { p50: number; p99: number }>>;
  table(
    'Egress: small requests, direct vs through the sandbox (ms; "added" is the difference)',
    ['connection', 'path', 'p50', 'p99', 'added p50', 'added p99'],
    Object.entries(lat).flatMap(([conn, paths]) =>
      Object.entries(paths).map(([path, v]) => [conn, path, v.p50, v.p99, added[conn]?.[path]?.p50 ?? '-', added[conn]?.[path]?.p99 ?? '-']),
    ),
  );
  table(
    'Egress: concurrency and integrity',
    ['check', 'result'],
    [
      [`${r.concurrent.connections} concurrent connections`, `${r.concurrent.ok} ok, ${r.concurrent.failed} failed, ${r.concurrent.wallMs} ms`],
      [`${r.truncation.transfers} transfers (sha256 checked)`, `${r.truncation.truncated} truncated, ${r.truncation.corrupted} corrupted, ${r.truncation.failed} failed`],
    ],
  );
  if (!json) for (const [k, v] of Object.entries(r.targets as Record<string, { target: string; met: boolean }>)) process.stdout.write(`target ${k}: ${v.target}: ${v.met ? 'met' : 'NOT met'}\n`);
}

if (json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
