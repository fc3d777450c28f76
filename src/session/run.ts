// One contained run: the composition root. It loads the policy, plans mounts,
// environment and limits, starts the backend, relays signals, enforces the
// wall-clock timeout, audits every decision it can observe, and cleans up.

import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { AuditStore } from '../audit/index.ts';
import { asCordonError, EXIT } from '../errors.ts';
import { hostPaths, type HostPaths } from '../paths.ts';
import { loadPolicy } from '../policy/load.ts';
import type { LoadedPolicy } from '../policy/types.ts';
import type { ExitInfo, LimitHit, PreparedStart, SandboxSpec } from '../sandbox/backend.ts';
import { landlockAvailable } from '../sandbox/bwrap/checks.ts';
import { nativeBinary } from '../sandbox/bwrap/backend.ts';
import { buildEnv } from '../sandbox/env.ts';
import { cachedEtc } from '../sandbox/etc-files.ts';
import { killSessionCgroups, sweepStaleCgroups } from '../sandbox/limits.ts';
import { emptySources, planMounts, resolveWorkspace, type MountPlan } from '../sandbox/mount-plan.ts';
import { sweepProtected, type SweepResult } from '../sandbox/protect.ts';
import { createBackend } from '../sandbox/registry.ts';
import type { SessionCredentials } from '../broker/types.ts';
import type { ControlServer } from './control.ts';
import { newSessionId } from './ids.ts';
import { sandboxNetworkEnv, SANDBOX_RESOLVER } from './network-env.ts';
import type { SessionNetwork } from './network.ts';
import type { PolicyWatcher } from './policy-watch.ts';
import {
  adoptPlaceholders,
  createSessionDir,
  placeholdersInUse,
  procStartTime,
  releasePlaceholders,
  removeSessionDir,
  sweepDeadSessions,
  withPlaceholderLock,
  writeJournal,
  type Journal,
} from './journal.ts';

export interface RunOptions {
  argv: string[];
  policyFile?: string;
  workspace?: string;
  /** Overrides limits.timeout. */
  timeoutMs?: number | null;
  /** Give the sandbox a pty (default: when stdin and stdout are terminals). */
  tty?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Report progress / notices (stderr in the CLI). */
  notice?: (msg: string) => void;
  /** Print the plan and the command line instead of running. */
  dryRun?: boolean;
  /** With dryRun: keep the session's generated files so the command line can be run by hand. */
  keepFiles?: boolean;
  /** Tests: force rlimits instead of cgroups. */
  limitsMode?: 'auto' | 'rlimit';
}

export interface RunResult {
  sessionId: string;
  exit: ExitInfo | null;
  /** What `cordon run` exits with. */
  status: number;
  limitHits: LimitHit[];
  quarantined: { rel: string; why: string }[];
  dryRun?: { argv: string[]; env: Record<string, string>; fds: Record<number, string>; plan: MountPlan; policy: LoadedPolicy };
}

