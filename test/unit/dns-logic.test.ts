import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as dnsPacket from 'dns-packet';
import { answerQuery, decodeTcpFrames, encodeTcpFrame, type DnsContext } from '../../src/netcap/dns-logic.ts';

const ALLOWED = new Set(['api.example.com', 'registry.npmjs.org', '_svc._tcp.example.com']);

function ctx(overrides: Partial<DnsContext> = {}): DnsContext & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    decide: (name) => {
      asked.push(name);
      return ALLOWED.has(name) ? 'allow' : 'deny';
    },
    addressFor: () => '198.18.0.7',
    ...overrides,
  };
}

function query(name: string, type: dnsPacket.RecordType | number = 'A', opts: { id?: number; flags?: number; klass?: dnsPacket.RecordClass; opt?: number } = {}): Uint8Array {
  const packet: dnsPacket.Packet = {
    type: 'query',
    id: opts.id ?? 0x1234,
    flags: opts.flags ?? dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: (typeof type === 'number' ? `UNKNOWN_${type}` : type) as dnsPacket.RecordType, class: opts.klass ?? 'IN' }],
  };
  if (opts.opt !== undefined) {
    packet.additionals = [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: opts.opt, flags: 0, flag_do: false, options: [] }];
  }
  return new Uint8Array(dnsPacket.encode(packet));
}

/** A query whose name is given as raw labels (bytes dns-packet would not produce). */
function rawQuery(labels: number[][], qtype = 1, qclass = 1, header: number[] = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]): Uint8Array {
  const name = labels.flatMap((l) => [l.length, ...l]);
  return Uint8Array.from([...header, ...name, 0, qtype >> 8, qtype & 0xff, qclass >> 8, qclass & 0xff]);
}
const label = (s: string) => Array.from(Buffer.from(s, 'latin1'));

function decode(b: Uint8Array) {
  return dnsPacket.decode(Buffer.from(b)) as dnsPacket.DecodedPacket & { rcode: string };
}

