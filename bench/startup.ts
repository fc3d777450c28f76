// Start-up cost of `cordon run -- true`, against the same bare bwrap
// invocation (the exact command line cordon builds, with its files) and plain
// `true`, all measured in this run. Median of N runs each, interleaved so
// that load on the machine hits all three alike; peak RSS from wait4().

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
// As users run it: the launcher script in bin/, which execs the bundle on Node 24.
const CORDON = [join(ROOT, 'bin', 'cordon')];

export interface StartupRow {
  name: string;
  medianMs: number;
  p90Ms: number;
  peakRssKiB: number;
}

function time(argv: string[], env: NodeJS.ProcessEnv, cwd: string, fds: (number | 'pipe')[] = []): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(argv[0]!, argv.slice(1), { env, cwd, stdio: ['ignore', 'ignore', 'inherit', ...fds] });
    c.on('error', reject);
    c.on('exit', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) reject(new Error(`${argv.slice(0, 3).join(' ')} exited ${code}`));
      else resolve(ms);
    });
  });
}

/** Peak RSS (KiB) of a command, from GNU time. */
function peakRss(argv: string[], env: NodeJS.ProcessEnv, cwd: string, extraShell = ''): number {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const r = spawnSync('sh', ['-c', `/usr/bin/time -f %M ${argv.map(q).join(' ')} ${extraShell} >/dev/null 2>/tmp/.cordon-bench-time; tail -1 /tmp/.cordon-bench-time`], { env, cwd, encoding: 'utf8' });
  return Number(r.stdout.trim());
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;

export async function benchStartup(runs = 30): Promise<StartupRow[]> {
  const root = mkdtempSync(join(tmpdir(), 'cordon-bench-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: join(root, 'home'),
    CORDON_STATE_DIR: join(root, 'state'),
    CORDON_CONFIG_DIR: join(root, 'config'),
    CORDON_RUNTIME_DIR: join(root, 'run'),
    CORDON_SYSTEM_DIR: join(root, 'system'),
  };
  const ws = join(root, 'ws');
  for (const d of [env.HOME!, ws]) mkdirSync(d, { recursive: true });
  try {
    // Warm caches (policy, seccomp filter, V8 code cache) as any second run would have them.
    for (let i = 0; i < 3; i++) await time([...CORDON, 'run', '--no-tty', '--', 'true'], env, ws);
    const dry = spawnSync(CORDON[0]!, [...CORDON.slice(1), 'run', '--no-tty', '--dry-run', '--keep-files', '--json', '--', 'true'], { env, cwd: ws, encoding: 'utf8' });
    if (dry.status !== 0) throw new Error(`dry run failed: ${dry.stderr}`);
    const plan = JSON.parse(dry.stdout) as { argv: string[]; env: Record<string, string>; fds: Record<string, string> };
    const bpf = plan.fds['3']!;

    const samples: Record<string, number[]> = { cordon: [], bwrap: [], true: [] };
    for (let i = 0; i < runs; i++) {
      samples.cordon!.push(await time([...CORDON, 'run', '--no-tty', '--', 'true'], env, ws));
      const fd = openSync(bpf, 'r');
      try {
        samples.bwrap!.push(await time(plan.argv, plan.env, ws, [fd, 'pipe', 'pipe']));
      } finally {
        closeSync(fd);
      }
      samples.true!.push(await time(['/bin/true'], env, ws));
    }
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const rss = {
      cordon: peakRss([...CORDON, 'run', '--no-tty', '--', 'true'], env, ws),
      bwrap: peakRss(['sh', '-c', `exec ${plan.argv.map(q).join(' ')} 3<${q(bpf)} 4>/dev/null 5>/dev/null`], { ...process.env, ...plan.env }, ws),
      true: peakRss(['/bin/true'], env, ws),
    };
    return [
      { name: 'cordon run -- true', medianMs: median(samples.cordon!), p90Ms: p90(samples.cordon!), peakRssKiB: rss.cordon },
      { name: 'same bwrap invocation', medianMs: median(samples.bwrap!), p90Ms: p90(samples.bwrap!), peakRssKiB: rss.bwrap },
      { name: 'true', medianMs: median(samples.true!), p90Ms: p90(samples.true!), peakRssKiB: rss.true },
    ];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