export async function runSession(opts: RunOptions): Promise<RunResult> {
  const env = opts.env ?? process.env;
  // CORDON_TRACE=1: time every phase on stderr (ms since the process started).
  const trace = env.CORDON_TRACE ? (what: string) => process.stderr.write(`cordon-trace ${performance.now().toFixed(1)} ${what}\n`) : () => {};
  trace('session');
  const paths = hostPaths(env);
  const notice = opts.notice ?? (() => {});
  ensurePrivateDir(paths.state);
  ensurePrivateDir(paths.runtime);

  const sessionId = newSessionId();
  // Opened once the backend has its head start (the open overlaps it); an
  // error before that opens it to record the error.
  let auditStore: AuditStore | null = null;
  const openAudit = () => (auditStore ??= AuditStore.open(paths.state));
  const started = Date.now();
  let sessionDir: string | null = null;
  let plan: MountPlan | null = null;
  /** Placeholders this session depends on (its own and adopted ones), until released. */
  let ownedPlaceholders: { path: string; dir: boolean }[] = [];
  let journal: Journal | null = null;
  /** Placeholders could not be released (no lock): the journal stays for a later start's sweep. */
  let keepJournal = false;
  let deadSessions: string[] = [];
  let prepared: PreparedStart | null = null;
  let network: SessionNetwork | null = null;
  let control: ControlServer | null = null;
  const creds: { current: SessionCredentials | null } = { current: null };
  let watcher: PolicyWatcher | null = null;
  try {

    trace('workspace');
    const workspace = resolveWorkspace(opts.workspace ?? process.cwd());
    const loaded = await loadPolicy({ paths, policyFile: opts.policyFile, workspace, env });
    for (const w of loaded.warnings) notice(w);
    trace('policy loaded');
    const policy = loaded.policy;
    const limits = { ...policy.limits };
    if (opts.timeoutMs !== undefined) limits.timeoutMs = opts.timeoutMs;

    const hostUid = process.getuid?.() ?? 0;
    const uid = hostUid === 0 ? 1000 : hostUid;
    const gid = hostUid === 0 ? 1000 : (process.getgid?.() ?? uid);
    const user = hostUid === 0 ? 'agent' : safeUserName();
    const home = paths.home;

    const tty = opts.tty ?? (process.stdin.isTTY === true && process.stdout.isTTY === true);
    const proxyMode = policy.network.mode === 'proxy';
    const envResult = buildEnv({ policy, hostEnv: env, home, user, sessionId });
    if (proxyMode) Object.assign(envResult.env, sandboxNetworkEnv());
    // Credentials: real values from the vault stay in this process; the
    // sandbox gets placeholders (variables now, files with the mounts).
    const { bindings, canaries } = policy.credentials;
    if (!opts.dryRun && (bindings.length > 0 || canaries.length > 0)) {
      // Loaded only when needed: the vault and broker cost start-up time.
      const { issueSessionCredentials } = await import('./credentials.ts');
      creds.current = await issueSessionCredentials({ sessionId, bindings, canaries, stateDir: paths.state, home, audit: (type, data) => openAudit().append(sessionId, type, data) });
      Object.assign(envResult.env, creds.current.env());
      trace('credentials issued');
    }
    const requireLandlock = cachedLandlock(paths);
    const backend = createBackend(policy.sandbox.backend, {
      installDir: paths.install,
      cacheDir: join(paths.state, 'cache'),
      requireLandlock,
      hostUid,
      limitsMode: opts.limitsMode ?? (env.CORDON_LIMITS_MODE === 'rlimit' ? 'rlimit' : 'auto'),
      bwrapPath: env.CORDON_BWRAP || undefined,
    });
    // Head start: the backend's slow, spec-independent work (joining cgroups)
    // overlaps the planning below.
    if (!opts.dryRun && backend.prepare) prepared = await backend.prepare({ sessionId, limits, env: envResult.env, tty });
    trace('backend prepared');
    const audit = openAudit();
    if (creds.current) audit.addRedactor(creds.current.redactor());
    for (const w of loaded.warnings) audit.append(sessionId, 'policy.warning', { message: w });

    sessionDir = createSessionDir(paths.runtime, sessionId);
    const cacheDir = join(paths.state, 'cache');
    if (proxyMode && !opts.dryRun) {
      const { startSessionNetwork } = await import('./network.ts');
      network = await startSessionNetwork({
        sessionId,
        sessionDir,
        policy,
        paths,
        audit: (type, data) => audit.append(sessionId, type, data),
        inspectors: creds.current ? [creds.current.inspector()] : [],
      });
      trace('proxy listening');
    }
    const etc = cachedEtc(cacheDir, { user, uid, gid, home, hostname: policy.sandbox.hostname, nameserver: proxyMode ? SANDBOX_RESOLVER : null });
    const empty = emptySources(cacheDir);
    const initBinary = nativeBinary(paths.install, 'cordon-init');
    trace('etc built');
    const planted = creds.current ? (await import('./credentials.ts')).plantFiles(sessionDir, creds.current.files()) : [];
    // Under the placeholder lock (journal.ts): sweep sessions that died without
    // cleaning up (their placeholders could otherwise vanish between this plan,
    // which binds them as real files, and the sandbox's mounts), adopt the
    // placeholders of live sessions in this workspace, plan (which decides
    // this session's own; bwrap creates them), and journal them all, as one step.
    const dir = sessionDir;
    const planned = withPlaceholderLock(paths.runtime, () => {
      const dead = sweepDeadSessions(paths.runtime);
      const adopted = adoptPlaceholders(paths.runtime, workspace, sessionId);
      const p = planMounts({ policy, paths, workspace, home, sessionDir: dir, empty, etc, initBinary, env, extraMounts: [...(network?.mounts ?? []), ...planted] });
      const owned = [...adopted, ...p.placeholders.filter((x) => !adopted.some((a) => a.path === x.path))];
      const j: Journal = {
        pid: process.pid,
        startTime: procStartTime(process.pid) ?? '',
        sessionId,
        workspace,
        placeholders: owned,
        argv: opts.argv,
        startedAt: new Date(started).toISOString(),
      };
      writeJournal(dir, j);
      return { plan: p, owned, journal: j, dead };
    });
    plan = planned.plan;
    ownedPlaceholders = planned.owned;
    journal = planned.journal;
    deadSessions = planned.dead;
    trace('mounts planned');

    const spec: SandboxSpec = {
      sessionId,
      argv: opts.argv,
      cwd: workspace,
      env: envResult.env,
      mounts: plan.mounts,
      hostname: policy.sandbox.hostname,
      uid,
      gid,
      limits,
      network: network ? network.plan : proxyMode ? { kind: 'captured', wrap: (a) => a, env: {} } : { kind: 'loopback' },
      landlock: plan.landlock,
      tty,
      sessionDir,
    };

    if (opts.dryRun) {
      const cl = await backend.commandLine(spec);
      if (opts.keepFiles) {
        // Keep it for the caller, outside the crash sweep (no journal).
        rmSync(join(sessionDir, 'journal.json'), { force: true });
        sessionDir = null;
      }
      return { sessionId, exit: null, status: 0, limitHits: [], quarantined: [], dryRun: { argv: cl.argv, env: cl.env, fds: cl.fds, plan, policy: loaded } };
    }

    audit.append(sessionId, 'session.start', {
      argv: opts.argv,
      workspace,
      backend: backend.name,
      policyHash: loaded.hash,
      layers: loaded.layers.map((l) => ({ role: l.role, source: l.source, sha256: l.sha256, applied: l.applied })),
      limits,
      network: policy.network.mode === 'none' ? 'loopback only' : policy.network.mode,
      tty,
      uid,
      landlock: requireLandlock,
      pid: process.pid,
    });
    trace('audited start');
    const running = await backend.start(spec, prepared ?? undefined);
    prepared = null;
    trace('started');
    // Off the critical path, while the sandbox runs: the rest of the
    // decisions, and removing the cgroups of sessions that died without doing so.
    // An audit failure here still stops the sandbox (fail closed).
    try {
      audit.append(sessionId, 'sandbox.plan', summarizePlan(plan));
      audit.append(sessionId, 'env.filter', { passed: Object.keys(envResult.env).sort(), dropped: envResult.dropped });
      audit.append(sessionId, 'sandbox.limits', { enforcement: running.enforcement });
    } catch (e) {
      running.kill();
      await running.wait();
      throw e;
    }
    // The dead sessions swept before planning: anything left in their cgroups (slow, so not under the lock).
    for (const id of deadSessions) killSessionCgroups(id);
    sweepStaleCgroups();
    trace('swept stale cgroups');
    {
      // The control socket serves a running session only: started off the critical path.
      const { startControl } = await import('./control.ts');
      control = await startControl(sessionDir!, {
        status: () => ({ sessionId, pid: process.pid, workspace, argv: opts.argv, startedAt: new Date(started).toISOString() }),
        'credentials.list': () => creds.current?.list() ?? [],
        'credentials.revoke': (req) => {
          const credentials = creds.current;
          if (!credentials) return [];
          const names = Array.isArray(req.secrets) ? req.secrets.filter((x): x is string => typeof x === 'string') : undefined;
          const revoked = credentials.revoke(names, 'revoked by the user (cordon token revoke)');
          audit.append(sessionId, 'cred.revoke', { secrets: revoked, by: 'user' });
          if (revoked.length) notice(`credentials revoked: ${revoked.join(', ')}`);
          return revoked;
        },
      });
    }

    // Timeout and signals.
    let timedOut = false;
    const timer =
      limits.timeoutMs !== null
        ? setTimeout(() => {
            timedOut = true;
            notice(`timeout of ${limits.timeoutMs} ms reached: stopping the sandbox`);
            running.kill();
          }, limits.timeoutMs)
        : null;
    const relay = installSignalRelay(running, tty);
    if (network) {
      const net = network;
      const { watchPolicy } = await import('./policy-watch.ts');
      watcher = watchPolicy({
        paths,
        policyFile: opts.policyFile,
        workspace,
        env,
        current: loaded,
        onReload: (next, changed) => {
          net.reload(next.policy);
          audit.append(sessionId, 'policy.reload', { policyHash: next.hash, changed, networkRules: next.policy.network.rules.length });
          notice(`policy reloaded: network rules apply now (open connections were closed)${changed.some((c) => c !== 'network') ? '; other changes apply to the next session' : ''}`);
        },
        onError: (message) => {
          audit.append(sessionId, 'policy.reload-failed', { message });
          notice(`policy not reloaded (the running session keeps its rules): ${message}`);
        },
      });
    }

    let exit: ExitInfo;
    try {
      exit = await running.wait();
    } finally {
      watcher?.close();
      await network?.close();
      await control?.close();
      creds.current?.close();
      if (timer) clearTimeout(timer);
      relay.remove();
    }

    trace('exited');
    const hits = running.limitHits();
    if (timedOut) hits.push({ limit: 'timeout', detail: `wall-clock limit of ${limits.timeoutMs} ms reached; the sandbox was killed` });
    for (const h of hits) {
      audit.append(sessionId, 'limit.hit', { ...h });
      notice(`limit reached: ${h.limit}: ${h.detail}`);
    }

    // Undo placeholders no live session still depends on, then look for
    // protected files the agent created (other live sessions' placeholders are
    // theirs). Without the lock the placeholders stay (the journal too, for a
    // later start's sweep), and the look for planted files happens anyway.
    const donePlan = plan;
    const quarantine = join(paths.state, 'quarantine', sessionId);
    let sweep: SweepResult;
    if (releaseOwned()) {
      sweep = sweepProtected(workspace, donePlan.protectPatterns, donePlan.protectScan, quarantine, placeholdersInUse(paths.runtime, sessionId));
    } else {
      const kept = new Set([...placeholdersInUse(paths.runtime, sessionId), ...ownedPlaceholders.map((p) => p.path)]);
      sweep = sweepProtected(workspace, donePlan.protectPatterns, donePlan.protectScan, quarantine, kept);
    }
    for (const q of sweep.quarantined) {
      audit.append(sessionId, 'workspace.quarantine', { path: q.rel, why: q.why, movedTo: q.movedTo });
      notice(`quarantined ${q.rel} (${q.why}); it is in ${q.movedTo}`);
    }
    for (const f of sweep.failed) audit.append(sessionId, 'workspace.quarantine-failed', { path: f.rel, error: f.error });

    trace('swept');
    const status = !exit.started ? EXIT.cordon : timedOut ? EXIT.timeout : exit.status;
    audit.append(sessionId, 'session.end', {
      status,
      commandStatus: exit.started ? exit.status : null,
      signal: exit.signal,
      started: exit.started,
      durationMs: Date.now() - started,
      limitHits: hits.map((h) => h.limit),
    });
    if (!exit.started) notice('the sandbox could not be set up (see the message above); nothing ran');
    trace('audited end');
    return { sessionId, exit, status, limitHits: hits, quarantined: sweep.quarantined };
  } catch (e) {
    const err = asCordonError(e);
    try {
      openAudit().append(sessionId, 'session.error', { code: err.code, message: err.message, durationMs: Date.now() - started });
    } catch {
      // the audit store itself failed: the error below still stops the run
    }
    prepared?.abort();
    creds.current?.close();
    watcher?.close();
    await network?.close().catch(() => {});
    await (control as ControlServer | null)?.close();
    releaseOwned();
    throw err;
  } finally {
    (auditStore as AuditStore | null)?.close();
    if (sessionDir && !keepJournal) removeSessionDir(sessionDir);
  }

  /**
   * Under the lock: remove the placeholders no other live session lists, and
   * empty this session's journal in the same step (else two sessions ending
   * together could each keep them for the other). False when the lock could
   * not be taken: everything stays, journal included.
   */
  function releaseOwned(): boolean {
    if (ownedPlaceholders.length === 0) return true;
    try {
      withPlaceholderLock(paths.runtime, () => {
        releasePlaceholders(paths.runtime, sessionId, ownedPlaceholders);
        if (sessionDir && journal) writeJournal(sessionDir, { ...journal, placeholders: [] });
      });
      ownedPlaceholders = [];
      return true;
    } catch (e) {
      keepJournal = true;
      try {
        openAudit().append(sessionId, 'workspace.placeholders-kept', { reason: e instanceof Error ? e.message : String(e), count: ownedPlaceholders.length });
      } catch {
        // the audit store failed too: the journal still lists them
      }
      return false;
    }
  }
}

