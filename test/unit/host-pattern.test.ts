import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostMatches, hostNameProblem, isPublicSuffix, normalizeHostPattern } from '../../src/policy/host-pattern.ts';

describe('normalizeHostPattern: accepted', () => {
  const cases: Array<[raw: string, pattern: string, wildcard: boolean, kind: 'name' | 'ipv4' | 'ipv6']> = [
    ['api.example.com', 'api.example.com', false, 'name'],
    ['API.Example.COM', 'api.example.com', false, 'name'],
    ['api.example.com.', 'api.example.com', false, 'name'],
    ['*.example.com', '*.example.com', true, 'name'],
    ['*.Example.com.', '*.example.com', true, 'name'],
    ['*.example.co.uk', '*.example.co.uk', true, 'name'],
    ['*.my-user.github.io', '*.my-user.github.io', true, 'name'],
    ['*.googleapis.com', '*.googleapis.com', true, 'name'],
    ['_acme-challenge.example.com', '_acme-challenge.example.com', false, 'name'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example', false, 'name'],
    ['github.io', 'github.io', false, 'name'],
    ['localhost', 'localhost', false, 'name'],
    ['93.184.215.14', '93.184.215.14', false, 'ipv4'],
    ['2001:DB8::1', '2001:db8::1', false, 'ipv6'],
    ['[2001:db8:0:0:0:0:0:1]', '2001:db8::1', false, 'ipv6'],
    ['::ffff:127.0.0.1', '::ffff:7f00:1', false, 'ipv6'],
    [`${'a'.repeat(63)}.example.com`, `${'a'.repeat(63)}.example.com`, false, 'name'],
  ];
  for (const [raw, pattern, wildcard, kind] of cases) {
    it(raw, () => assert.deepEqual(normalizeHostPattern(raw), { ok: true, pattern, wildcard, kind }));
  }
});

describe('normalizeHostPattern: refused', () => {
  const cases: Array<[raw: string, reason: RegExp]> = [
    ['', /empty/],
    ['*', /over-broad/],
    ['.', /over-broad/],
    ['*.com', /public suffix/],
    ['*.io', /public suffix/],
    ['*.co.uk', /public suffix/],
    ['*.com.au', /public suffix/],
    ['*.ac.jp', /public suffix/],
    ['*.github.io', /public suffix/],
    ['*.herokuapp.com', /public suffix/],
    ['*.appspot.com', /public suffix/],
    ['*.vercel.app', /public suffix/],
    ['*.netlify.app', /public suffix/],
    ['*.pages.dev', /public suffix/],
    ['*.workers.dev', /public suffix/],
    ['*.s3.amazonaws.com', /public suffix/],
    ['*.amazonaws.com', /public suffix/],
    ['*.s3.us-east-1.amazonaws.com', /public suffix/],
    ['*.cloudfront.net', /public suffix/],
    ['*.azurewebsites.net', /public suffix/],
    ['*.blob.core.windows.net', /public suffix/],
    ['*.blogspot.com', /public suffix/],
    ['*.storage.googleapis.com', /public suffix/],
    ['*.ngrok-free.app', /public suffix/],
    ['*.internal', /public suffix/],
    ['*example.com', /whole leading label/],
    ['a.*.example.com', /whole leading label/],
    ['*.*.example.com', /whole leading label/],
    ['api.*', /whole leading label/],
    ['evil.example\x00.google.com', /control/],
    ['evil.example\n', /control/],
    ['api example.com', /spaces/],
    [' api.example.com', /spaces/],
    ['bücher.example', /punycode.*xn--bcher-kva\.example/],
    ['*.bücher.example', /punycode.*\*\.xn--bcher-kva\.example/],
    ['аpple.com', /punycode/],
    ['api.example.com:443', /ports/],
    ['[::1]:443', /ports/],
    ['https://api.example.com', /scheme/],
    ['api.example.com/v1', /paths/],
    ['user@api.example.com', /user information/],
    ['api%2eexample.com', /percent/],
    ['api..example.com', /empty label/],
    ['api.example.com..', /empty label/],
    ['-api.example.com', /starts or ends/],
    ['api-.example.com', /starts or ends/],
    ['api!.example.com', /characters/],
    [`${'a'.repeat(64)}.example.com`, /63/],
    [`${'a.'.repeat(127)}com`, /253/],
    ['0x7f.1', /127\.0\.0\.1/],
    ['2130706433', /127\.0\.0\.1/],
    ['127.1', /127\.0\.0\.1/],
    ['010.0.0.1', /8\.0\.0\.1/],
    ['256.1.1.1', /not a valid one/],
    ['1.2.3.4.5', /not a valid one/],
    ['example.123', /not a valid one/],
    ['*.10.0.0.1', /wildcards are not allowed in IP/],
    ['10.0.0.0/8', /CIDR/],
    ['2001:db8::/32', /CIDR/],
    ['fe80::1%eth0', /zone/],
    ['[fe80::1%25eth0]', /zone/],
    ['1::2::3', /IPv6/],
  ];
  for (const [raw, reason] of cases) {
    it(JSON.stringify(raw), () => {
      const r = normalizeHostPattern(raw);
      assert.equal(r.ok, false, `expected ${JSON.stringify(raw)} to be refused`);
      assert.match(!r.ok ? r.reason : '', reason);
    });
  }
});

describe('hostMatches', () => {
  const cases: Array<[pattern: string, host: string, want: boolean]> = [
    ['api.example.com', 'api.example.com', true],
    ['api.example.com', 'API.EXAMPLE.COM', true],
    ['api.example.com', 'api.example.com.', true],
    ['api.example.com', 'api.example.com..', false],
    ['api.example.com', 'xapi.example.com', false],
    ['api.example.com', 'api.example.com.evil.com', false],
    ['api.example.com', 'evil.example\x00.api.example.com', false],
    ['*.example.com', 'a.example.com', true],
    ['*.example.com', 'a.b.example.com', true],
    ['*.example.com', 'A.Example.Com.', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'badexample.com', false],
    ['*.example.com', '.example.com', false],
    ['*.example.com', 'a..example.com', false],
    ['*.example.com', 'example.com.evil.com', false],
    ['*.example.com', 'evil.com\x00.example.com', false],
    ['*.example.com', 'evil.com/.example.com', false],
    ['*.example.com', 'evil.com:80.example.com', false],
    ['*.google.com', 'evil.example\x00.google.com', false],
    ['93.184.215.14', '93.184.215.14', true],
    ['127.0.0.1', '0x7f.1', true],
    ['127.0.0.1', '2130706433', true],
    ['127.0.0.1', '127.0.0.2', false],
    ['127.0.0.1', '::ffff:127.0.0.1', false],
    ['2001:db8::1', '2001:DB8:0::1', true],
    ['2001:db8::1', '[2001:db8::1]', true],
    ['2001:db8::1', 'fe80::1%eth0', false],
    // names and addresses never cross
    ['*.0.0.1', '127.0.0.1', false],
    ['example.com', '93.184.215.14', false],
    ['93.184.215.14', 'example.com', false],
    ['', 'example.com', false],
    ['example.com', '', false],
  ];
  for (const [pattern, host, want] of cases) {
    it(`${pattern} vs ${JSON.stringify(host)} -> ${want}`, () => assert.equal(hostMatches(pattern, host), want));
  }
});

describe('isPublicSuffix and hostNameProblem', () => {
  const suffixes: Array<[string, boolean]> = [
    ['com', true],
    ['co.uk', true],
    ['com.br', true],
    ['github.io', true],
    ['foo.github.io', false],
    ['example.com', false],
    ['s3.eu-west-1.amazonaws.com', true],
    ['web.de', false],
  ];
  for (const [name, want] of suffixes) it(`suffix ${name} -> ${want}`, () => assert.equal(isPublicSuffix(name), want));
  const names: Array<[string, boolean]> = [
    ['example.com', true],
    ['a', true],
    ['a_b.example', true],
    ['', false],
    ['a..b', false],
    ['a.b.', false],
    ['a b', false],
  ];
  for (const [name, valid] of names) it(`name ${JSON.stringify(name)} valid=${valid}`, () => assert.equal(hostNameProblem(name) === null, valid));
});
