// Is a Secret Service (org.freedesktop.secrets: gnome-keyring, KeePassXC,
// KWallet's bridge) usable right now? Answered in JavaScript, over the D-Bus
// wire protocol, before the native keyring library is touched: that library
// connects synchronously, so a stale or wedged bus address would freeze
// cordon inside it, beyond the reach of any timeout. Here every step runs
// under one deadline.
//
// The probe connects to the session bus named by DBUS_SESSION_BUS_ADDRESS
// (the only variable the native library reads: it does not fall back to
// $XDG_RUNTIME_DIR/bus), authenticates with SASL EXTERNAL, says Hello, and
// asks the Secret Service for its "default" alias, the collection the native
// library stores into. Asking starts the service when the bus knows how to
// (D-Bus activation), as the library's own first call would. Nothing is read
// from or written to the keyring.

import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';

export interface ProbeResult {
  ok: boolean;
  /** Why not, for humans (no secret material: bus addresses and D-Bus error names only). */
  reason: string;
  /** What to do about it. */
  hint?: string;
  /** The bus address probed. */
  address: string | null;
}

export const PROBE_TIMEOUT_MS = 1500;

const SERVICE = 'org.freedesktop.secrets';

/** Parse a D-Bus address list into the first Unix socket path (abstract sockets as "\0name"). */
export function busSocketPath(address: string): string | null {
  for (const entry of address.split(';')) {
    const colon = entry.indexOf(':');
    if (colon < 0 || entry.slice(0, colon) !== 'unix') continue;
    const params = new Map<string, string>();
    for (const kv of entry.slice(colon + 1).split(',')) {
      const eq = kv.indexOf('=');
      if (eq > 0) {
        try {
          params.set(kv.slice(0, eq), decodeURIComponent(kv.slice(eq + 1)));
        } catch {
          // a malformed escape: skip the parameter
        }
      }
    }
    const path = params.get('path');
    if (path) return path;
    const abstract = params.get('abstract');
    if (abstract) return `\0${abstract}`;
  }
  return null;
}

export async function probeSecretService(env: NodeJS.ProcessEnv, timeoutMs = PROBE_TIMEOUT_MS): Promise<ProbeResult> {
  const address = env.DBUS_SESSION_BUS_ADDRESS || null;
  if (!address) {
    const runtimeBus = env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'bus') : null;
    const hint =
      runtimeBus && existsSync(runtimeBus)
        ? `a session bus exists: export DBUS_SESSION_BUS_ADDRESS=unix:path=${runtimeBus}`
        : 'run cordon from a desktop session, or start one: dbus-run-session -- sh -c "gnome-keyring-daemon --unlock; exec $SHELL"';
    return { ok: false, reason: 'no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)', hint, address };
  }
  if (process.platform !== 'linux') return { ok: false, reason: `the Secret Service is only used on Linux (this is ${process.platform})`, address };
  const socketPath = busSocketPath(address);
  if (!socketPath) return { ok: false, reason: `unsupported D-Bus address "${address}" (only unix: sockets)`, address };
  try {
    const alias = await readDefaultAlias(socketPath, timeoutMs);
    if (alias === '/') {
      return {
        ok: false,
        reason: 'the Secret Service has no default keyring to store into',
        hint: 'create a default keyring (e.g. with seahorse), or start gnome-keyring with --unlock so it creates its login keyring',
        address,
      };
    }
    return { ok: true, reason: `Secret Service on ${address}`, address };
  } catch (e) {
    const err = e as Error & { dbusName?: string };
    if (err.dbusName === 'org.freedesktop.DBus.Error.ServiceUnknown' || err.dbusName === 'org.freedesktop.DBus.Error.NameHasNoOwner') {
      return {
        ok: false,
        reason: 'no Secret Service on the session bus (nothing provides org.freedesktop.secrets)',
        hint: 'install and start one: apt-get install gnome-keyring (it starts on demand in a desktop session)',
        address,
      };
    }
    return { ok: false, reason: `the session bus did not answer the Secret Service probe: ${err.message}`, address };
  }
}

// ---- A minimal D-Bus client: two method calls, little-endian, no fds. ----

interface Field {
  code: number;
  sig: 'o' | 's' | 'g';
  value: string;
}

class Writer {
  readonly bytes: number[] = [];
  pad(n: number): void {
    while (this.bytes.length % n !== 0) this.bytes.push(0);
  }
  u8(v: number): void {
    this.bytes.push(v & 0xff);
  }
  u32(v: number): void {
    this.pad(4);
    this.bytes.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u32(b.length);
    this.bytes.push(...b, 0);
  }
  sig(s: string): void {
    const b = Buffer.from(s, 'ascii');
    this.u8(b.length);
    this.bytes.push(...b, 0);
  }
}