describe('answerQuery: policy answers', () => {
  it('answers an allowed A query with the synthetic address', () => {
    const c = ctx();
    const r = answerQuery(query('api.example.com'), c)!;
    const p = decode(r.response);
    assert.equal(p.id, 0x1234);
    assert.equal(p.type, 'response');
    assert.equal(p.rcode, 'NOERROR');
    assert.equal(p.flag_rd, true);
    assert.equal(p.flag_ra, true);
    assert.deepEqual(p.questions, [{ name: 'api.example.com', type: 'A', class: 'IN' }]);
    assert.equal(p.answers!.length, 1);
    const a = p.answers![0] as dnsPacket.StringAnswer;
    assert.equal(a.data, '198.18.0.7');
    assert.ok(a.ttl! >= 1 && a.ttl! <= 5);
    assert.deepEqual(r.audit, { id: 0x1234, name: 'api.example.com', type: 'A', decision: 'allow', rcode: 'NOERROR', answer: '198.18.0.7', reason: 'allowed: synthetic address' });
    assert.deepEqual(c.asked, ['api.example.com']);
  });

  const cases: Array<[name: string, q: Uint8Array, rcode: string, answers: number, decision: string, asked: string[]]> = [
    ['mixed case is decided lower-case', query('API.Example.COM'), 'NOERROR', 1, 'allow', ['api.example.com']],
    ['AAAA for an allowed name: empty', query('api.example.com', 'AAAA'), 'NOERROR', 0, 'allow', ['api.example.com']],
    ['TXT for an allowed name: empty', query('api.example.com', 'TXT'), 'NOERROR', 0, 'allow', ['api.example.com']],
    ['NULL for an allowed name: empty', query('api.example.com', 'NULL'), 'NOERROR', 0, 'allow', ['api.example.com']],
    ['HTTPS (65) for an allowed name: empty', query('api.example.com', 65), 'NOERROR', 0, 'allow', ['api.example.com']],
    ['ANY for an allowed name: empty', query('api.example.com', 255), 'NOERROR', 0, 'allow', ['api.example.com']],
    ['SRV with underscores', query('_svc._tcp.example.com', 'SRV'), 'NOERROR', 0, 'allow', ['_svc._tcp.example.com']],
    ['denied name', query('evil.com'), 'NXDOMAIN', 0, 'deny', ['evil.com']],
    ['TXT exfiltration', query('aGVsbG8gd29ybGQK.c2VjcmV0.exfil.evil.com', 'TXT'), 'NXDOMAIN', 0, 'deny', ['agvsbg8gd29ybgqk.c2vjcmv0.exfil.evil.com']],
    ['a long high-entropy label', query(`${'q7Zx9'.repeat(12)}abc.evil.com`), 'NXDOMAIN', 0, 'deny', [`${'q7zx9'.repeat(12)}abc.evil.com`]],
    ['a subdomain of an allowed name is its own name', query('x.api.example.com'), 'NXDOMAIN', 0, 'deny', ['x.api.example.com']],
    ['an IP literal name', query('127.0.0.1'), 'NXDOMAIN', 0, 'deny', []],
    ['a hex IP literal name', query('0x7f.1'), 'NXDOMAIN', 0, 'deny', []],
    ['a decimal IP literal name', query('2130706433'), 'NXDOMAIN', 0, 'deny', []],
  ];
  for (const [name, q, rcode, answers, decision, asked] of cases) {
    it(name, () => {
      const c = ctx();
      const r = answerQuery(q, c)!;
      const p = decode(r.response);
      assert.equal(p.rcode, rcode);
      assert.equal(p.answers!.length, answers);
      assert.equal(r.audit.decision, decision);
      assert.deepEqual(c.asked, asked);
    });
  }

  it('echoes the question name in the case it was asked', () => {
    const p = decode(answerQuery(query('API.Example.COM'), ctx())!.response);
    assert.equal(p.questions![0]!.name, 'API.Example.COM');
    assert.equal(p.answers![0]!.name, 'API.Example.COM');
  });
  it('clamps the TTL to 1..5 seconds (never 0: no rebinding through TTL 0)', () => {
    for (const [ttl, want] of [[0, 1], [-3, 1], [3, 3], [100, 5], [undefined, 1]] as const) {
      const p = decode(answerQuery(query('api.example.com'), ctx({ ...(ttl === undefined ? {} : { ttlSeconds: ttl }) }))!.response);
      assert.equal((p.answers![0] as dnsPacket.StringAnswer).ttl, want);
    }
  });
  it('answers EDNS queries with OPT, and refuses unknown EDNS versions', () => {
    const p = decode(answerQuery(query('api.example.com', 'A', { opt: 0 }), ctx())!.response);
    assert.equal(p.additionals!.filter((a) => a.type === 'OPT').length, 1);
    const r = answerQuery(query('api.example.com', 'A', { opt: 1 }), ctx())!;
    assert.equal(r.audit.rcode, 'BADVERS');
    const opt = decode(r.response).additionals!.find((a) => a.type === 'OPT') as dnsPacket.OptAnswer;
    assert.equal(opt.extendedRcode, 1);
  });
  it('fails closed when the policy or the address map fails', () => {
    const thrower = ctx({ decide: () => { throw new Error('boom'); } });
    assert.equal(decode(answerQuery(query('api.example.com'), thrower)!.response).rcode, 'SERVFAIL');
    for (const bad of ['::1', '1.2.3', '0x7f.1', '']) {
      const r = answerQuery(query('api.example.com'), ctx({ addressFor: () => bad }))!;
      assert.equal(decode(r.response).rcode, 'SERVFAIL', bad);
      assert.equal(r.audit.answer, null);
    }
    const noAddr = ctx({ addressFor: () => { throw new Error('pool exhausted'); } });
    assert.equal(decode(answerQuery(query('api.example.com'), noAddr)!.response).rcode, 'SERVFAIL');
  });
});

