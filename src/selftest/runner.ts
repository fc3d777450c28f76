// Runs probes, each in a fresh real session (`cordon run`, the same command a
// user runs), then judges on the host: a probe is contained only if no canary
// appears in anything that left the sandbox and its host-side check passes.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AuditStore, type AuditRecord } from '../audit/index.ts';
import { canary } from './fixture.ts';
import { startSentinel } from './probes/control-plane.ts';
import { peerScript } from './probes/cross-session.ts';
import type { Fixture, Peer, Probe, ProbeContext, ProbeResult, ProbeRun } from './types.ts';

export interface BatteryOptions {
  fixture: Fixture;
  /** How to start cordon: e.g. [process.execPath, '/path/dist/cordon.mjs']. */
  cordon: string[];
  probes: readonly Probe[];
  /** --policy for every session (the user's policy under test). */
  policyFile?: string;
  /**
   * --policy for the probes marked `credentials` and for the peer session: the
   * battery policy with the test credential bound (attacker.ts batteryPolicy
   * with `credentials`; fixture.ts addTestCredential). Without it those probes
   * do not apply.
   */
  credentialPolicyFile?: string;
  /** Extra `cordon run` options (e.g. ['--timeout', '30s']). */
  runArgs?: string[];
  onProgress?: (done: number, total: number, result: ProbeResult) => void;
  probeTimeoutMs?: number;
}

export interface CordonProcess {
  done: Promise<ProbeRun>;
  child: ChildProcess;
}

export function startCordon(cordon: string[], args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): CordonProcess {
  const child = spawn(cordon[0]!, [...cordon.slice(1), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const done = new Promise<ProbeRun>((resolve) => {
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ status: code ?? 128 + (signal ? 9 : 0), stdout, stderr, sessionId: null });
    });
  });
  return { done, child };
}

