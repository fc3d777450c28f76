// `cordon selftest`: run the bypass battery against the user's own policy and
// backend, on this machine, and report what held, with the audit record that
// proves each decision. Exit 0 only when nothing leaked (and every probe ran).

import { copyFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, release } from 'node:os';
import { join, resolve } from 'node:path';
import { CordonError, EXIT } from '../errors.ts';
import { hostPaths } from '../paths.ts';
import { loadPolicy } from '../policy/load.ts';
import { resolverWrapper, startAttackers, writeBatteryPolicy, type Attackers } from '../selftest/attacker.ts';
import { addTestCredential, createFixture } from '../selftest/fixture.ts';
import { PROBES } from '../selftest/probes/index.ts';
import { CLASS_TITLES, renderHtml, summarize, type ReportMeta } from '../selftest/report.ts';
import { bestEvidence, runBattery } from '../selftest/runner.ts';
import type { ProbeResult } from '../selftest/types.ts';
import { VERSION } from '../version.ts';
import { collectChecks } from './cmd-doctor.ts';
import { printJson, style } from './output.ts';

export interface SelftestOptions {
  policy?: string;
  backend?: string;
  json?: boolean;
  only?: string;
  report?: string;
  keep?: boolean;
}

function parseOnly(only: string | undefined): Set<number> | null {
  if (only === undefined) return null;
  const classes = new Set<number>();
  for (const part of only.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new CordonError('CORDON_USAGE', `--only: "${part}" is not a class number or range (e.g. 14 or 1-10)`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    for (let c = a; c <= b; c++) {
      if (!CLASS_TITLES[c]) throw new CordonError('CORDON_USAGE', `--only: there is no class ${c} (classes 1-15 of the bypass matrix)`);
      classes.add(c);
    }
  }
  return classes;
}

export async function cmdSelftest(o: SelftestOptions): Promise<number> {
  if (o.backend !== undefined && o.backend !== 'bwrap') {
    throw new CordonError('CORDON_PREREQ_MISSING', `the ${o.backend} backend is not available in this version of cordon`, { hint: 'selftest the default backend: --backend bwrap' });
  }
  const only = parseOnly(o.only);
  const probes = PROBES.filter((p) => only === null || only.has(p.class));
  if (probes.length === 0) throw new CordonError('CORDON_USAGE', 'no probe matches --only');
  const paths = hostPaths();
  const startedAt = new Date();
  const fixture = createFixture();
  // The user's policy under test: their config file (or --policy) becomes the
  // fixture's user policy; the machine-wide policy applies as it would.
  const userPolicy = o.policy ? resolve(o.policy) : join(paths.config, 'policy.yaml');
  if (o.policy && !existsSync(userPolicy)) throw new CordonError('CORDON_POLICY_NOT_FOUND', `cannot read policy file ${userPolicy}`);
  if (existsSync(userPolicy)) copyFileSync(userPolicy, join(fixture.configDir, 'policy.yaml'));
  fixture.env.CORDON_SYSTEM_DIR = paths.system;

  const progress = (done: number, total: number, r: ProbeResult) => {
    if (o.json) return;
    const mark = r.outcome === 'contained' ? style.green('contained', process.stderr) : r.outcome === 'LEAKED' ? style.red('LEAKED') : style.yellow(r.outcome, process.stderr);
    process.stderr.write(`[${String(done).padStart(String(total).length)}/${total}] class ${String(r.class).padStart(2)} ${r.id.padEnd(34)} ${mark}\n`);
  };
  if (!o.json) process.stderr.write(`cordon selftest: ${probes.length} probes, each in a fresh session (policy: ${existsSync(userPolicy) ? userPolicy : 'built-in default'})\n`);

  // Network probes need endpoints: "attackers" that must never hear a byte,
  // and legit servers the battery overlay allows. With network.mode none the
  // user's policy is tested as it is (nothing may leave at all).
  const loaded = await loadPolicy({ paths: hostPaths(fixture.env), env: fixture.env, noCache: true }).catch(() => null);
  const networkMode = loaded?.policy.network.mode ?? 'none';
  fixture.networkMode = networkMode;
  if (loaded) fixture.budget = loaded.policy.network.budget;
  let cordon = [process.execPath, join(paths.install, 'dist', 'run.cjs')];
  let overlay: string | undefined;
  let credentialOverlay: string | undefined;
  let attackers: Attackers | null = null;
  const needsNetwork = probes.some((p) => ![13, 14, 15].includes(p.class));
  let results: ProbeResult[];
  try {
    if (needsNetwork) {
      attackers = await startAttackers({ dir: fixture.root });
      fixture.attackers = attackers;
      if (networkMode === 'proxy') overlay = writeBatteryPolicy(attackers, join(fixture.root, 'selftest-overlay.yaml'), { node: process.execPath });
      // Credential probes (class 11): a random test secret in the fixture's own
      // vault, bound by a second overlay (the rest of the battery keeps the first).
      if (networkMode === 'proxy' && probes.some((p) => p.credentials)) {
        const credentials = await addTestCredential(fixture);
        credentialOverlay = writeBatteryPolicy(attackers, join(fixture.root, 'selftest-overlay-credentials.yaml'), { node: process.execPath, credentials });
      }
      cordon = resolverWrapper(attackers, fixture.root, cordon);
    }
    results = await runBattery({
      fixture,
      cordon,
      probes,
      onProgress: progress,
      ...(overlay ? { policyFile: overlay } : {}),
      ...(credentialOverlay ? { credentialPolicyFile: credentialOverlay } : {}),
    });
  } finally {
    await attackers?.close();
    if (!o.keep) rmSync(fixture.root, { recursive: true, force: true });
  }
  const sum = summarize(results);
  const meta: ReportMeta = {
    cordonVersion: VERSION,
    startedAt: startedAt.toISOString(),
    durationMs: Date.now() - startedAt.getTime(),
    host: hostname(),
    kernel: release(),
    backend: o.backend ?? 'bwrap',
    policySources: existsSync(userPolicy) ? [userPolicy] : [],
    policyHash: loaded?.hash ?? null,
    checks: (await collectChecks()).map((c) => ({ id: c.id, title: c.title, status: c.status, detail: c.detail })),
  };
  if (o.report) {
    writeFileSync(o.report, renderHtml(results, meta), { mode: 0o644 });
    if (!o.json) process.stderr.write(`report written to ${o.report}\n`);
  }
  if (o.json) printJson({ ok: sum.leaked === 0 && sum.errors === 0, summary: sum, meta, results });
  else printTable(results, sum);
  return sum.leaked === 0 && sum.errors === 0 ? EXIT.ok : EXIT.failed;
}

function printTable(results: ProbeResult[], sum: ReturnType<typeof summarize>): void {
  const out: string[] = [];
  const w = Math.max(...results.map((r) => r.id.length));
  const section = (title: string, rs: ProbeResult[]) => {
    if (rs.length === 0) return;
    out.push('', style.bold(title));
    for (const r of rs) {
      const mark = r.outcome === 'contained' ? style.green('contained     ') : r.outcome === 'LEAKED' ? style.red('LEAKED        ', process.stdout) : style.yellow(r.outcome.padEnd(14));
      const ev = bestEvidence(r.evidence);
      out.push(`  ${r.id.padEnd(w)}  ${String(r.class).padStart(2)}  ${mark}  ${style.dim(`${r.detail.slice(0, 70)}${ev ? `  [audit #${ev.seq} ${ev.type}]` : ''}`)}`);
    }
  };
  section('Containment', results.filter((r) => r.class !== 15));
  section('Cross-session isolation', results.filter((r) => r.class === 15));
  out.push('', `${sum.contained} contained, ${sum.leaked} leaked, ${sum.notApplicable} not applicable, ${sum.errors} errors.`);
  out.push(sum.leaked === 0 && sum.errors === 0 ? style.green('Nothing leaked.') : style.red(sum.leaked ? 'Something LEAKED: see above.' : 'Some probes could not run: see above.', process.stdout));
  process.stdout.write(out.join('\n') + '\n');
}
