// Shared helpers for the egress tests and bench/egress.ts: real servers on
// 127.0.0.1 that the sandboxed clients reach through cordon's proxy.
//
//   testCa()          a test CA (the "public" CA of the fake internet); its
//                     PEM goes to the policy's network.upstreamCa, and into the
//                     clients' trust when a flow is spliced (the client then
//                     sees the real server's certificate)
//   startServers()    one HTTPS server (a certificate per SNI name) and one
//                     plain HTTP server with the same routes:
//                       GET  /blob/<size>?off=<k>   deterministic random bytes,
//                                                   X-Sha256 of what was sent
//                       *    /hello                 "hello <method> <host> <url>"
//                       POST /echo                  the body back
//                       GET  /ws (upgrade)          an RFC 6455 echo server
//                       host git.*                  `git http-backend` (CGI)
//                       host registry.*             a one-package npm registry
//   policyFile()      a policy YAML for `cordon run --policy`
//   inSandboxAsync()  `cordon run` with the shipped CLI
//   auditAfter()      audit records written after a given seq
//
// Every server records what it saw (`seen`), so tests can assert that a
// denied request never reached it.

import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { stringify } from 'yaml';
import { AuditStore, type AuditRecord } from '../../src/audit/index.ts';
import { createSessionCa, type SessionCa } from '../../src/proxy/ca.ts';
import { CORDON, ROOT, type Result } from '../helpers/cordon.ts';

export const MiB = 1024 * 1024;

/** Node 24, mounted read-only into sandboxes that need it (policy filesystem.read); real path, as mounts need. */
export const NODE_DIR = realpathSync(join(ROOT, 'node_modules', 'node'));
export const NODE24 = join(NODE_DIR, 'bin', 'node');

// ---------------------------------------------------------------- tools

/** A host tool the test needs; throws with the install command when it is missing. */
export function requireTool(bin: string, debianPackage: string): string {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':').concat(['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/lib/git-core'])) {
    const p = join(dir, bin);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  throw new Error(`${bin} is missing: apt-get install -y ${debianPackage}`);
}

/**
 * npm's CLI script (node_modules/node ships Node only, no npm): the one next
 * to the system's npm command. Run it with NODE24.
 */
export function npmCli(): string {
  const candidates = ['/usr/lib/node_modules/npm/bin/npm-cli.js', '/usr/share/nodejs/npm/bin/npm-cli.js', '/usr/local/lib/node_modules/npm/bin/npm-cli.js'];
  try {
    const viaPath = realpathSync(requireTool('npm', 'npm'));
    if (viaPath.endsWith('.js')) candidates.unshift(viaPath);
  } catch {
    // fall through to the fixed locations
  }
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error('npm is missing: apt-get install -y npm');
  return found;
}

/** The directory holding npm (to mount read-only), e.g. /usr/lib/node_modules/npm. */
export function npmDir(): string {
  return npmCli().replace(/\/bin\/npm-cli\.js$/, '');
}

// ---------------------------------------------------------------- content

/** A block of random bytes served in slices; sha256 of any slice, cached. */
export class Content {
  readonly bytes: Buffer;
  #shas = new Map<string, string>();
  constructor(size: number) {
    this.bytes = randomBytes(size);
  }
  slice(off: number, size: number): Buffer {
    if (off < 0 || size < 0 || off + size > this.bytes.length) throw new RangeError(`slice ${off}+${size} outside ${this.bytes.length}`);
    return this.bytes.subarray(off, off + size);
  }
  sha(off: number, size: number): string {
    const k = `${off}:${size}`;
    let s = this.#shas.get(k);
    if (!s) {
      s = createHash('sha256').update(this.slice(off, size)).digest('hex');
      this.#shas.set(k, s);
    }
    return s;
  }
}

// ---------------------------------------------------------------- CA

let caPromise: Promise<SessionCa> | null = null;

/** The test CA that signs every test server's certificates (one per process). */
export function testCa(): Promise<SessionCa> {
  caPromise ??= createSessionCa({ label: 'egress test upstream' });
  return caPromise;
}

