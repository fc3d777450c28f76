// A "LAN host" for the selftest: a listener on a private address that really
// exists and is reachable from the proxy, in a network namespace selftest
// creates (root only). The loopback attackers prove that nothing is dialled
// to the host's own services; this one proves that a private address one hop
// away (a router, a NAS, a cloud VPC neighbour) gets no byte either, although
// the host could reach it.
//
//   host netns  cst<id>h  10.213.R.1/30  <->  cst<id>n  10.213.R.2/30  netns cordon-st-<pid>-<id>
//
// Only that /30 is routed (the kernel's connected route); nothing else on the
// host changes. A node process inside the namespace listens on LAN_PORTS and
// reports every connection and every byte on its stdout, one JSON line each;
// they become Hits of the attacker recorder, so every probe's judgement sees
// them. Namespaces of selftest runs that died are removed at the next start.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Hit } from './attacker.ts';

export const LAN_PORTS = [80, 443, 8080] as const;
const NS_PREFIX = 'cordon-st-';

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
    const pid = Number(m[2]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (alive) continue;
    try {
      ip('netns', 'del', m[1]!);
    } catch {
      // already gone
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
  const id = randomBytes(3).toString('hex');
  const ns = `${NS_PREFIX}${process.pid}-${id}`;
  const hostIf = `cst${id}h`;
  const nsIf = `cst${id}n`;
  const taken = ip('-4', '-o', 'addr', 'show');
  let subnet = -1;
  for (let tries = 0; tries < 50 && subnet < 0; tries++) {
    const r = 1 + (randomBytes(1)[0]! % 254);
    if (!taken.includes(` 10.213.${r}.`)) subnet = r;
  }
  if (subnet < 0) return { unavailable: 'no free 10.213.x.0/30 subnet for the LAN host' };
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
    return { unavailable: `the LAN host could not be set up: ${e instanceof Error ? e.message : String(e)}` };
  }
  const onExit = () => cleanup();
  process.once('exit', onExit);
  return {
    ip: lanIp,
    ports: LAN_PORTS,
    namespace: ns,
    async close() {
      process.off('exit', onExit);
      child?.stdin?.end();
      cleanup();
    },
  };
}
