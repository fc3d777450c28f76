import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import tls from 'node:tls';
import { describe, it } from 'node:test';
import { ClientHelloReader, parseClientHello, type ClientHelloResult } from '../../src/proxy/tls-client-hello.ts';

// --- building ClientHellos by hand ----------------------------------------

const u16 = (n: number) => [n >> 8, n & 0xff];
const u24 = (n: number) => [n >> 16, (n >> 8) & 0xff, n & 0xff];
const ascii = (s: string) => Array.from(Buffer.from(s, 'latin1'));

function ext(type: number, data: number[]): number[] {
  return [...u16(type), ...u16(data.length), ...data];
}
function sniExt(names: Array<string | number[]>, nameType = 0): number[] {
  const list = names.flatMap((n) => {
    const b = typeof n === 'string' ? ascii(n) : n;
    return [nameType, ...u16(b.length), ...b];
  });
  return ext(0, [...u16(list.length), ...list]);
}
function alpnExt(protos: string[]): number[] {
  const list = protos.flatMap((p) => [p.length, ...ascii(p)]);
  return ext(16, [...u16(list.length), ...list]);
}
const versionsExt = (vs: number[]) => ext(43, [vs.length * 2, ...vs.flatMap(u16)]);

interface HelloSpec {
  exts?: number[][];
  sessionId?: number;
  noExtensions?: boolean;
  handshakeType?: number;
  trailing?: number[];
}

/** A ClientHello handshake message (4-byte header included). */
function hello(spec: HelloSpec = {}): number[] {
  const sid = new Array(spec.sessionId ?? 32).fill(7);
  const body = [
    ...u16(0x0303),
    ...new Array(32).fill(1),
    sid.length,
    ...sid,
    ...u16(4),
    0x13, 0x01, 0x13, 0x02,
    1,
    0,
  ];
  if (!spec.noExtensions) {
    const exts = (spec.exts ?? [sniExt(['api.example.com']), alpnExt(['h2', 'http/1.1']), versionsExt([0x0304, 0x0303])]).flat();
    body.push(...u16(exts.length), ...exts);
  }
  body.push(...(spec.trailing ?? []));
  return [spec.handshakeType ?? 1, ...u24(body.length), ...body];
}

/** Wrap a handshake message in records carrying at most `size` bytes each. */
function records(msg: number[], size = 16384, version = 0x0301): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < msg.length; i += size) {
    const part = msg.slice(i, i + size);
    out.push(22, ...u16(version), ...u16(part.length), ...part);
  }
  return Uint8Array.from(out);
}

const padding = (n: number) => ext(21, new Array(n).fill(0));

function parsed(r: ClientHelloResult) {
  assert.equal(r.kind, 'parsed', r.kind === 'malformed' || r.kind === 'not-tls' ? r.reason : r.kind);
  return r as Extract<ClientHelloResult, { kind: 'parsed' }>;
}

// --- tests ------------------------------------------------------------------

