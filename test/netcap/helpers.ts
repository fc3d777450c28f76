// Shared pieces of the capture tests: a fake host-side proxy on a Unix socket
// (records every header line and DNS frame, answers canned responses), a test
// user for the unprivileged runs, and a runner for
//   [runuser -u USER --] cordon-netcap --proxy-socket S -- bwrap ... -- CMD
// Nothing here skips: a missing prerequisite throws, so the test fails and
// says what to install or build.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as dnsPacket from 'dns-packet';
import { capturePlan } from '../../src/netcap/capture.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
export const NETCAP = `${ROOT}/build/native/cordon-netcap`;
export const FIXTURES = `${ROOT}/test/netcap/fixtures`;
export const NODE_DIR = `${ROOT}/node_modules/node`;
/** Where the sandbox sees them. */
export const PROBE = '/t/probe.mjs';
export const NODE_INSIDE = '/opt/node/bin/node';

export const TEST_USER = 'cordonnetcap';
export const WHO = ['root', 'user'] as const;
export type Who = (typeof WHO)[number];

/** The canned answer of the fake proxy's DNS channel for A queries. */
export const DNS_ANSWER = '198.19.0.7';

/** Throws unless cordon-netcap is built from the current source, and the tools exist. */
export function requireNetcap(): void {
  const src = `${ROOT}/native/cordon-netcap.c`;
  if (!existsSync(NETCAP)) throw new Error(`${NETCAP} is missing: run scripts/build-native.sh`);
  if (statSync(src).mtimeMs > statSync(NETCAP).mtimeMs) throw new Error(`${NETCAP} is older than ${src}: run scripts/build-native.sh`);
  for (const [tool, pkg] of [
    ['bwrap', 'bubblewrap'],
    ['nft', 'nftables'],
    ['ip', 'iproute2'],
    ['runuser', 'util-linux'],
    ['curl', 'curl'],
    ['python3', 'python3'],
  ] as const) {
    const r = spawnSync('sh', ['-c', `command -v ${tool}`], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    if (r.status !== 0) throw new Error(`${tool} is required for this test: apt-get install -y ${pkg}`);
  }
  if (process.getuid?.() !== 0) throw new Error('the capture tests run as root (they create an unprivileged test user and run as it too)');
}

/** The unprivileged user of the `user` runs; created on first use. */
export function ensureTestUser(): number {
  const id = () => spawnSync('id', ['-u', TEST_USER], { encoding: 'utf8' });
  let r = id();
  if (r.status !== 0) {
    spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', TEST_USER], { encoding: 'utf8' });
    r = id(); // another test file may have created it meanwhile
    if (r.status !== 0) throw new Error(`cannot create the test user ${TEST_USER} with useradd`);
  }
  return Number(r.stdout.trim());
}

/** A temp dir the test user can enter and read. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(d, 0o755);
  return d;
}

export function removeDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
}

// ------------------------------------------------------------- fake proxy

export interface TcpFlow {
  header: string;
  ip: string;
  port: number;
  clientPort: number;
  /** Bytes the flow carried after the header. */
  bytes: number;
}

export interface DnsFrame {
  clientIp: string;
  clientPort: number;
  name: string | null;
  type: string | null;
}

const HEADER = /^CORDON\/1 TCP (\d{1,3}(?:\.\d{1,3}){3}) (\d{1,5}) (\d{1,5})$/;
const HTTP_REQUEST = /^[A-Z]+ \S+ HTTP\/1\.[01]\r?\n/;

/**
 * The host side of capture, faked: parses the header line strictly and then
 *  - orig port 9: counts bytes, answers the count when the client is done
 *  - orig port 19: reads a decimal line N, sends N bytes
 *  - an HTTP/1 request: answers `200 fake-proxy <ip> <port>`
 *  - anything else: echoes
 * and answers every A query on the DNS channel with DNS_ANSWER.
 */
export class FakeProxy {
  readonly path: string;
  readonly flows: TcpFlow[] = [];
  readonly dns: DnsFrame[] = [];
  readonly bad: string[] = [];
  /** Unix connections accepted, of any kind. */
  connections = 0;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  private constructor(path: string, server: net.Server) {
    this.path = path;
    this.#server = server;
  }

