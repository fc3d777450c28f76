// A "LAN host" for the selftest: a listener on a private address that really
// exists and is reachable from the proxy, in a network namespace selftest
// creates (root only). The loopback attackers prove that nothing is dialled
// to the host's own services; this one proves that a private address one hop
// away (a router, a NAS, a cloud VPC neighbour) gets no byte either, although
// the host could reach it.
//
//   host netns  cs<pid36>-<id>h  10.213.R.1/30  <->  cs<pid36>-<id>n  10.213.R.2/30  netns cordon-st-<pid>-<id>
//
// Only that /30 is routed (the kernel's connected route), chosen so that it
// overlaps no address or route the host already has, and checked afterwards
// to be this run's alone (two runs at once must not share a subnet); nothing
// else on the host changes. A node process inside the namespace listens on
// LAN_PORTS and reports every connection and every byte on its stdout, one
// JSON line each; they become Hits of the attacker recorder, so every probe's
// judgement sees them. Everything is removed on close, on exit, and on SIGINT
// or SIGTERM; namespaces and links of runs that died anyway (their pid is in
// the names) are removed at the next start. Runs in other PID namespaces that
// share /run/netns would look dead to this sweep: run one selftest per host.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { procStartTime } from '../lock-file.ts';
import type { Hit } from './attacker.ts';

export const LAN_PORTS = [80, 443, 8080] as const;
const NS_PREFIX = 'cordon-st-';
const LINK = /^(cs([0-9a-z]+)-[0-9a-f]{3}[hn])(?:@|:|$)/;

const alive = (pid: number) => procStartTime(pid) !== null;

/** 10.213.r.0/30 overlaps a route or address of the host (parsed from `ip -4 route show table all` and `ip -4 -o addr`). */
export function overlaps(r: number, routes: string): boolean {
  const ours = (10 << 24) | (213 << 16) | (r << 8);
  for (const line of routes.split('\n')) {
    const m = /(?:^|\s)(\d+)\.(\d+)\.(\d+)\.(\d+)(?:\/(\d+))?/.exec(line);
    if (!m || /^default\b/.test(line.trim())) continue;
    const len = m[5] === undefined ? 32 : Number(m[5]);
    const net = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
    const bits = Math.min(len, 30);
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    if (((net & mask) >>> 0) === ((ours & mask) >>> 0)) return true;
  }
  return false;
}

export interface LanHost {
  ip: string;
  ports: readonly number[];
  namespace: string;
  close(): Promise<void>;
}

export interface LanUnavailable {
  unavailable: string;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 }).toString();

