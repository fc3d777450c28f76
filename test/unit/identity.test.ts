import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkFlowIdentity,
  parseAbsoluteUri,
  parseAuthority,
  parseServerName,
  sameIdentity,
  type FlowIdentityInput,
} from '../../src/proxy/identity.ts';

describe('parseAuthority: accepted and normalised', () => {
  const cases: Array<[input: string, dflt: number | null, host: string, port: number | null, kind: string, explicit: boolean]> = [
    ['example.com:443', null, 'example.com', 443, 'name', true],
    ['EXAMPLE.com.:443', null, 'example.com', 443, 'name', true],
    ['Example.COM', 80, 'example.com', 80, 'name', false],
    ['example.com', null, 'example.com', null, 'name', false],
    ['127.0.0.1:80', null, '127.0.0.1', 80, 'ipv4', true],
    ['0x7f.1:80', null, '127.0.0.1', 80, 'ipv4', true],
    ['2130706433:443', null, '127.0.0.1', 443, 'ipv4', true],
    ['0177.0.0.1', 80, '127.0.0.1', 80, 'ipv4', false],
    ['127.1', null, '127.0.0.1', null, 'ipv4', false],
    ['[::1]:443', null, '::1', 443, 'ipv6', true],
    ['[::ffff:127.0.0.1]:443', null, '::ffff:7f00:1', 443, 'ipv6', true],
    ['[::FFFF:7F00:1]', 443, '::ffff:7f00:1', 443, 'ipv6', false],
    ['[64:ff9b::7f00:1]:80', null, '64:ff9b::7f00:1', 80, 'ipv6', true],
    ['xn--bcher-kva.example:443', null, 'xn--bcher-kva.example', 443, 'name', true],
    ['_svc.example.com:443', null, '_svc.example.com', 443, 'name', true],
    ['example.com:65535', null, 'example.com', 65535, 'name', true],
  ];
  for (const [input, dflt, host, port, kind, explicit] of cases) {
    it(input, () => {
      const r = parseAuthority(input, dflt);
      assert.deepEqual(r, { ok: true, host, port, kind, explicitPort: explicit });
    });
  }
});

describe('parseAuthority: refused', () => {
  const cases: Array<[string, RegExp]> = [
    ['evil.example\x00.google.com:443', /NUL/],
    ['evil.example\r\nX-Injected: 1', /control/],
    ['evil.example\t.google.com', /control/],
    ['evil.example .google.com', /space/],
    ['user:pass@example.com:443', /user information/],
    ['example.com@evil.com', /user information/],
    ['ex%61mple.com:443', /%/],
    ['[fe80::1%25eth0]:443', /%/],
    ['[fe80::1%eth0]:443', /%/],
    ['bücher.example:443', /non-ASCII/],
    ['exa\u200bmple.com', /non-ASCII/],
    ['example.com/path', /"\/"/],
    ['example.com\\@evil.com', /user information|"\\\\"/],
    ['example.com?x', /"\?"/],
    ['a..b.com:443', /empty label/],
    ['.example.com:443', /empty label/],
    ['example.com..:443', /empty label/],
    [':443', /empty host/],
    ['', /empty/],
    [`${'a'.repeat(64)}.com:443`, /63/],
    [`${'a.'.repeat(130)}com`, /253/],
    ['x'.repeat(400), /too long/],
    ['example.com:', /empty port/],
    ['example.com:0', /out of range/],
    ['example.com:65536', /out of range/],
    ['example.com:+443', /invalid port/],
    ['example.com:443:443', /brackets/],
    ['::1', /brackets/],
    ['[::1]443', /after "\]"/],
    ['[127.0.0.1]:443', /IPv6/],
    ['[::1:443', /unbalanced/],
    ['example.com]:443', /unbalanced/],
    ['1.2.3.4.5:443', /IPv4/],
    ['256.0.0.1:443', /IPv4/],
    ['foo.123:443', /IPv4/],
    ['-bad.example.com:443', /starts or ends/],
    ['bad!.example.com:443', /characters/],
  ];
  for (const [input, reason] of cases) {
    it(JSON.stringify(input), () => {
      const r = parseAuthority(input, 443);
      assert.equal(r.ok, false, `expected refusal of ${JSON.stringify(input)}`);
      assert.match(!r.ok ? r.reason : '', reason);
    });
  }
});

describe('parseServerName and parseAbsoluteUri', () => {
  it('server names have no port', () => {
    assert.equal(parseServerName('example.com:443').ok, false);
    assert.deepEqual(parseServerName('Example.COM.'), { ok: true, host: 'example.com', port: null, explicitPort: false, kind: 'name' });
    const ip = parseServerName('0x7f.1');
    assert.equal(ip.ok && ip.kind, 'ipv4');
  });
  const uris: Array<[string, string | null, number | null]> = [
    ['http://example.com/x', 'example.com', 80],
    ['HTTPS://Example.com:8443/x?y', 'example.com', 8443],
    ['http://example.com', 'example.com', 80],
    ['http://example.com?q', 'example.com', 80],
    ['ws://0x7f.1/', '127.0.0.1', 80],
    ['http://[::1]:81/', '::1', 81],
    ['http://user@example.com/', null, null],
    ['http:///x', null, null],
    ['ftp://example.com/', null, null],
    ['http://example.com#frag', null, null],
    ['http://exa mple.com/', null, null],
    ['//example.com/', null, null],
  ];
  for (const [uri, host, port] of uris) {
    it(`uri ${uri}`, () => {
      const r = parseAbsoluteUri(uri);
      assert.equal(r.ok ? r.authority.host : null, host);
      assert.equal(r.ok ? r.authority.port : null, port);
    });
  }
});