  static async start(dir: string, name = 'proxy.sock'): Promise<FakeProxy> {
    const path = join(dir, name);
    const server = net.createServer({ allowHalfOpen: true });
    const proxy = new FakeProxy(path, server);
    server.on('connection', (s) => proxy.#accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    chmodSync(path, 0o666);
    return proxy;
  }

  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #accept(s: net.Socket): void {
    this.connections++;
    this.#sockets.add(s);
    s.on('close', () => this.#sockets.delete(s));
    s.on('error', () => {});
    let head = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const nl = head.indexOf(0x0a);
      if (nl < 0) {
        if (head.length > 128) {
          this.bad.push(head.toString('latin1'));
          s.destroy();
        }
        return;
      }
      s.off('data', onData);
      const line = head.subarray(0, nl).toString('latin1');
      const rest = head.subarray(nl + 1);
      if (line === 'CORDON/1 DNS') return this.#dns(s, rest);
      const m = HEADER.exec(line);
      if (!m) {
        this.bad.push(line);
        return void s.destroy();
      }
      const flow: TcpFlow = { header: line, ip: m[1]!, port: Number(m[2]), clientPort: Number(m[3]), bytes: 0 };
      this.flows.push(flow);
      this.#tcp(s, flow, rest);
    };
    s.on('data', onData);
  }

  #tcp(s: net.Socket, flow: TcpFlow, first: Buffer): void {
    let mode: 'sink' | 'source' | 'http' | 'echo' | null = flow.port === 9 ? 'sink' : flow.port === 19 ? 'source' : null;
    let pending = Buffer.alloc(0);
    const onChunk = (d: Buffer) => {
      if (d.length === 0) return;
      flow.bytes += d.length;
      if (mode === 'sink') return;
      if (mode === 'echo') return void s.write(d);
      pending = Buffer.concat([pending, d]);
      if (mode === null) mode = HTTP_REQUEST.test(pending.toString('latin1', 0, 256)) ? 'http' : flow.port === 19 ? 'source' : 'echo';
      if (mode === 'echo') {
        s.write(pending);
        pending = Buffer.alloc(0);
      } else if (mode === 'http' && pending.includes('\r\n\r\n')) {
        const body = `fake-proxy ${flow.ip} ${flow.port}\n`;
        s.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
        mode = 'sink';
      } else if (mode === 'source' && pending.includes('\n')) {
        mode = 'sink';
        let left = parseInt(pending.toString('latin1'), 10);
        const chunk = Buffer.alloc(256 * 1024, 0x78);
        const pump = () => {
          while (left > 0) {
            const n = Math.min(left, chunk.length);
            left -= n;
            if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void s.once('drain', pump);
          }
          s.end();
        };
        pump();
      }
    };
    s.on('data', onChunk);
    s.on('end', () => {
      if (flow.port === 9) s.end(`${flow.bytes}\n`);
      else if (mode === 'echo' || mode === null) s.end();
    });
    onChunk(first);
  }

  #dns(s: net.Socket, first: Buffer): void {
    let buf = first;
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const f = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        if (len < 7 || f[0] !== 4) {
          this.bad.push(`dns frame ${f.toString('hex')}`);
          return void s.destroy();
        }
        const clientIp = `${f[1]}.${f[2]}.${f[3]}.${f[4]}`;
        const clientPort = f.readUInt16BE(5);
        const payload = f.subarray(7);
        let q: dnsPacket.Packet | null = null;
        try {
          q = dnsPacket.decode(payload);
        } catch {
          q = null;
        }
        const question = q?.questions?.[0];
        this.dns.push({ clientIp, clientPort, name: question?.name ?? null, type: question?.type ?? null });
        if (!q || !question) continue;
        const response = dnsPacket.encode({
          type: 'response',
          id: q.id ?? 0,
          flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
          questions: [question],
          answers: question.type === 'A' ? [{ type: 'A', class: 'IN', name: question.name, ttl: 5, data: DNS_ANSWER }] : [],
        });
        const out = Buffer.alloc(2 + 7 + response.length);
        out.writeUInt16BE(7 + response.length, 0);
        f.copy(out, 2, 0, 7);
        response.copy(out, 9);
        s.write(out);
      }
    };
    s.on('data', onData);
    s.on('end', () => s.end());
    onData(Buffer.alloc(0));
  }
}