describe('parseClientHello: parsed', () => {
  it('reads SNI, ALPN, versions, session id', () => {
    const r = parsed(parseClientHello(records(hello())));
    assert.equal(r.sni, 'api.example.com');
    assert.deepEqual(r.alpn, ['h2', 'http/1.1']);
    assert.deepEqual(r.supportedVersions, [0x0304, 0x0303]);
    assert.equal(r.legacyVersion, 0x0303);
    assert.equal(r.sessionIdLength, 32);
    assert.equal(r.hasEch, false);
    assert.equal(r.hasPskOrTicket, false);
    assert.equal(r.records, 1);
  });

  const cases: Array<[name: string, bytes: Uint8Array, check: (r: ReturnType<typeof parsed>) => void]> = [
    ['no SNI', records(hello({ exts: [alpnExt(['h2'])] })), (r) => assert.equal(r.sni, null)],
    ['no extensions at all', records(hello({ noExtensions: true })), (r) => assert.deepEqual(r.extensions, [])],
    ['over 1 KB in one record', records(hello({ exts: [sniExt(['a.example']), padding(1500)] })), (r) => assert.equal(r.sni, 'a.example')],
    [
      'over 16 KB across records',
      records(hello({ exts: [padding(20000), sniExt(['big.example'])] })),
      (r) => {
        assert.equal(r.sni, 'big.example');
        assert.equal(r.records, 2);
      },
    ],
    [
      'split into 1-byte records',
      records(hello({ exts: [sniExt(['tiny.example'])] }), 1),
      (r) => {
        assert.equal(r.sni, 'tiny.example');
        assert.ok(r.records > 50);
      },
    ],
    ['split into 7-byte records', records(hello(), 7), (r) => assert.equal(r.sni, 'api.example.com')],
    ['ECH', records(hello({ exts: [sniExt(['public.example']), ext(0xfe0d, [0, 1, 2, 3])] })), (r) => assert.equal(r.hasEch, true)],
    ['PSK (last)', records(hello({ exts: [sniExt(['a.example']), ext(41, [0, 1, 2])] })), (r) => assert.equal(r.hasPskOrTicket, true)],
    ['session ticket with data', records(hello({ exts: [sniExt(['a.example']), ext(35, [9, 9, 9])] })), (r) => assert.equal(r.hasPskOrTicket, true)],
    ['empty session ticket', records(hello({ exts: [sniExt(['a.example']), ext(35, [])] })), (r) => assert.equal(r.hasPskOrTicket, false)],
    ['record version 0x0303', records(hello(), 16384, 0x0303), (r) => assert.equal(r.sni, 'api.example.com')],
    ['GREASE and unknown extensions', records(hello({ exts: [ext(0x0a0a, []), sniExt(['g.example']), ext(0xfafa, [0])] })), (r) => assert.equal(r.sni, 'g.example')],
    ['empty session id', records(hello({ sessionId: 0 })), (r) => assert.equal(r.sessionIdLength, 0)],
  ];
  for (const [name, bytes, check] of cases) it(name, () => check(parsed(parseClientHello(bytes))));

  it('reports what the hello consumed when more records follow (early data)', () => {
    const h = records(hello());
    const early = Uint8Array.from([23, 3, 3, 0, 2, 0xaa, 0xbb]);
    const r = parsed(parseClientHello(Uint8Array.from([...h, ...early])));
    assert.equal(r.consumed, h.length);
  });
});

describe('parseClientHello: refused', () => {
  const cases: Array<[name: string, bytes: Uint8Array, kind: 'malformed' | 'not-tls', reason: RegExp]> = [
    ['two SNI entries', records(hello({ exts: [sniExt(['allowed.example', 'evil.example'])] })), 'malformed', /more than one server name/],
    ['SNI with NUL', records(hello({ exts: [sniExt([[...ascii('evil.example'), 0, ...ascii('.google.com')]])] })), 'malformed', /control/],
    ['SNI with CR LF', records(hello({ exts: [sniExt([[...ascii('a.example'), 13, 10]])] })), 'malformed', /control/],
    ['SNI with a space', records(hello({ exts: [sniExt(['a .example'])] })), 'malformed', /control, space/],
    ['SNI non-ASCII', records(hello({ exts: [sniExt([[0x62, 0xc3, 0xbc, 0x63]])] })), 'malformed', /non-ASCII/],
    ['empty SNI', records(hello({ exts: [sniExt([''])] })), 'malformed', /empty server name/],
    ['SNI name type 1', records(hello({ exts: [sniExt(['a.example'], 1)] })), 'malformed', /not host_name/],
    ['duplicate extension', records(hello({ exts: [sniExt(['a.example']), sniExt(['b.example'])] })), 'malformed', /twice/],
    ['PSK not last', records(hello({ exts: [ext(41, [1]), sniExt(['a.example'])] })), 'malformed', /pre_shared_key/],
    ['a ServerHello', records(hello({ handshakeType: 2 })), 'malformed', /not ClientHello/],
    ['bytes after the hello', Uint8Array.from([...records([...hello(), 0, 0])]), 'malformed', /after the ClientHello/],
    ['bytes after the extensions', records(hello({ trailing: [1, 2, 3] })), 'malformed', /after the extensions/],
    [
      'an alert record in the middle',
      (() => {
        const h = hello();
        const a = records(h.slice(0, 20));
        return Uint8Array.from([...a, 21, 3, 3, 0, 2, 2, 40, ...records(h.slice(20))]);
      })(),
      'malformed',
      /type 21/,
    ],
    ['an empty record', Uint8Array.from([22, 3, 1, 0, 0, ...records(hello())]), 'malformed', /empty/],
    [
      'a record over 2^14',
      (() => {
        const h = hello({ exts: [padding(17000)] });
        return Uint8Array.from([22, 3, 1, ...u16(h.length), ...h]);
      })(),
      'malformed',
      /2\^14/,
    ],
    ['bad record version', Uint8Array.from([22, 3, 9, 0, 4, 1, 0, 0, 0]), 'malformed', /record version/],
    [
      'a cipher_suites length that runs past the hello',
      (() => {
        const h = hello();
        h[4 + 2 + 32 + 1 + 32] = 0xff;
        return records(h);
      })(),
      'malformed',
      /runs past/,
    ],
    ['a session id over 32 bytes', records(hello({ sessionId: 33 })), 'malformed', /session id/],
    ['SSLv2-compatible hello', Uint8Array.from([0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15]), 'not-tls', /SSLv2/],
    ['plain HTTP', Uint8Array.from(Buffer.from('GET / HTTP/1.1\r\n')), 'not-tls', /not a TLS/],
    ['SSH banner', Uint8Array.from(Buffer.from('SSH-2.0-OpenSSH\r\n')), 'not-tls', /not a TLS/],
    ['0x16 without a TLS version', Uint8Array.from([22, 0x47, 0x45]), 'not-tls', /record version/],
  ];
  for (const [name, bytes, kind, reason] of cases) {
    it(name, () => {
      const r = parseClientHello(bytes);
      assert.equal(r.kind, kind, JSON.stringify(r));
      assert.match('reason' in r ? r.reason : '', reason);
    });
  }

  it('caps what it accepts', () => {
    const big = records(hello({ exts: [padding(3000)] }));
    assert.match(JSON.stringify(parseClientHello(big, 1024)), /exceeds/);
    // A handshake header that announces 16 MB is refused at once.
    assert.match(JSON.stringify(parseClientHello(Uint8Array.from([22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff]))), /exceeds/);
  });
});