/** Write the test CA's PEM into `dir` (world-readable, for unprivileged runs) and return its path. */
export async function writeTestCa(dir: string): Promise<string> {
  const file = join(dir, 'test-upstream-ca.pem');
  writeFileSync(file, (await testCa()).caPem, { mode: 0o644 });
  return file;
}

// ---------------------------------------------------------------- WebSocket (RFC 6455)

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** One server-to-client frame (servers never mask). */
export function wsFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const len = payload.length;
  let head: Buffer;
  if (len < 126) {
    head = Buffer.from([(fin ? 0x80 : 0) | opcode, len]);
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = (fin ? 0x80 : 0) | opcode;
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = (fin ? 0x80 : 0) | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

export interface WsEvent {
  host: string;
  kind: 'open' | 'text' | 'binary' | 'close';
  data?: string;
}

/**
 * Accept an upgrade and run an echo session: greets with "hello <host>",
 * answers a text message with "echo:<text>" and a binary message with the
 * same bytes reversed, answers pings, and closes when the client does.
 * Fragmented messages are reassembled; an unmasked client frame is a
 * protocol error (close 1002).
 */
export function acceptWebSocket(req: http.IncomingMessage, socket: Duplex, head: Buffer, events: WsEvent[]): void {
  const key = req.headers['sec-websocket-key'];
  const host = String(req.headers.host ?? '');
  if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || typeof key !== 'string' || req.headers['sec-websocket-version'] !== '13') {
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  events.push({ host, kind: 'open' });
  socket.write(wsFrame(1, Buffer.from(`hello ${host}`)));
  let buf: Buffer = head.length > 0 ? Buffer.from(head) : Buffer.alloc(0);
  let message: Buffer[] = [];
  let messageOpcode = 0;
  let closed = false;
  const fail = (code: number) => {
    if (closed) return;
    closed = true;
    const p = Buffer.alloc(2);
    p.writeUInt16BE(code);
    socket.end(wsFrame(8, p));
  };
  const onFrame = (fin: boolean, opcode: number, payload: Buffer) => {
    if (opcode === 8) {
      events.push({ host, kind: 'close', data: payload.length >= 2 ? String(payload.readUInt16BE(0)) : '' });
      if (!closed) {
        closed = true;
        socket.end(wsFrame(8, payload.subarray(0, 2)));
      }
      return;
    }
    if (opcode === 9) {
      socket.write(wsFrame(10, payload));
      return;
    }
    if (opcode === 10) return;
    if (opcode === 0) {
      if (messageOpcode === 0) return fail(1002);
    } else if (opcode === 1 || opcode === 2) {
      if (messageOpcode !== 0) return fail(1002);
      messageOpcode = opcode;
    } else {
      return fail(1002);
    }
    message.push(payload);
    if (!fin) return;
    const whole = Buffer.concat(message);
    const op = messageOpcode;
    message = [];
    messageOpcode = 0;
    if (op === 1) {
      events.push({ host, kind: 'text', data: whole.toString('utf8') });
      socket.write(wsFrame(1, Buffer.from(`echo:${whole.toString('utf8')}`)));
    } else {
      events.push({ host, kind: 'binary', data: whole.toString('hex') });
      socket.write(wsFrame(2, Buffer.from(whole).reverse()));
    }
  };
  const parse = () => {
    for (;;) {
      if (buf.length < 2) return;
      const b0 = buf[0]!;
      const b1 = buf[1]!;
      if ((b1 & 0x80) === 0) return fail(1002);
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        const big = buf.readBigUInt64BE(2);
        if (big > BigInt(64 * MiB)) return fail(1009);
        len = Number(big);
        off = 10;
      }
      if (buf.length < off + 4 + len) return;
      const mask = buf.subarray(off, off + 4);
      const payload = Buffer.from(buf.subarray(off + 4, off + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i & 3]!;
      buf = buf.subarray(off + 4 + len);
      onFrame((b0 & 0x80) !== 0, b0 & 0x0f, payload);
      if (closed) return;
    }
  };
  socket.on('data', (c: Buffer) => {
    buf = buf.length === 0 ? c : Buffer.concat([buf, c]);
    parse();
  });
  socket.on('error', () => {});
  parse();
}

// ---------------------------------------------------------------- git (smart HTTP through git http-backend)

/** A bare repository `name`.git under `root` with one commit on main, pushes enabled. Returns the commit. */
export function makeBareRepo(root: string, name: string): string {
  requireTool('git', 'git');
  const bare = join(root, `${name}.git`);
  const work = join(root, `${name}-seed`);
  mkdirSync(work, { recursive: true });
  const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: root } }).trim();
  git(work, 'init', '-q', '-b', 'main');
  writeFileSync(join(work, 'README.md'), `# ${name}\nserved by git http-backend for cordon's egress tests\n`);
  git(work, 'add', 'README.md');
  git(work, '-c', 'user.name=cordon test', '-c', 'user.email=test@cordon.test', 'commit', '-q', '-m', 'initial');
  git(root, 'clone', '-q', '--bare', work, bare);
  git(bare, 'config', 'http.receivepack', 'true');
  return git(bare, 'rev-parse', 'refs/heads/main');
}