describe('sameIdentity', () => {
  const cases: Array<[{ host: string; port?: number | null }, { host: string; port?: number | null }, boolean]> = [
    [{ host: 'a.com', port: 443 }, { host: 'a.com', port: 443 }, true],
    [{ host: 'a.com', port: 443 }, { host: 'a.com' }, true],
    [{ host: 'a.com', port: 443 }, { host: 'a.com', port: null }, true],
    [{ host: 'a.com', port: 443 }, { host: 'a.com', port: 8443 }, false],
    [{ host: 'a.com' }, { host: 'b.com' }, false],
  ];
  for (const [a, b, want] of cases) it(`${JSON.stringify(a)} ~ ${JSON.stringify(b)}`, () => assert.equal(sameIdentity(a, b), want));
});

describe('checkFlowIdentity: one identity per flow', () => {
  const ok: Array<[name: string, input: FlowIdentityInput, host: string, port: number | null]> = [
    ['CONNECT + SNI', { connect: 'api.example.com:443', sni: 'api.example.com' }, 'api.example.com', 443],
    ['case and trailing dot agree', { connect: 'API.example.com.:443', sni: 'api.example.COM', host: 'Api.Example.Com.' }, 'api.example.com', 443],
    ['CONNECT + SNI + Host with port', { connect: 'a.com:443', sni: 'a.com', host: 'a.com:443' }, 'a.com', 443],
    ['CONNECT to an IP without SNI', { connect: '93.184.215.14:443', sni: null }, '93.184.215.14', 443],
    ['CONNECT to a hex IP is that IP', { connect: '0x7f.1:443' }, '127.0.0.1', 443],
    ['plain HTTP absolute-form', { absoluteUri: 'http://a.com/x', host: 'a.com' }, 'a.com', 80],
    ['transparent TLS', { dialedAddress: 'a.com:443', sni: 'a.com' }, 'a.com', 443],
    ['Host only', { host: 'a.com:8080' }, 'a.com', 8080],
    ['SNI only', { sni: 'a.com' }, 'a.com', null],
  ];
  for (const [name, input, host, port] of ok) {
    it(name, () => {
      const r = checkFlowIdentity(input);
      assert.equal(r.ok, true, r.ok ? '' : r.reason);
      if (r.ok) {
        assert.equal(r.identity.host, host);
        assert.equal(r.identity.port, port);
      }
    });
  }

  const refused: Array<[name: string, input: FlowIdentityInput, field: string | null, reason: RegExp]> = [
    ['CONNECT host != SNI', { connect: 'allowed.com:443', sni: 'evil.com' }, 'sni', /does not match/],
    ['SNI != Host', { sni: 'allowed.com', host: 'evil.com' }, 'sni', /does not match/],
    ['CONNECT != Host', { connect: 'allowed.com:443', host: 'evil.com' }, 'host', /does not match/],
    ['Host port != CONNECT port', { connect: 'a.com:443', host: 'a.com:8443' }, 'host', /port differs/],
    ['absolute-URI with another Host', { absoluteUri: 'http://allowed.com/', host: 'evil.com' }, 'host', /does not match/],
    ['absolute-URI with another port in Host', { absoluteUri: 'http://a.com/', host: 'a.com:8080' }, 'host', /port/],
    ['no SNI to a name', { connect: 'a.com:443', sni: null }, 'sni', /no server name/],
    ['IP in SNI', { connect: '93.184.215.14:443', sni: '93.184.215.14' }, 'sni', /IP literal/],
    ['hex IP in SNI', { sni: '0x7f.1' }, 'sni', /IP literal/],
    ['NUL in CONNECT', { connect: 'evil.example\x00.google.com:443', sni: 'evil.example' }, 'connect', /NUL/],
    ['NUL in SNI', { connect: 'google.com:443', sni: 'evil.example\x00.google.com' }, 'sni', /NUL/],
    ['NUL in Host', { connect: 'google.com:443', host: 'google.com\x00.evil' }, 'host', /NUL/],
    ['CONNECT without port', { connect: 'a.com' }, 'connect', /no port/],
    ['userinfo in CONNECT', { connect: 'a.com@evil.com:443' }, 'connect', /user information/],
    ['punycode vs unicode', { connect: 'xn--bcher-kva.example:443', sni: 'bücher.example' }, 'sni', /non-ASCII/],
    ['direct IP dial with a Host name', { dialedAddress: '93.184.215.14:80', host: 'allowed.com' }, 'host', /does not match/],
    ['loopback in another spelling vs name', { connect: '2130706433:443', host: 'localhost' }, 'host', /does not match/],
    ['nothing at all', {}, null, /no destination/],
    ['zone id', { connect: '[fe80::1%25eth0]:443' }, 'connect', /%/],
  ];
  for (const [name, input, field, reason] of refused) {
    it(`refuses: ${name}`, () => {
      const r = checkFlowIdentity(input);
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.equal(r.field, field);
        assert.match(r.reason, reason);
      }
    });
  }
});