describe('ClientHelloReader: across TCP reads', () => {
  it('answers need-more until the last byte of a multi-record hello', () => {
    const bytes = records(hello({ exts: [padding(20000), sniExt(['drip.example'])] }), 5000);
    const reader = new ClientHelloReader();
    for (let i = 0; i < bytes.length - 1; i += 997) {
      const r = reader.push(bytes.subarray(i, Math.min(i + 997, bytes.length - 1)));
      assert.equal(r.kind, 'need-more');
    }
    const r = parsed(reader.push(bytes.subarray(bytes.length - 1)));
    assert.equal(r.sni, 'drip.example');
    assert.equal(reader.buffered.length, bytes.length);
  });
  it('answers every byte of a hello fed one at a time', () => {
    const bytes = records(hello(), 50);
    const reader = new ClientHelloReader();
    let last: ClientHelloResult = { kind: 'need-more' };
    for (const b of bytes) last = reader.push(Uint8Array.of(b));
    assert.equal(parsed(last).sni, 'api.example.com');
  });
  it('stops buffering at the cap', () => {
    const reader = new ClientHelloReader(4096);
    const h = hello({ exts: [padding(8000)] });
    const bytes = records(h, 1000);
    let r: ClientHelloResult = { kind: 'need-more' };
    for (let i = 0; i < bytes.length && r.kind === 'need-more'; i += 512) r = reader.push(bytes.subarray(i, i + 512));
    assert.equal(r.kind, 'malformed');
    assert.ok(reader.buffered.length <= 4096 + 512);
    assert.equal(reader.push(Uint8Array.of(1)).kind, 'malformed');
  });
});

describe('a real ClientHello from node:tls', () => {
  async function capture(options: tls.ConnectionOptions): Promise<Uint8Array> {
    const server = net.createServer();
    const got = new Promise<Uint8Array>((resolve) => {
      server.on('connection', (sock) => {
        const chunks: Buffer[] = [];
        const reader = new ClientHelloReader();
        sock.on('data', (d: Buffer) => {
          chunks.push(d);
          if (reader.push(d).kind !== 'need-more') {
            resolve(Uint8Array.from(Buffer.concat(chunks)));
            sock.destroy();
          }
        });
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    const client = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    client.on('error', () => {});
    try {
      return await got;
    } finally {
      client.destroy();
      server.close();
    }
  }

  it('parses SNI and ALPN', async () => {
    const bytes = await capture({ servername: 'api.example.com', ALPNProtocols: ['h2', 'http/1.1'] });
    const r = parsed(parseClientHello(bytes));
    assert.equal(r.sni, 'api.example.com');
    assert.deepEqual(r.alpn, ['h2', 'http/1.1']);
    assert.ok(r.supportedVersions.includes(0x0304));
    assert.equal(r.hasEch, false);
    // and the same bytes fed one at a time
    const reader = new ClientHelloReader();
    let last: ClientHelloResult = { kind: 'need-more' };
    for (const b of bytes) last = reader.push(Uint8Array.of(b));
    assert.equal(parsed(last).sni, 'api.example.com');
  });

  it('sees no SNI when the client connects to an IP', async () => {
    const bytes = await capture({ servername: '' });
    assert.equal(parsed(parseClientHello(bytes)).sni, null);
  });
});