describe('answerQuery: odd names never reach the policy', () => {
  const cases: Array<[name: string, q: Uint8Array, rcode: string, auditName: string | null]> = [
    ['NUL inside a label', rawQuery([label('evil.example\x00'), label('google'), label('com')]), 'REFUSED', 'evil\\046example\\000.google.com'],
    ['a dot inside a label', rawQuery([label('evil.example'), label('google'), label('com')]), 'REFUSED', 'evil\\046example.google.com'],
    ['a control byte', rawQuery([label('a\x01b'), label('com')]), 'REFUSED', 'a\\001b.com'],
    ['non-ASCII', rawQuery([[0x62, 0xfc, 0x63], label('com')]), 'REFUSED', 'b\\252c.com'],
    ['a space', rawQuery([label('a b'), label('com')]), 'REFUSED', 'a\\032b.com'],
    ['a leading hyphen', rawQuery([label('-a'), label('com')]), 'REFUSED', '-a.com'],
    ['the root', rawQuery([]), 'REFUSED', ''],
    ['class CH', rawQuery([label('version'), label('bind')], 16, 3), 'REFUSED', 'version.bind'],
    ['class ANY', rawQuery([label('api'), label('example'), label('com')], 1, 255), 'REFUSED', 'api.example.com'],
    ['a 64-byte label', rawQuery([new Array(64).fill(0x61), label('com')]), 'FORMERR', null],
    ['a name over 255 bytes', rawQuery(Array.from({ length: 5 }, () => new Array(60).fill(0x61))), 'FORMERR', null],
  ];
  for (const [name, q, rcode, auditName] of cases) {
    it(name, () => {
      const c = ctx();
      const r = answerQuery(q, c)!;
      assert.equal(decode(r.response).rcode, rcode);
      assert.equal(decode(r.response).id, 0x1234);
      assert.equal(r.audit.name, auditName);
      assert.deepEqual(c.asked, []);
    });
  }
});

describe('answerQuery: malformed packets', () => {
  const base = query('api.example.com');
  const patch = (b: Uint8Array, at: number, v: number[]) => {
    const c = Uint8Array.from(b);
    c.set(v, at);
    return c;
  };
  const cases: Array<[name: string, q: Uint8Array, want: string | null]> = [
    ['shorter than a header', Uint8Array.from([0x12, 0x34, 1]), null],
    ['empty', new Uint8Array(0), null],
    ['a response', patch(base, 2, [0x81, 0x80]), null],
    ['two questions', patch(base, 4, [0, 2]), 'FORMERR'],
    ['no question', Uint8Array.from(base.subarray(0, 12)).fill(0, 4, 6), 'FORMERR'],
    ['answers in a query', patch(base, 6, [0, 1]), 'FORMERR'],
    ['truncated name', base.subarray(0, 16), 'FORMERR'],
    ['truncated type', base.subarray(0, base.length - 2), 'FORMERR'],
    ['compression pointer', Uint8Array.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1]), 'FORMERR'],
    ['extended label type', Uint8Array.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41, 0, 0, 1, 0, 1]), 'FORMERR'],
    ['an additional record that does not decode', Uint8Array.from([...patch(base, 10, [0, 1]), 0, 0, 41]), 'FORMERR'],
    ['opcode STATUS', patch(base, 2, [0x11, 0x00]), 'NOTIMP'],
    ['opcode UPDATE', patch(base, 2, [0x29, 0x00]), 'NOTIMP'],
  ];
  for (const [name, q, want] of cases) {
    it(name, () => {
      const r = answerQuery(q, ctx());
      if (want === null) {
        assert.equal(r, null);
        return;
      }
      assert.ok(r);
      const p = decode(r.response);
      assert.equal(p.rcode, want);
      assert.equal(p.id, 0x1234);
      assert.equal(p.type, 'response');
      assert.equal(p.answers!.length, 0);
    });
  }
});

describe('DNS over TCP framing', () => {
  it('round-trips several messages split across reads', () => {
    const m1 = query('api.example.com');
    const m2 = query('evil.com', 'TXT');
    const stream = Uint8Array.from([...encodeTcpFrame(m1), ...encodeTcpFrame(m2)]);
    const first = decodeTcpFrames(stream.subarray(0, m1.length + 5));
    assert.equal(first.frames.length, 1);
    assert.deepEqual(first.frames[0], m1);
    assert.equal(first.rest.length, 3);
    const second = decodeTcpFrames(Uint8Array.from([...first.rest, ...stream.subarray(m1.length + 5)]));
    assert.deepEqual(second.frames, [m2]);
    assert.equal(second.rest.length, 0);
    assert.equal(decodeTcpFrames(Uint8Array.of(0)).rest.length, 1);
  });
  it('refuses zero-length frames and oversized messages', () => {
    assert.match(decodeTcpFrames(Uint8Array.of(0, 0, 0, 1)).error ?? '', /zero-length/);
    assert.throws(() => encodeTcpFrame(new Uint8Array(70000)), RangeError);
  });
  it('answers a query that arrived over TCP', () => {
    const { frames } = decodeTcpFrames(encodeTcpFrame(query('registry.npmjs.org')));
    const r = answerQuery(frames[0]!, ctx())!;
    assert.equal(r.audit.answer, '198.18.0.7');
  });
});
