// A running session's control socket: `<session dir>/control.sock`, mode
// 0600, in a 0700 directory the sandbox never sees. Other cordon commands on
// the host use it to act on the session at once (revoke a credential, list
// placeholders). One JSON object per line each way; unknown operations and
// malformed requests get an error reply, never a crash.

import { chmodSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { CordonError } from '../errors.ts';

export type ControlHandler = (req: Record<string, unknown>) => unknown | Promise<unknown>;

export interface ControlServer {
  close(): Promise<void>;
}

const MAX_LINE = 64 * 1024;

export function controlSocketPath(sessionDir: string): string {
  return join(sessionDir, 'control.sock');
}

export async function startControl(sessionDir: string, handlers: Record<string, ControlHandler>): Promise<ControlServer> {
  const path = controlSocketPath(sessionDir);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE) {
        sock.end(JSON.stringify({ ok: false, error: 'request too long' }) + '\n');
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void answer(line).then((reply) => sock.write(JSON.stringify(reply) + '\n'));
      }
    });
  });
  const answer = async (line: string): Promise<Record<string, unknown>> => {
    let req: Record<string, unknown>;
    try {
      req = JSON.parse(line) as Record<string, unknown>;
      if (req === null || typeof req !== 'object' || Array.isArray(req)) throw new Error('not an object');
    } catch {
      return { ok: false, error: 'malformed request' };
    }
    const handler = typeof req.op === 'string' && Object.hasOwn(handlers, req.op) ? handlers[req.op] : undefined;
    if (!handler) return { ok: false, error: `unknown operation ${JSON.stringify(req.op)}` };
    try {
      return { ok: true, result: await handler(req) };
    } catch (e) {
      return { ok: false, error: e instanceof Error ? e.message : String(e) };
    }
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Send one request to a session's control socket and return its result. A
 * session that has just started may not be listening yet: retry for a moment.
 */
export async function callControl(sessionDir: string, req: Record<string, unknown>, timeoutMs = 5000): Promise<unknown> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await callOnce(sessionDir, req, timeoutMs);
    } catch (e) {
      const code = (e as { detail?: { errno?: string } }).detail?.errno;
      if (attempt >= 20 || (code !== 'ENOENT' && code !== 'ECONNREFUSED')) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function callOnce(sessionDir: string, req: Record<string, unknown>, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(controlSocketPath(sessionDir));
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new CordonError('CORDON_INTERNAL', 'the session did not answer'));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.end();
      try {
        const reply = JSON.parse(buf.slice(0, nl)) as { ok: boolean; result?: unknown; error?: string };
        if (reply.ok) resolve(reply.result);
        else reject(new CordonError('CORDON_USAGE', reply.error ?? 'the session refused the request'));
      } catch {
        reject(new CordonError('CORDON_INTERNAL', 'malformed reply from the session'));
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      const errno = (e as NodeJS.ErrnoException).code;
      reject(new CordonError('CORDON_USAGE', `cannot reach the session (${errno ?? e.message}): is it still running?`, { detail: { errno } }));
    });
  });
}