/** Read a ref of a bare repository on the host. */
export function repoRef(root: string, name: string, ref = 'refs/heads/main'): string {
  return execFileSync('git', ['--git-dir', join(root, `${name}.git`), 'rev-parse', ref], { encoding: 'utf8' }).trim();
}

/** Serve one request through `git http-backend` (CGI/1.1 over stdin/stdout). */
function gitBackend(projectRoot: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  const backend = requireTool('git-http-backend', 'git');
  const url = new URL(req.url ?? '/', 'http://x');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    GIT_PROJECT_ROOT: projectRoot,
    GIT_HTTP_EXPORT_ALL: '1',
    GIT_CONFIG_NOSYSTEM: '1',
    HOME: projectRoot,
    GATEWAY_INTERFACE: 'CGI/1.1',
    REQUEST_METHOD: req.method ?? 'GET',
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.slice(1),
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    SERVER_PROTOCOL: 'HTTP/1.1',
  };
  if (req.headers['content-type']) env.CONTENT_TYPE = String(req.headers['content-type']);
  if (req.headers['content-length']) env.CONTENT_LENGTH = String(req.headers['content-length']);
  if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = String(req.headers['content-encoding']);
  if (req.headers['git-protocol']) env.GIT_PROTOCOL = String(req.headers['git-protocol']);
  const child = spawn(backend, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.on('error', () => {});
  req.pipe(child.stdin);
  let head = Buffer.alloc(0);
  let headDone = false;
  child.stdout.on('data', (c: Buffer) => {
    if (headDone) {
      if (!res.write(c)) {
        child.stdout.pause();
        res.once('drain', () => child.stdout.resume());
      }
      return;
    }
    head = Buffer.concat([head, c]);
    let end = head.indexOf('\r\n\r\n');
    let sep = 4;
    if (end < 0) {
      end = head.indexOf('\n\n');
      sep = 2;
    }
    if (end < 0) return;
    headDone = true;
    let status = 200;
    for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
      const c2 = line.indexOf(':');
      if (c2 < 0) continue;
      const name = line.slice(0, c2).trim();
      const value = line.slice(c2 + 1).trim();
      if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
      else res.setHeader(name, value);
    }
    res.statusCode = status;
    const rest = head.subarray(end + sep);
    if (rest.length > 0) res.write(rest);
  });
  child.on('close', (code) => {
    if (!headDone) {
      res.statusCode = 500;
      res.end(`git http-backend failed (${code}): ${stderr}`);
      return;
    }
    res.end();
  });
}

// ---------------------------------------------------------------- npm registry

