// `cordon sessions` and `cordon token list|revoke`: act on running sessions
// through their control sockets.

import { CordonError, EXIT } from '../errors.ts';
import { hostPaths } from '../paths.ts';
import { callControl } from '../session/control.ts';
import { listSessions, type SessionInfo } from '../session/journal.ts';
import { printJson, style } from './output.ts';

function pick(sessionId: string | undefined): SessionInfo {
  const live = listSessions(hostPaths().runtime).filter((s) => s.alive);
  if (sessionId !== undefined) {
    const s = live.find((x) => x.sessionId === sessionId || x.sessionId.endsWith(sessionId));
    if (!s) throw new CordonError('CORDON_USAGE', `no running session ${sessionId}`, { hint: 'cordon sessions lists them' });
    return s;
  }
  if (live.length === 1) return live[0]!;
  if (live.length === 0) throw new CordonError('CORDON_USAGE', 'no cordon session is running');
  throw new CordonError('CORDON_USAGE', `${live.length} sessions are running: say which with --session`, { hint: live.map((s) => s.sessionId).join(', ') });
}

export async function cmdSessions(o: { json?: boolean }): Promise<number> {
  const all = listSessions(hostPaths().runtime).filter((s) => s.alive);
  if (o.json) printJson({ sessions: all });
  else if (all.length === 0) process.stdout.write('no running sessions\n');
  else for (const s of all) process.stdout.write(`${s.sessionId}  pid ${s.pid}  ${s.startedAt ?? ''}  ${s.workspace}  ${style.dim(s.argv.join(' ').slice(0, 60))}\n`);
  return EXIT.ok;
}

interface TokenRow {
  secret: string;
  binding: number;
  prefix: string;
  expiresAt: number | null;
  revoked: boolean;
}

export async function cmdTokenList(o: { session?: string; json?: boolean }): Promise<number> {
  const s = pick(o.session);
  const rows = (await callControl(s.dir, { op: 'credentials.list' })) as TokenRow[];
  if (o.json) printJson({ session: s.sessionId, credentials: rows });
  else if (rows.length === 0) process.stdout.write(`${s.sessionId}: no credential bindings\n`);
  else
    for (const r of rows) {
      const state = r.revoked ? style.red('revoked', process.stdout) : r.expiresAt !== null && r.expiresAt < Date.now() ? 'expired' : style.green('live');
      process.stdout.write(`${r.secret.padEnd(24)} binding ${r.binding}  ${r.prefix}...  ${state}${r.expiresAt ? `  until ${new Date(r.expiresAt).toISOString()}` : ''}\n`);
    }
  return EXIT.ok;
}

export async function cmdTokenRevoke(secrets: string[], o: { session?: string; all?: boolean; json?: boolean }): Promise<number> {
  if (secrets.length === 0 && !o.all) throw new CordonError('CORDON_USAGE', 'name the secrets to revoke, or --all');
  const s = pick(o.session);
  const revoked = (await callControl(s.dir, { op: 'credentials.revoke', secrets: o.all ? null : secrets })) as string[];
  if (o.json) printJson({ session: s.sessionId, revoked });
  else process.stdout.write(revoked.length ? `revoked in ${s.sessionId}: ${revoked.join(', ')} (the next matching request fails)\n` : `nothing to revoke in ${s.sessionId}\n`);
  return revoked.length > 0 || o.all ? EXIT.ok : EXIT.failed;
}
