// `npm run bench`: every benchmark, measured in this run against baselines
// measured in the same run, printed as tables of absolute figures and ratios.
// Targets are checked and reported here, never asserted in tests.
//
//   npm run bench                 everything
//   npm run bench -- startup      one section (startup | proxy)
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
  let mod: { benchProxy?: () => Promise<unknown> } | null = null;
  try {
    mod = (await import('./proxy.ts')) as { benchProxy?: () => Promise<unknown> };
  } catch {
    mod = null;
  }
  if (mod?.benchProxy) {
    progress('proxy (100 MB transfers, latency, concurrency, truncation)...');
    out.proxy = await mod.benchProxy();
    if (!json) process.stdout.write(`\nProxy\n${JSON.stringify(out.proxy, null, 2)}\n`);
  }
}

if (json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