export interface NpmPackage {
  name: string;
  version: string;
  tarball: Buffer;
  /** What `require(name)` returns when run. */
  greeting: string;
}

/** A tiny package, packed by hand the way `npm pack` lays it out (package/...), as a .tgz. */
export function makeNpmPackage(dir: string, name = 'cordon-egress-fixture', version = '1.0.0'): NpmPackage {
  requireTool('tar', 'tar');
  const greeting = `hello from ${name}@${version}`;
  const pkgDir = join(dir, 'npm-src', 'package');
  mkdirSync(pkgDir, { recursive: true });
  writeFileSync(join(pkgDir, 'package.json'), JSON.stringify({ name, version, main: 'index.js', license: 'MIT', description: 'cordon egress test fixture' }, null, 2));
  writeFileSync(join(pkgDir, 'index.js'), `module.exports = ${JSON.stringify(greeting)};\n`);
  const tgz = join(dir, `${name}-${version}.tgz`);
  execFileSync('tar', ['-czf', tgz, '--owner=0', '--group=0', '--numeric-owner', '-C', join(dir, 'npm-src'), 'package']);
  return { name, version, tarball: readFileSync(tgz), greeting };
}

function npmRegistry(pkg: NpmPackage, req: http.IncomingMessage, res: http.ServerResponse, secure: boolean): void {
  const host = String(req.headers.host);
  const base = `${secure ? 'https' : 'http'}://${host}`;
  const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  const file = `${pkg.name}-${pkg.version}.tgz`;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405).end();
    return;
  }
  if (path === `/${pkg.name}`) {
    const doc = {
      name: pkg.name,
      'dist-tags': { latest: pkg.version },
      versions: {
        [pkg.version]: {
          name: pkg.name,
          version: pkg.version,
          main: 'index.js',
          license: 'MIT',
          dist: {
            tarball: `${base}/${pkg.name}/-/${file}`,
            shasum: createHash('sha1').update(pkg.tarball).digest('hex'),
            integrity: `sha512-${createHash('sha512').update(pkg.tarball).digest('base64')}`,
          },
        },
      },
    };
    const body = Buffer.from(JSON.stringify(doc));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  if (path === `/${pkg.name}/-/${file}`) {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': pkg.tarball.length });
    res.end(req.method === 'HEAD' ? undefined : pkg.tarball);
    return;
  }
  res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
}

// ---------------------------------------------------------------- the servers

export interface Seen {
  proto: 'https' | 'http';
  method: string;
  url: string;
  host: string;
  upgrade: boolean;
}

export interface ServerOptions {
  content: Content;
  /** Serve `git http-backend` for Host names starting with "git." from this project root. */
  gitRoot?: string;
  /** Serve this package as a registry for Host names starting with "registry.". */
  npm?: NpmPackage;
}

export interface TestServers {
  httpsPort: number;
  httpPort: number;
  seen: Seen[];
  ws: WsEvent[];
  close(): Promise<void>;
}