function summarizePlan(plan: MountPlan): Record<string, unknown> {
  const by = (k: string) => plan.events.filter((e) => e.kind === k);
  return {
    mounts: by('mount'),
    masked: by('mask'),
    protected: by('protect').map((e) => e.path),
    placeholders: by('placeholder').map((e) => e.path),
    skippedMissing: by('skip-missing'),
    symlinksNotMounted: by('not-mounted-symlink'),
    dangerous: by('dangerous'),
    protectScan: { entries: plan.protectScan.scannedEntries, truncated: plan.protectScan.truncated },
  };
}

interface Relay {
  remove(): void;
}

/**
 * Terminal signals reach cordon (the sandbox runs in its own session). With a
 * pty, Ctrl-C and Ctrl-Z travel as bytes through the relay; here we only pass
 * window changes and termination. Without a pty, we forward them to the
 * command, and stop/continue ourselves along with it for job control.
 */
function installSignalRelay(running: { signal(s: NodeJS.Signals): void; signalHost(s: NodeJS.Signals): void; kill(): void }, tty: boolean): Relay {
  const handlers: [NodeJS.Signals, () => void][] = [];
  const on = (sig: NodeJS.Signals, fn: () => void) => {
    handlers.push([sig, fn]);
    process.on(sig, fn);
  };
  let terms = 0;
  const terminate = (sig: NodeJS.Signals) => () => {
    terms++;
    if (terms > 1) return running.kill();
    running.signal(sig);
    if (tty) running.signalHost(sig);
    setTimeout(() => running.kill(), 3000).unref();
  };
  on('SIGTERM', terminate('SIGTERM'));
  on('SIGHUP', terminate('SIGHUP'));
  if (tty) {
    on('SIGWINCH', () => running.signalHost('SIGWINCH'));
    on('SIGINT', () => running.signal('SIGINT'));
  } else {
    on('SIGINT', () => running.signal('SIGINT'));
    on('SIGQUIT', () => running.signal('SIGQUIT'));
    on('SIGTSTP', () => {
      running.signal('SIGSTOP');
      process.kill(process.pid, 'SIGSTOP');
    });
    on('SIGCONT', () => running.signal('SIGCONT'));
  }
  return {
    remove() {
      for (const [sig, fn] of handlers) process.off(sig, fn);
    },
  };
}

function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

function safeUserName(): string {
  try {
    const n = userInfo().username;
    return /^[a-z_][a-z0-9_-]{0,31}$/i.test(n) ? n : 'agent';
  } catch {
    return 'agent';
  }
}

/** Whether Landlock works here, remembered per boot (probing costs a process). */
function cachedLandlock(paths: HostPaths): boolean {
  let boot = 'unknown';
  try {
    boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    // no boot id: probe every time
  }
  const file = join(paths.state, 'cache', `landlock-${boot}`);
  try {
    return readFileSync(file, 'utf8') === 'yes';
  } catch {
    const yes = landlockAvailable(paths.install);
    try {
      mkdirSync(join(paths.state, 'cache'), { recursive: true, mode: 0o700 });
      writeFileSync(file, yes ? 'yes' : 'no', { mode: 0o600 });
    } catch {
      // cache is an optimisation
    }
    return yes;
  }
}