function methodCall(serial: number, dest: string, path: string, iface: string, member: string, stringArg?: string): Buffer {
  const body = new Writer();
  if (stringArg !== undefined) body.str(stringArg);
  const fields: Field[] = [
    { code: 1, sig: 'o', value: path },
    { code: 2, sig: 's', value: iface },
    { code: 3, sig: 's', value: member },
    { code: 6, sig: 's', value: dest },
  ];
  if (stringArg !== undefined) fields.push({ code: 8, sig: 'g', value: 's' });
  const arr = new Writer();
  // Array elements are 8-aligned relative to the message start; the array
  // data starts at offset 16, itself 8-aligned, so aligning within `arr` works.
  for (const f of fields) {
    arr.pad(8);
    arr.u8(f.code);
    arr.sig(f.sig);
    if (f.sig === 'g') arr.sig(f.value);
    else arr.str(f.value);
  }
  const head = new Writer();
  head.u8(0x6c); // 'l': little-endian
  head.u8(1); // METHOD_CALL
  head.u8(0); // flags: auto-start allowed
  head.u8(1); // protocol version
  head.u32(body.bytes.length);
  head.u32(serial);
  head.u32(arr.bytes.length);
  head.bytes.push(...arr.bytes);
  head.pad(8);
  head.bytes.push(...body.bytes);
  return Buffer.from(head.bytes);
}

interface Message {
  type: number;
  replySerial: number | null;
  errorName: string | null;
  body: Buffer;
  le: boolean;
}

/** One complete message from the front of `buf`, or null if more bytes are needed. */
function parseMessage(buf: Buffer): { msg: Message; size: number } | null {
  if (buf.length < 16) return null;
  const le = buf[0] === 0x6c;
  if (!le && buf[0] !== 0x42) throw new Error('malformed D-Bus message');
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const bodyLen = u32(4);
  const fieldsLen = u32(12);
  const align8 = (n: number) => (n + 7) & ~7;
  const headerEnd = align8(16 + fieldsLen);
  const size = headerEnd + bodyLen;
  if (size > 1 << 20) throw new Error('oversized D-Bus message');
  if (buf.length < size) return null;
  let replySerial: number | null = null;
  let errorName: string | null = null;
  let o = 16;
  const end = 16 + fieldsLen;
  while (o < end) {
    o = align8(o);
    const code = buf[o++]!;
    const sigLen = buf[o++]!;
    const sig = buf.toString('ascii', o, o + sigLen);
    o += sigLen + 1;
    if (sig === 'u') {
      o = (o + 3) & ~3;
      if (code === 5) replySerial = u32(o);
      o += 4;
    } else if (sig === 's' || sig === 'o') {
      o = (o + 3) & ~3;
      const len = u32(o);
      const value = buf.toString('utf8', o + 4, o + 4 + len);
      if (code === 4) errorName = value;
      o += 4 + len + 1;
    } else if (sig === 'g') {
      const len = buf[o]!;
      o += 1 + len + 1;
    } else {
      throw new Error(`unexpected D-Bus header field type ${sig}`);
    }
  }
  return { msg: { type: buf[1]!, replySerial, errorName, body: buf.subarray(headerEnd, size), le }, size };
}

function readString(msg: Message): string {
  if (msg.body.length < 4) return '';
  const len = msg.le ? msg.body.readUInt32LE(0) : msg.body.readUInt32BE(0);
  return msg.body.toString('utf8', 4, Math.min(4 + len, msg.body.length));
}

/** ReadAlias("default") on the Secret Service: the default collection's object path ("/" when there is none). */
function readDefaultAlias(socketPath: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let sock: Socket | undefined;
    let done = false;
    const finish = (err: Error | null, value?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock?.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    let authed = false;
    let buf: Buffer = Buffer.alloc(0);
    sock = connect({ path: socketPath });
    sock.on('error', (e: NodeJS.ErrnoException) => finish(new Error(e.code ? `${e.code} connecting to the bus` : e.message)));
    sock.on('close', () => finish(new Error('the bus closed the connection')));
    sock.on('connect', () => {
      const uid = String(process.geteuid?.() ?? 0);
      sock!.write(Buffer.concat([Buffer.from([0]), Buffer.from(`AUTH EXTERNAL ${Buffer.from(uid).toString('hex')}\r\n`)]));
    });
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        if (!authed) {
          const nl = buf.indexOf('\r\n');
          if (nl < 0) return;
          const line = buf.toString('ascii', 0, nl);
          buf = buf.subarray(nl + 2);
          if (!line.startsWith('OK ')) return finish(new Error('the bus refused authentication'));
          authed = true;
          sock!.write('BEGIN\r\n');
          sock!.write(methodCall(1, 'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'Hello'));
          sock!.write(methodCall(2, SERVICE, '/org/freedesktop/secrets', 'org.freedesktop.Secret.Service', 'ReadAlias', 'default'));
        }
        for (;;) {
          const parsed = parseMessage(buf);
          if (!parsed) return;
          buf = buf.subarray(parsed.size);
          const { msg } = parsed;
          if (msg.replySerial === null) continue; // signals (NameAcquired)
          if (msg.type === 3) {
            const err = new Error(`${msg.errorName ?? 'D-Bus error'}`) as Error & { dbusName?: string };
            err.dbusName = msg.errorName ?? undefined;
            return finish(err);
          }
          if (msg.replySerial === 2 && msg.type === 2) return finish(null, readString(msg));
        }
      } catch (e) {
        finish(e as Error);
      }
    });
  });
}