function handler(opts: ServerOptions, proto: 'https' | 'http', seen: Seen[]): http.RequestListener {
  return (req, res) => {
    const host = String(req.headers.host ?? '');
    seen.push({ proto, method: req.method ?? '', url: req.url ?? '', host, upgrade: false });
    req.on('error', () => {});
    res.on('error', () => {});
    if (opts.gitRoot && host.startsWith('git.')) return gitBackend(opts.gitRoot, req, res);
    if (opts.npm && host.startsWith('registry.')) return npmRegistry(opts.npm, req, res, proto === 'https');
    const url = new URL(req.url ?? '/', 'http://x');
    const blob = /^\/blob\/(\d+)$/.exec(url.pathname);
    if (blob && (req.method === 'GET' || req.method === 'HEAD')) {
      const size = Number(blob[1]);
      const off = Number(url.searchParams.get('off') ?? 0);
      if (!Number.isSafeInteger(size) || !Number.isSafeInteger(off) || off < 0 || off + size > opts.content.bytes.length) {
        res.writeHead(416).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size, 'x-sha256': opts.content.sha(off, size) });
      res.end(req.method === 'HEAD' ? undefined : opts.content.slice(off, size));
      return;
    }
    if (url.pathname === '/hello') {
      req.resume();
      req.on('end', () => {
        const body = `hello ${req.method} ${host} ${req.url}\n`;
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    if (url.pathname === '/echo' && req.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length, 'x-sha256': createHash('sha256').update(body).digest('hex') });
        res.end(body);
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  };
}

/** One HTTPS and one plain HTTP server on 127.0.0.1, with the routes above. */
export async function startServers(opts: ServerOptions): Promise<TestServers> {
  const ca = await testCa();
  const contexts = new Map<string, Promise<tls.SecureContext>>();
  const contextFor = (name: string) => {
    let p = contexts.get(name);
    if (!p) {
      p = ca.leafFor(name).then((leaf) => tls.createSecureContext({ key: leaf.keyPem, cert: leaf.certPem }));
      contexts.set(name, p);
    }
    return p;
  };
  const fallback = await ca.leafFor('127.0.0.1');
  const seen: Seen[] = [];
  const ws: WsEvent[] = [];
  const secure = https.createServer(
    {
      key: fallback.keyPem,
      cert: fallback.certPem,
      SNICallback: (name, cb) => {
        contextFor(name).then(
          (c) => cb(null, c),
          (e: Error) => cb(e),
        );
      },
    },
    handler(opts, 'https', seen),
  );
  const plain = http.createServer(handler(opts, 'http', seen));
  const sockets = new Set<net.Socket>();
  for (const [server, proto] of [
    [secure, 'https'],
    [plain, 'http'],
  ] as const) {
    server.keepAliveTimeout = 30_000;
    server.headersTimeout = 60_000;
    server.requestTimeout = 0;
    server.on('connection', (s: net.Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      seen.push({ proto, method: req.method ?? '', url: req.url ?? '', host: String(req.headers.host ?? ''), upgrade: true });
      if (new URL(req.url ?? '/', 'http://x').pathname !== '/ws') {
        socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      acceptWebSocket(req, socket, head, ws);
    });
    server.on('clientError', (_e, s: Duplex) => s.destroy());
    server.listen(0, '127.0.0.1');
  }
  await Promise.all([secure, plain].map((s) => new Promise<void>((r) => (s.listening ? r() : s.once('listening', () => r())))));
  return {
    httpsPort: (secure.address() as net.AddressInfo).port,
    httpPort: (plain.address() as net.AddressInfo).port,
    seen,
    ws,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([secure, plain].map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}

// ---------------------------------------------------------------- policies and sessions

export interface RuleSpec {
  allow?: string;
  deny?: string;
  ports?: number[];
  methods?: string[];
  paths?: string[];
  maxBodyBytes?: string;
  protocol?: 'http' | 'tcp';
}

export interface PolicySpec {
  rules: RuleSpec[];
  hosts?: Record<string, string[]>;
  upstreamCa?: string;
  read?: string[];
  limits?: Record<string, string | number>;
}

export function policyYaml(spec: PolicySpec): string {
  const doc: Record<string, unknown> = { version: 1 };
  if (spec.read?.length) doc.filesystem = { read: spec.read };
  if (spec.limits) doc.limits = spec.limits;
  doc.network = {
    mode: 'proxy',
    ...(spec.upstreamCa ? { upstreamCa: spec.upstreamCa } : {}),
    ...(spec.hosts ? { hosts: spec.hosts } : {}),
    rules: spec.rules,
  };
  return stringify(doc);
}

/** Write a policy file and return its path. */
export function policyFile(dir: string, name: string, spec: PolicySpec): string {
  const p = join(dir, name);
  writeFileSync(p, policyYaml(spec), { mode: 0o644 });
  return p;
}

/**
 * `cordon run --policy P -- sh -c SCRIPT` with the shipped CLI. Asynchronous on
 * purpose: the servers live in this process and must keep answering while the
 * session runs. `prefix` goes in front of the command line (e.g. asTestUser(env)).
 */
export function inSandboxAsync(env: NodeJS.ProcessEnv, cwd: string, policy: string, script: string, timeout = 120_000, prefix: string[] = []): Promise<Result> {
  return new Promise((resolve) => {
    const argv = [...prefix, ...CORDON, 'run', '--no-tty', '--policy', policy, '--', 'sh', '-c', script];
    const child = spawn(argv[0]!, argv.slice(1), {
      env,
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeout);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ status: -1, signal: null, stdout, stderr: `${stderr}\ncannot start ${argv[0]}: ${e.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, signal, stdout, stderr });
    });
  });
}

/** A one-line description of a run for assertion messages. */
export function describeRun(r: Result): string {
  return `status ${r.status}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`;
}

/** The last seq in a state directory's audit log (0 if none). */
export function auditHead(stateDir: string): number {
  const store = AuditStore.open(stateDir);
  try {
    return store.tail(1)[0]?.seq ?? 0;
  } finally {
    store.close();
  }
}

/** Audit records after `seq`, optionally of one type. */
export function auditAfter(stateDir: string, seq: number, type?: string): AuditRecord[] {
  const store = AuditStore.open(stateDir);
  try {
    return [...store.records({ afterSeq: seq, ...(type ? { type } : {}) })];
  } finally {
    store.close();
  }
}

// ---------------------------------------------------------------- the in-sandbox client (Node 24)

/**
 * A client script for Node 24 inside the sandbox, written into the workspace
 * (writeClient). It uses only what a proxy-unaware program would: fetch and
 * WebSocket ignore HTTP(S)_PROXY in Node 24, so their flows are captured
 * transparently. Each result is one line "@@ <label> <json>".
 *
 *   fetch <label> <url> [method]      status, bytes, sha256, X-Sha256, small bodies
 *   upload <label> <url> <bytes>      POST that many random bytes to /echo: the echo must match
 *   ws <label> <url>                  greeting, text echo, small and 200 KB binary echo, close
 *   connect <label> <host:port>       a raw CONNECT to the explicit proxy; the answer's text
 */
export const CLIENT_MJS = String.raw`
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
const [cmd, label, target, method = 'GET'] = process.argv.slice(2);
const out = (obj) => console.log('@@ ' + label + ' ' + JSON.stringify(obj));
const sha = (b) => createHash('sha256').update(b).digest('hex');
const why = (e) => String(e?.cause?.code ?? e?.cause?.message ?? e?.code ?? e?.message ?? e);
if (cmd === 'fetch') {
  try {
    const r = await fetch(target, { method });
    const body = Buffer.from(await r.arrayBuffer());
    out({ status: r.status, bytes: body.length, sha256: sha(body), expected: r.headers.get('x-sha256'), blocked: r.headers.get('x-cordon-blocked'), text: body.length <= 4096 ? body.toString('utf8') : '' });
  } catch (e) {
    out({ error: why(e) });
  }
} else if (cmd === 'upload') {
  const body = randomBytes(Number(method));
  try {
    const r = await fetch(target, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    const back = Buffer.from(await r.arrayBuffer());
    out({ status: r.status, sent: body.length, echoed: back.length, same: back.equals(body), serverSha: r.headers.get('x-sha256') === sha(body) });
  } catch (e) {
    out({ error: why(e) });
  }
} else if (cmd === 'ws') {
  const big = randomBytes(200 * 1024);
  const result = await new Promise((resolve) => {
    const got = [];
    let opened = false;
    let error = null;
    let ws;
    const timer = setTimeout(() => resolve({ opened, got, error: error ?? 'timeout' }), 15000);
    try {
      ws = new WebSocket(target);
    } catch (e) {
      clearTimeout(timer);
      resolve({ opened, got, error: why(e) });
      return;
    }
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => { opened = true; };
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') got.push(ev.data);
      else {
        const b = Buffer.from(ev.data);
        got.push(b.length > 64 ? 'big:' + (b.equals(Buffer.from(big).reverse()) ? 'reversed' : 'WRONG ' + b.length) : 'bin:' + b.toString('hex'));
      }
      if (got.length === 1) ws.send('ping-1');
      else if (got.length === 2) ws.send(new Uint8Array([1, 2, 3, 250]));
      else if (got.length === 3) ws.send(big);
      else if (got.length === 4) ws.close(1000, 'done');
    };
    ws.onerror = (ev) => { error = String(ev?.message ?? ev?.error?.message ?? 'error'); };
    ws.onclose = (ev) => { clearTimeout(timer); resolve({ opened, got, code: ev.code, clean: ev.wasClean, error }); };
  });
  out(result);
} else if (cmd === 'connect') {
  const text = await new Promise((resolve) => {
    const chunks = [];
    const s = net.connect(3128, '198.18.0.1', () => s.write('CONNECT ' + target + ' HTTP/1.1\r\nHost: ' + target + '\r\n\r\n'));
    const done = () => resolve(Buffer.concat(chunks).toString('utf8'));
    setTimeout(() => { s.destroy(); done(); }, 5000).unref();
    s.on('data', (c) => chunks.push(c));
    s.on('end', done);
    s.on('close', done);
    s.on('error', (e) => { chunks.push(Buffer.from('[' + why(e) + ']')); done(); });
  });
  out({ text });
} else {
  console.error('usage: client.mjs fetch|upload|ws|connect <label> <target> [method|bytes]');
  process.exit(2);
}
`;

/** Write client.mjs, the test CA and both.pem's recipe into `workspace`; returns the client path. */
export async function writeClient(workspace: string): Promise<string> {
  const p = join(workspace, 'client.mjs');
  writeFileSync(p, CLIENT_MJS, { mode: 0o644 });
  await writeTestCa(workspace);
  return p;
}

/**
 * Shell prelude for sandbox scripts: TRUST is a bundle with the session CA
 * (for terminated flows) and the test CA (spliced flows show the real
 * server's certificate); `get LABEL CURL-ARGS...` prints
 * "@@ LABEL <curl exit> <status> <bytes> <sha256>"; `node24` is Node 24.
 */
export function prelude(): string {
  return [
    'cat /run/cordon/ca.pem "$PWD/test-upstream-ca.pem" > "$PWD/both.pem"',
    'TRUST="$PWD/both.pem"',
    `node24() { ${NODE24} "$@"; }`,
    'get() { label=$1; shift; rm -f "$PWD/.body"; meta=$(curl -sS -o "$PWD/.body" -w "%{http_code} %{size_download}" "$@" 2>"$PWD/.err"); rc=$?; ' +
      'sum=$(sha256sum "$PWD/.body" 2>/dev/null | cut -c1-64); echo "@@ $label $rc $meta ${sum:-none}"; [ $rc = 0 ] || sed "s/^/  curl: /" "$PWD/.err" >&2; }',
    '',
  ].join('\n');
}

export interface CurlResult {
  rc: number;
  status: number;
  bytes: number;
  sha256: string;
}

/** "@@ label ..." lines of a run: JSON results (client.mjs, scripts) and curl results (`get`). */
export interface Results {
  json: Map<string, Record<string, unknown>>;
  curl: Map<string, CurlResult>;
}

export function results(stdout: string): Results {
  const out: Results = { json: new Map(), curl: new Map() };
  for (const line of stdout.split('\n')) {
    const match = /^@@ (\S+) (.*)$/.exec(line);
    if (!match) continue;
    const rest = match[2]!;
    if (rest.startsWith('{')) out.json.set(match[1]!, JSON.parse(rest) as Record<string, unknown>);
    else {
      const [rc, status, bytes, sha256] = rest.split(' ');
      out.curl.set(match[1]!, { rc: Number(rc), status: Number(status), bytes: Number(bytes), sha256: sha256 ?? '' });
    }
  }
  return out;
}