/** The listener, run with node inside the namespace: one JSON line per event on stdout. */
const LISTENER = String.raw`
const net = require('node:net');
const out = (o) => process.stdout.write(JSON.stringify({ ...o, at: Date.now() }) + '\n');
let id = 0, ready = 0;
const ports = process.argv.slice(1).map(Number);
for (const port of ports) {
  const s = net.createServer((c) => {
    const cid = ++id;
    out({ t: 'conn', id: cid, port, peer: c.remoteAddress + ':' + c.remotePort });
    c.on('data', (d) => {
      out({ t: 'data', id: cid, b64: d.toString('base64') });
      c.write('HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nlan-host\n');
    });
    c.on('error', () => {});
    c.setTimeout(10000, () => c.destroy());
  });
  s.listen(port, '0.0.0.0', () => { if (++ready === ports.length) out({ t: 'ready' }); });
}
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

/** Remove namespaces (and their veth pairs) left by selftest runs whose process is gone. */
function sweepStale(): void {
  let list = '';
  try {
    list = ip('netns', 'list');
  } catch {
    return;
  }
  for (const line of list.split('\n')) {
    const m = new RegExp(`^(${NS_PREFIX}(\\d+)-[0-9a-f]+)`).exec(line.trim());
    if (!m) continue;
    if (alive(Number(m[2]))) continue;
    try {
      ip('netns', 'del', m[1]!);
    } catch {
      // already gone
    }
  }
  // A pair left in the host namespace by a run that died between creating it and moving one end away.
  let links = '';
  try {
    links = ip('-o', 'link', 'show');
  } catch {
    return;
  }
  for (const line of links.split('\n')) {
    const m = LINK.exec(line.replace(/^\d+:\s*/, ''));
    if (!m || alive(Number.parseInt(m[2]!, 36))) continue;
    try {
      ip('link', 'del', m[1]!);
    } catch {
      // the other end of a pair already removed
    }
  }
}

/** Start the LAN host; `onHit` gets each connection (its bytes grow as they arrive). */
export async function startLanHost(onHit: (h: Hit) => void): Promise<LanHost | LanUnavailable> {
  if (process.getuid?.() !== 0) return { unavailable: 'the LAN host needs root (it creates a network namespace and a veth pair)' };
  try {
    ip('-V');
  } catch {
    return { unavailable: 'the LAN host needs the ip command (apt-get install -y iproute2)' };
  }
  sweepStale();
  let last = 'no free 10.213.x.0/30 subnet for the LAN host';
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = await setUp(onHit);
    if ('ip' in r) return r;
    last = r.unavailable;
    if (!r.retry) break;
  }
  return { unavailable: last };
}

async function setUp(onHit: (h: Hit) => void): Promise<LanHost | (LanUnavailable & { retry: boolean })> {
  const id = randomBytes(2).toString('hex').slice(0, 3);
  const ns = `${NS_PREFIX}${process.pid}-${id}`;
  const hostIf = `cs${process.pid.toString(36)}-${id}h`;
  const nsIf = `cs${process.pid.toString(36)}-${id}n`;
  const taken = `${ip('-4', 'route', 'show', 'table', 'all')}\n${ip('-4', '-o', 'addr', 'show')}`;
  let subnet = -1;
  for (let tries = 0; tries < 64 && subnet < 0; tries++) {
    const r = randomBytes(1)[0]!;
    if (!overlaps(r, taken)) subnet = r;
  }
  if (subnet < 0) return { unavailable: 'no 10.213.x.0/30 subnet is free of the host\'s routes and addresses', retry: false };
  const hostIp = `10.213.${subnet}.1`;
  const lanIp = `10.213.${subnet}.2`;
  const undo: Array<() => void> = [];
  const cleanup = () => {
    for (const u of undo.reverse()) {
      try {
        u();
      } catch {
        // best effort: sweepStale removes what is left
      }
    }
    undo.length = 0;
  };
  let child: ChildProcess | null = null;
  try {
    ip('netns', 'add', ns);
    undo.push(() => ip('netns', 'del', ns));
    ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
    undo.push(() => ip('link', 'del', hostIf));
    ip('link', 'set', nsIf, 'netns', ns);
    ip('addr', 'add', `${hostIp}/30`, 'dev', hostIf);
    ip('link', 'set', hostIf, 'up');
    // Another run may have picked the same subnet at the same moment: it must be ours alone.
    const holders = ip('-4', '-o', 'addr', 'show', 'to', `10.213.${subnet}.0/30`).split('\n').filter((l) => l.trim() !== '');
    if (holders.length !== 1) {
      cleanup();
      return { unavailable: `10.213.${subnet}.0/30 was taken at the same time by another interface`, retry: true };
    }
    ip('-n', ns, 'addr', 'add', `${lanIp}/30`, 'dev', nsIf);
    ip('-n', ns, 'link', 'set', nsIf, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    const c = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', LISTENER, ...LAN_PORTS.map(String)], { stdio: ['pipe', 'pipe', 'pipe'] });
    child = c;
    undo.push(() => c.kill('SIGKILL'));
    const conns = new Map<number, Hit>();
    let stderr = '';
    c.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the LAN host listener did not start: ${stderr.trim() || 'no output'}`)), 10_000);
      c.once('exit', (code) => reject(new Error(`the LAN host listener exited (${code}): ${stderr.trim()}`)));
      createInterface({ input: c.stdout! }).on('line', (line) => {
        let ev: { t: string; id?: number; port?: number; peer?: string; b64?: string; at: number };
        try {
          ev = JSON.parse(line);
        } catch {
          return;
        }
        if (ev.t === 'ready') {
          clearTimeout(timer);
          resolve();
        } else if (ev.t === 'conn') {
          const h: Hit = { at: ev.at, endpoint: `LAN host ${lanIp} tcp/${ev.port}`, peer: ev.peer ?? '?', bytes: Buffer.alloc(0), note: 'connection' };
          conns.set(ev.id!, h);
          onHit(h);
        } else if (ev.t === 'data') {
          const h = conns.get(ev.id!);
          if (h) h.bytes = Buffer.concat([h.bytes, Buffer.from(ev.b64 ?? '', 'base64')]);
        }
      });
    });
  } catch (e) {
    cleanup();
    return { unavailable: `the LAN host could not be set up: ${e instanceof Error ? e.message : String(e)}`, retry: false };
  }
  const onExit = () => cleanup();
  // A signal ends the process without 'exit': clean up, then let the signal do what it would have.
  const onSignal = (sig: NodeJS.Signals) => {
    detach();
    cleanup();
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  };
  const detach = () => {
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.once('exit', onExit);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    ip: lanIp,
    ports: LAN_PORTS,
    namespace: ns,
    async close() {
      detach();
      child?.stdin?.end();
      cleanup();
    },
  };
}
