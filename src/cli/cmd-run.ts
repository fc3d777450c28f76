// `cordon run`: contain a command.

import { CordonError, EXIT } from '../errors.ts';
import { parseDuration } from '../policy/units.ts';
import { runSession } from '../session/run.ts';
import { notice, printJson } from './output.ts';

export interface RunCliOptions {
  policy?: string;
  workspace?: string;
  timeout?: string;
  tty?: boolean;
  dryRun?: boolean;
  keepFiles?: boolean;
  json?: boolean;
}

export async function cmdRun(command: string[], o: RunCliOptions): Promise<number> {
  if (command.length === 0) throw new CordonError('CORDON_USAGE', 'no command given', { hint: 'cordon run -- COMMAND [ARGS...]' });
  let timeoutMs: number | null | undefined;
  if (o.timeout !== undefined) {
    timeoutMs = o.timeout === 'unlimited' ? null : parseDuration(o.timeout);
    if (timeoutMs === undefined) throw new CordonError('CORDON_USAGE', `--timeout: "${o.timeout}" is not a duration`, { hint: 'e.g. 90s, 30m, 2h, 1h30m' });
  }
  const res = await runSession({
    argv: command,
    policyFile: o.policy,
    workspace: o.workspace,
    timeoutMs,
    tty: o.tty,
    dryRun: o.dryRun,
    keepFiles: o.keepFiles,
    notice,
  });
  if (res.dryRun) {
    const d = res.dryRun;
    if (o.json) printJson({ sessionId: res.sessionId, argv: d.argv, env: d.env, fds: d.fds, events: d.plan.events, policyHash: d.policy.hash });
    else {
      process.stdout.write(`# environment\n${Object.entries(d.env).map(([k, v]) => `${k}=${v}`).join('\n')}\n`);
      const redirs = Object.entries(d.fds).map(([fd, file]) => `${fd}<${shellQuote(file)}`);
      process.stdout.write(`# command line (bwrap also wants a status pipe on fd 4 and fd 5)\n${[...d.argv.map(shellQuote), ...redirs, '4>/dev/null', '5>/dev/null'].join(' ')}\n`);
    }
    return EXIT.ok;
  }
  return res.status;
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_\-./=:,+@%]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * `cordon run` without the general option parser (it costs start-up time on
 * the path that matters most). Returns null when the arguments need the full
 * parser: help, unknown options, errors — which then reports them properly.
 */
export function parseRunArgs(args: string[]): { command: string[]; options: RunCliOptions } | null {
  const o: RunCliOptions = {};
  const withValue: Record<string, keyof RunCliOptions> = { '-p': 'policy', '--policy': 'policy', '-w': 'workspace', '--workspace': 'workspace', '-t': 'timeout', '--timeout': 'timeout' };
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-')) break;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const key = withValue[name];
    if (key) {
      const v = eq > 0 && a.startsWith('--') ? a.slice(eq + 1) : args[++i];
      if (v === undefined) return null;
      (o as Record<string, unknown>)[key] = v;
    } else if (a === '--tty') o.tty = true;
    else if (a === '--no-tty') o.tty = false;
    else if (a === '--dry-run') o.dryRun = true;
    else if (a === '--keep-files') o.keepFiles = true;
    else if (a === '--json') o.json = true;
    else return null;
  }
  const command = args.slice(i);
  return command.length > 0 ? { command, options: o } : null;
}
