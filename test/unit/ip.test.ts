import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  classifyAddress,
  dialAllowed,
  embeddedIpv4,
  formatIp,
  inspectIpLiteral,
  isCanonicalIpv4,
  parseIpLiteral,
  type AddressClass,
} from '../../src/policy/ip.ts';

describe('parseIpLiteral: every spelling a client accepts', () => {
  const cases: Array<[input: string, canonical: string | null]> = [
    // IPv4 dotted quad and the inet_aton / WHATWG shorthands
    ['127.0.0.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['0x7f000001', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['0X7F.0.0.1', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['0177.1', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['127.0.1', '127.0.0.1'],
    ['127.0.0.1.', '127.0.0.1'],
    ['0', '0.0.0.0'],
    ['0x', '0.0.0.0'],
    ['017700000001', '127.0.0.1'],
    ['169.254.43518', '169.254.169.254'],
    ['0xa9fea9fe', '169.254.169.254'],
    ['4294967295', '255.255.255.255'],
    ['192.168.0x1.1', '192.168.1.1'],
    // invalid IPv4 forms
    ['4294967296', null],
    ['256.0.0.1', null],
    ['1.2.3.4.5', null],
    ['08.0.0.1', null],
    ['1..2.3', null],
    ['1.2.3.0x', '1.2.3.0'],
    ['1.2.3.0xg', null],
    ['-1.2.3.4', null],
    ['1.2.3.256', null],
    ['1.2.65536', null],
    [' 127.0.0.1', null],
    // IPv6
    ['::1', '::1'],
    ['[::1]', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['::', '::'],
    ['[::ffff:127.0.0.1]', '::ffff:7f00:1'],
    ['::FFFF:7F00:1', '::ffff:7f00:1'],
    ['::127.0.0.1', '::7f00:1'],
    ['64:ff9b::7f00:1', '64:ff9b::7f00:1'],
    ['64:ff9b::127.0.0.1', '64:ff9b::7f00:1'],
    ['2002:7f00:1::', '2002:7f00:1::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['fd00:ec2::254', 'fd00:ec2::254'],
    // invalid IPv6
    ['fe80::1%eth0', null],
    ['[fe80::1%25eth0]', null],
    [':::', null],
    ['1::2::3', null],
    ['1:2:3:4:5:6:7:8:9', null],
    ['1:2:3:4:5:6:7::8', null],
    ['::ffff:127.0.0.01', null],
    ['::ffff:0x7f.1', null],
    ['12345::', null],
    ['[127.0.0.1]', null],
    ['[::1', null],
    // names
    ['example.com', null],
    ['1.example.com', null],
    ['', null],
  ];
  for (const [input, canonical] of cases) {
    it(`${JSON.stringify(input)} -> ${canonical}`, () => {
      assert.equal(parseIpLiteral(input)?.canonical ?? null, canonical);
    });
  }

  it('reports zone ids with a reason', () => {
    const r = inspectIpLiteral('fe80::1%eth0');
    assert.equal(r.kind, 'invalid');
    assert.match(r.kind === 'invalid' ? r.reason : '', /zone/);
  });
  it('reports numeric-looking names as invalid, not as names', () => {
    assert.equal(inspectIpLiteral('1.2.3.4.5').kind, 'invalid');
    assert.equal(inspectIpLiteral('foo.123').kind, 'invalid');
    assert.equal(inspectIpLiteral('foo.0x1g').kind, 'not-ip');
    assert.equal(inspectIpLiteral('example.com').kind, 'not-ip');
  });
  it('gives bytes in network order', () => {
    assert.deepEqual(Array.from(parseIpLiteral('0x7f.1')!.bytes), [127, 0, 0, 1]);
    assert.equal(parseIpLiteral('::1')!.bytes.length, 16);
    assert.equal(parseIpLiteral('::1')!.family, 6);
  });
});

describe('isCanonicalIpv4', () => {
  const cases: Array<[string, boolean]> = [
    ['1.2.3.4', true],
    ['255.255.255.255', true],
    ['0.0.0.0', true],
    ['01.2.3.4', false],
    ['1.2.3', false],
    ['256.1.1.1', false],
    ['0x1.2.3.4', false],
    ['1.2.3.4.', false],
  ];
  for (const [s, want] of cases) it(s, () => assert.equal(isCanonicalIpv4(s), want));
});

describe('classifyAddress', () => {
  const cases: Array<[string, AddressClass]> = [
    ['8.8.8.8', 'public'],
    ['93.184.215.14', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'metadata'],
    ['169.254.170.2', 'metadata'],
    ['169.254.1.1', 'link-local'],
    ['100.100.100.200', 'metadata'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['100.128.0.1', 'public'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'reserved'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.1', 'documentation'],
    ['198.51.100.1', 'documentation'],
    ['203.0.113.1', 'documentation'],
    ['198.18.0.1', 'benchmark'],
    ['198.19.255.255', 'benchmark'],
    ['192.0.0.8', 'reserved'],
    ['2606:4700::1111', 'public'],
    ['2001:4860:4860::8888', 'public'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'ipv4-mapped'],
    ['::ffff:8.8.8.8', 'ipv4-mapped'],
    ['::127.0.0.1', 'ipv4-compatible'],
    ['::ffff:0:127.0.0.1', 'ipv4-translated'],
    ['64:ff9b::7f00:1', 'nat64'],
    ['64:ff9b::808:808', 'nat64'],
    ['64:ff9b:1::1', 'nat64'],
    ['2002:7f00:1::', '6to4'],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'teredo'],
    ['fd00:ec2::254', 'metadata'],
    ['fd12:3456::1', 'unique-local'],
    ['fc00::1', 'unique-local'],
    ['fe80::1', 'link-local'],
    ['fec0::1', 'reserved'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'documentation'],
    ['3fff::1', 'documentation'],
    ['2001:2::1', 'benchmark'],
    ['2001:10::1', 'reserved'],
    ['100::1', 'reserved'],
    ['4000::1', 'reserved'],
    ['::1:2:3', 'reserved'],
  ];
  for (const [addr, cls] of cases) {
    it(`${addr} is ${cls}`, () => assert.equal(classifyAddress(parseIpLiteral(addr)!.bytes), cls));
  }
  it('treats malformed byte arrays as reserved', () => assert.equal(classifyAddress(new Uint8Array(5)), 'reserved'));
});

describe('embeddedIpv4', () => {
  const cases: Array<[string, string | null, AddressClass | null]> = [
    ['::ffff:127.0.0.1', '127.0.0.1', 'loopback'],
    ['::127.0.0.1', '127.0.0.1', 'loopback'],
    ['::ffff:0:10.0.0.1', '10.0.0.1', 'private'],
    ['64:ff9b::7f00:1', '127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', '169.254.169.254', 'metadata'],
    ['2002:7f00:1::', '127.0.0.1', 'loopback'],
    ['2002:a9fe:a9fe::1', '169.254.169.254', 'metadata'],
    // Teredo client 127.0.0.1 obfuscated: ~7f000001 = 80fffffe
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', '127.0.0.1', 'loopback'],
    ['64:ff9b:1::7f00:1', null, null],
    ['2606:4700::1111', null, null],
    ['127.0.0.1', null, null],
  ];
  for (const [addr, v4, cls] of cases) {
    it(`${addr} carries ${v4}`, () => {
      const e = embeddedIpv4(parseIpLiteral(addr)!.bytes);
      assert.equal(e?.canonical ?? null, v4);
      assert.equal(e?.class ?? null, cls);
    });
  }
});

describe('dialAllowed: the pure part of DNS rebinding defence', () => {
  // A name that resolved to a public address when checked may resolve to a
  // private one when dialled; the proxy checks the address it actually dials.
  const cases: Array<[addr: string, exact: string[], ok: boolean]> = [
    ['93.184.215.14', [], true],
    ['2606:4700::1111', [], true],
    ['127.0.0.1', [], false],
    ['10.0.0.5', [], false],
    ['169.254.169.254', [], false],
    ['100.64.0.1', [], false],
    ['100.100.100.200', [], false],
    ['::1', [], false],
    ['::ffff:127.0.0.1', [], false],
    ['::ffff:8.8.8.8', [], false],
    ['64:ff9b::7f00:1', [], false],
    ['2002:7f00:1::', [], false],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', [], false],
    ['fd00:ec2::254', [], false],
    ['fe80::1', [], false],
    ['0.0.0.0', [], false],
    ['224.0.0.1', [], false],
    ['198.18.0.1', [], false],
    // the exact address, in any spelling, opens it
    ['10.0.0.5', ['10.0.0.5'], true],
    ['10.0.0.5', ['0xa.5'], true],
    ['10.0.0.6', ['10.0.0.5'], false],
    ['::ffff:10.0.0.5', ['10.0.0.5'], false],
    ['::1', ['[::1]'], true],
    ['::1', ['not an ip'], false],
  ];
  for (const [addr, exact, ok] of cases) {
    it(`${addr} with [${exact.join(', ')}] -> ${ok}`, () => {
      const r = dialAllowed(parseIpLiteral(addr)!.bytes, exact);
      assert.equal(r.ok, ok);
      if (!r.ok) assert.match(r.reason, /address/);
    });
  }
  it('names the embedded address in the reason', () => {
    const r = dialAllowed(parseIpLiteral('64:ff9b::a9fe:a9fe')!.bytes, []);
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /169\.254\.169\.254, a metadata address/);
  });
  it('refuses byte arrays that are not addresses', () => assert.equal(dialAllowed(new Uint8Array(3), []).ok, false));
  it('formats canonically', () => {
    assert.equal(formatIp(new Uint8Array([10, 0, 0, 1])), '10.0.0.1');
    assert.throws(() => formatIp(new Uint8Array(2)));
  });
});