export function runCordon(cordon: string[], args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ProbeRun> {
  return startCordon(cordon, args, env, timeoutMs).done;
}

function lastSession(stateDir: string, exclude: string | null): string | null {
  if (!existsSync(join(stateDir, 'audit.db'))) return null;
  const store = AuditStore.open(stateDir);
  try {
    const starts = store.tail(20, { type: 'session.start' }).filter((r) => r.session !== exclude);
    return starts.at(-1)?.session ?? null;
  } finally {
    store.close();
  }
}

function evidenceFor(stateDir: string, session: string | null): ProbeResult['evidence'] {
  if (session === null) return [];
  const store = AuditStore.open(stateDir);
  try {
    const recs: AuditRecord[] = [...store.records({ session })];
    return recs.map((r) => ({ seq: r.seq, type: r.type, summary: summarize(r) }));
  } finally {
    store.close();
  }
}

function summarize(r: AuditRecord): string {
  const d = r.data as Record<string, unknown>;
  switch (r.type) {
    case 'sandbox.plan': {
      const mounts = (d.mounts as unknown[] | undefined)?.length ?? 0;
      const masked = (d.masked as unknown[] | undefined)?.length ?? 0;
      const prot = (d.protected as unknown[] | undefined)?.length ?? 0;
      return `${mounts} host paths mounted, ${masked} masked, ${prot} protected read-only`;
    }
    case 'env.filter':
      return `${(d.dropped as unknown[] | undefined)?.length ?? 0} host variables withheld`;
    case 'session.end':
      return `exit ${String(d.status)}`;
    case 'workspace.quarantine':
      return `quarantined ${String(d.path)}`;
    case 'net.request':
      return `${String(d.decision)} ${String(d.method)} ${String(d.host)}:${String(d.port)}${String(d.path ?? '')}${d.reason ? ` (${String(d.reason)})` : ''}`;
    case 'net.flow':
      return `${String(d.decision)} ${String(d.mode)} flow to ${String(d.host ?? d.original)}:${String(d.port ?? '')}${d.reason ? ` (${String(d.reason)})` : ''}`;
    case 'dns.query':
      return `${String(d.decision)} ${String(d.type)} ${String(d.name)} -> ${String(d.rcode)}`;
    case 'net.budget':
      return `budget ${String(d.budget)} spent: ${String(d.used)} of ${String(d.limit)}`;
    case 'cred.leak':
      return `leak: ${String(d.kind ?? '')} ${String(d.secretName ?? '')} (${String(d.encoding ?? '')}) in ${String(d.where ?? '')} headed to ${String(d.destination ?? '')}${d.revoked ? ', revoked' : ''}`;
    case 'cred.canary':
      return `canary: (${String(d.encoding ?? '')}) in ${String(d.where ?? '')} headed to ${String(d.destination ?? '')}`;
    case 'cred.refused':
      return `refused: ${String(d.reason ?? d.secretName ?? '')}`;
    case 'cred.use':
      return `use: ${String(d.secretName ?? '')} injected for ${String(d.method)} ${String(d.host)}:${String(d.port)}${String(d.path ?? '')} (${(d.sites as unknown[] | undefined)?.join(', ') ?? ''})`;
    case 'cred.scrubbed':
      return `scrubbed: ${String(d.count)} value(s) in the response ${String(d.in ?? '')}`;
    default:
      return Object.keys(d).slice(0, 4).join(', ');
  }
}

/** Every canary, in the encodings an exfiltrating agent would use. */
function canaryForms(values: string[]): string[] {
  const out: string[] = [];
  for (const v of values) out.push(v, Buffer.from(v).toString('base64').slice(0, 24), Buffer.from(v).toString('hex'));
  return out;
}

export async function runBattery(opts: BatteryOptions): Promise<ProbeResult[]> {
  const { fixture } = opts;
  const timeout = opts.probeTimeoutMs ?? 60_000;
  const argsFor = (policy: string | undefined) => ['run', '--no-tty', ...(policy ? ['--policy', policy] : []), ...(opts.runArgs ?? [])];
  const baseArgs = argsFor(opts.policyFile);
  const credArgs = opts.credentialPolicyFile ? argsFor(opts.credentialPolicyFile) : null;
  const credEnv = credArgs ? (fixture.credentials?.env ?? null) : null;
  const sentinel = startSentinel();
  const env = { ...fixture.env, CORDON_SELFTEST_SENTINEL_PID: String(sentinel.pid) };
  const ctxFixture: Fixture = { ...fixture, env };
  let peer: Peer | null = null;
  let peerProc: CordonProcess | null = null;
  const results: ProbeResult[] = [];
  try {
    for (const probe of opts.probes) {
      const started = Date.now();
      const noOverlay = probe.credentials && !credArgs ? 'not applicable: the battery runs without a credentials overlay (proxy mode, a test secret in the vault)' : null;
      if (probe.needsPeer && peer === null && noOverlay === null) {
        const ws = join(fixture.root, 'peer-workspace');
        mkdirSync(ws, { recursive: true });
        // A peer of an earlier run in this fixture left these: wait for this one's.
        for (const f of ['.peer-ready', '.peer-placeholder']) rmSync(join(ws, f), { force: true });
        const peerCanary = canary('peer');
        // With a credentials overlay the peer holds a placeholder too, and writes it where the host can read it.
        const peerArgs = credArgs ?? baseArgs;
        peerProc = startCordon(opts.cordon, [...peerArgs, '--workspace', ws, '--', 'sh', '-c', peerScript(peerCanary, credEnv)], env, 150_000);
        const t0 = Date.now();
        while (!existsSync(join(ws, '.peer-ready')) && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
        const placeholder = credEnv && existsSync(join(ws, '.peer-placeholder')) ? readFileSync(join(ws, '.peer-placeholder'), 'latin1').trim() || null : null;
        peer = { sessionId: lastSession(fixture.stateDir, null), workspace: ws, canary: peerCanary, pid: peerProc.child.pid ?? 0, placeholder };
      }
      const ctx: ProbeContext = { fixture: ctxFixture, peer };
      const na = noOverlay ?? probe.applies?.(ctx) ?? null;
      let result: ProbeResult;
      if (na !== null) {
        result = { id: probe.id, class: probe.class, title: probe.title, outcome: 'not applicable', detail: na, sessionId: null, evidence: [], durationMs: 0 };
      } else {
        const args = probe.credentials && credArgs ? credArgs : baseArgs;
        const run = await runCordon(opts.cordon, [...args, '--workspace', fixture.workspace, '--', 'sh', '-c', probe.script(ctx)], env, timeout);
        run.sessionId = lastSession(fixture.stateDir, peer?.sessionId ?? null);
        const secrets = [...Object.values(fixture.canaries), ...(peer ? [peer.canary] : [])];
        const seen = canaryForms(secrets).find((c) => run.stdout.includes(c) || run.stderr.includes(c));
        let leak: string | null = seen ? `a planted secret reached the output (${seen.slice(0, 32)}...)` : null;
        if (leak === null) {
          try {
            leak = probe.leak?.(run, ctx) ?? null;
          } catch (e) {
            leak = `the host-side check failed: ${(e as Error).message}`;
          }
        }
        // A session cordon refused to start proves nothing: that is an error, not containment.
        const outcome = leak !== null ? 'LEAKED' : run.status === 125 ? 'error' : 'contained';
        result = {
          id: probe.id,
          class: probe.class,
          title: probe.title,
          outcome,
          detail: leak ?? (outcome === 'error' ? `cordon failed: ${run.stderr.trim().split('\n')[0] ?? ''}` : firstLines(run.stdout + run.stderr)),
          sessionId: run.sessionId,
          evidence: evidenceFor(fixture.stateDir, run.sessionId),
          durationMs: Date.now() - started,
        };
      }
      results.push(result);
      opts.onProgress?.(results.length, opts.probes.length, result);
    }
  } finally {
    sentinel.stop();
    if (peerProc) {
      // The peer's sandbox sleeps; SIGTERM makes cordon stop it and clean up.
      peerProc.child.kill('SIGTERM');
      await peerProc.done;
    }
  }
  return results;
}

function firstLines(s: string): string {
  return s
    .trim()
    .split('\n')
    .filter((l) => !l.startsWith('cordon: ignoring '))
    .slice(0, 3)
    .join(' | ')
    .slice(0, 200);
}

/** Record types in the order they best show a decision. */
const EVIDENCE_ORDER = ['cred.leak', 'cred.canary', 'cred.refused', 'cred.scrubbed', 'cred.use', 'net.budget', 'net.request', 'net.flow', 'dns.query', 'workspace.quarantine', 'limit.hit', 'sandbox.plan', 'env.filter', 'session.end'];

export function bestEvidence(evidence: ProbeResult['evidence']): ProbeResult['evidence'][number] | undefined {
  for (const t of EVIDENCE_ORDER) {
    const denied = evidence.find((e) => e.type === t && /deny|refus|block|leak/i.test(e.summary));
    if (denied) return denied;
  }
  for (const t of EVIDENCE_ORDER) {
    const e = evidence.find((x) => x.type === t);
    if (e) return e;
  }
  return evidence[0];
}