// ----------------------------------------------------------------- runner

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  who: Who;
  socket: string;
  /** Command inside the sandbox (unless `prog` replaces the sandbox). */
  cmd?: string[];
  /** The sandbox's whole environment (PATH is added). */
  env?: Record<string, string>;
  /** Extra read-only binds, [host, sandbox]. */
  binds?: Array<[string, string]>;
  /** A dir with resolv.conf for /etc/resolv.conf. */
  etcDir?: string;
  /** Extra cordon-netcap options. */
  netcapArgs?: string[];
  /** Replace bwrap: run this as PROG directly. */
  prog?: string[];
  timeoutMs?: number;
}

/** The sandbox of the brief, with the probe, Node and a resolv.conf. */
export function sandboxArgv(o: RunOptions): string[] {
  const a = ['bwrap', '--unshare-user', '--unshare-pid', '--uid', '1000', '--gid', '1000', '--cap-drop', 'ALL', '--die-with-parent', '--new-session'];
  a.push('--ro-bind', '/usr', '/usr', '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64');
  a.push('--symlink', 'usr/sbin', '/sbin', '--ro-bind', '/etc/alternatives', '/etc/alternatives', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
  a.push('--ro-bind', FIXTURES, '/t', '--ro-bind', NODE_DIR, '/opt/node');
  if (o.etcDir) a.push('--ro-bind', join(o.etcDir, 'resolv.conf'), '/etc/resolv.conf', '--ro-bind', join(o.etcDir, 'hosts'), '/etc/hosts');
  for (const [src, dest] of o.binds ?? []) a.push('--ro-bind', src, dest);
  a.push('--clearenv', '--setenv', 'PATH', '/usr/sbin:/usr/bin:/sbin:/bin', '--setenv', 'HOME', '/tmp');
  for (const [k, v] of Object.entries(o.env ?? {})) a.push('--setenv', k, v);
  if (!o.cmd) throw new Error('sandboxArgv: no command');
  a.push('--', ...o.cmd);
  return a;
}

/** cordon-netcap's command line as capturePlan() builds it (or raw, with netcapArgs), run as `who`. */
export function hostArgv(o: RunOptions): string[] {
  const inner = o.prog ?? sandboxArgv(o);
  const netcap = o.netcapArgs
    ? [NETCAP, '--proxy-socket', o.socket, ...o.netcapArgs, '--', ...inner]
    : capturePlan({ installDir: ROOT, proxySocket: o.socket }).wrap(inner);
  return o.who === 'user' ? ['runuser', '-u', TEST_USER, '--', ...netcap] : netcap;
}

export function run(o: RunOptions): Promise<RunResult> {
  const argv = hostArgv(o);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Math.round(performance.now() - t0) });
    });
  });
}

/** Run the probe with these operations; returns its results (throws with stderr if it failed). */
export async function probe(o: Omit<RunOptions, 'cmd'>, ops: object[]): Promise<Array<Record<string, any>>> {
  const r = await run({ ...o, cmd: [NODE_INSIDE, PROBE, JSON.stringify(ops)] });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !line.startsWith('[')) throw new Error(`probe failed (exit ${r.code ?? r.signal}): ${r.stderr}${r.stdout}`);
  return JSON.parse(line) as Array<Record<string, any>>;
}

/** A dir with the sandbox's resolv.conf and hosts (without one, "localhost" is a DNS query: captured). */
export function etcDir(parent: string, resolver: string): string {
  const d = join(parent, 'etc');
  execFileSync('mkdir', ['-p', d]);
  chmodSync(d, 0o755);
  writeFileSync(join(d, 'resolv.conf'), `nameserver ${resolver}\noptions timeout:1 attempts:1\n`, { mode: 0o644 });
  writeFileSync(join(d, 'hosts'), '127.0.0.1 localhost\n::1 localhost\n', { mode: 0o644 });
  return d;
}

/** A raw DNS query (id 0x1234, RD) for name/type, as hex. */
export function dnsQueryHex(name: string, type: 'A' | 'AAAA' = 'A'): string {
  return Buffer.from(dnsPacket.encode({ type: 'query', id: 0x1234, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, class: 'IN', name }] })).toString('hex');
}

export function decodeDnsHex(hex: string): dnsPacket.Packet {
  return dnsPacket.decode(Buffer.from(hex, 'hex'));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
