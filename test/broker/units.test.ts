// Pure parts of the broker: spellings, the matcher and its streaming
// guarantee (randomised splits), placeholders and canaries, AWS secret
// parsing, SigV4 against AWS's published example and the SDK's signer,
// planting clashes, the redactor, and session isolation.

import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes, randomInt } from 'node:crypto';
import { describe, it } from 'node:test';
import { HttpRequest } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';
import { issueCredentials } from '../../src/broker/index.ts';
import { parseAwsSecret } from '../../src/broker/aws-keys.ts';
import { spellings } from '../../src/broker/encodings.ts';
import { Matcher, StreamRewriter, type Pattern } from '../../src/broker/matcher.ts';
import { awsPlaceholder, canaryValues, tokenPlaceholder } from '../../src/broker/placeholders.ts';
import { canonicalQuery, canonicalRequest, canonicalUri, parseAuthorization, sign, signingKey, stringToSign } from '../../src/broker/sigv4.ts';
import { CordonError } from '../../src/errors.ts';
import { bindings } from './helpers.ts';

describe('spellings', () => {
  const v = Buffer.from('sk-cordonphAbCdEf0123456789xyz/+');
  const all = spellings(v);
  const has = (s: string) => all.some((x) => s.includes(x.bytes.toString('latin1')));
  it('base64 and base64url at every offset inside larger texts', () => {
    for (let k = 0; k < 3; k++) {
      for (const tail of ['', 'a', 'bc', 'def']) {
        const text = Buffer.concat([randomBytes(k + 3 * randomInt(3)), v, Buffer.from(tail)]);
        assert.ok(has(text.toString('base64')), `base64 k=${k} tail=${tail.length}`);
        assert.ok(has(text.toString('base64url')), `base64url k=${k}`);
        assert.ok(has(encodeURIComponent(text.toString('base64'))), `base64 url-encoded k=${k}`);
      }
    }
  });
  it('hex either case, URL-encoded (component and every byte), JSON "\\/"', () => {
    assert.ok(has(`x${v.toString('hex')}y`) && has(v.toString('hex').toUpperCase()));
    assert.ok(has(encodeURIComponent(`"${v}"`)));
    assert.ok(has([...v].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')));
    assert.ok(has(JSON.stringify({ k: v.toString() }).replace(/\//g, '\\/')));
  });
  it('values under 8 bytes are not scanned', () => {
    assert.deepEqual(spellings(Buffer.from('short')), []);
  });
});

describe('StreamRewriter: the streaming guarantee', () => {
  const patterns: Array<Pattern<string>> = ['cordonphSECRETone', 'needle-two', 'XYZXYZXYZW'].map((p) => ({ bytes: Buffer.from(p), tag: p }));
  const matcher = new Matcher(patterns);
  const randomSplit = (b: Buffer): Buffer[] => {
    const out: Buffer[] = [];
    let at = 0;
    while (at < b.length) {
      const n = 1 + randomInt(Math.min(40, b.length - at));
      out.push(b.subarray(at, at + n));
      at += n;
    }
    return out;
  };
  const text = () => {
    const parts = [];
    for (let i = 0; i < 12; i++) parts.push(randomInt(4) === 0 ? patterns[randomInt(3)]!.tag : 'XYZXYZ'.slice(0, randomInt(7)) + 'filler'.repeat(randomInt(5)) + 'cordonph'.slice(0, randomInt(9)));
    return Buffer.from(parts.join(''));
  };

  it('stopping on a match never releases a byte of it (1000 random splits)', () => {
    for (let round = 0; round < 1000; round++) {
      const input = text();
      const first = matcher.first(input);
      const released: Buffer[] = [];
      const rw = new StreamRewriter(matcher, () => {
        throw new Error('stop');
      });
      let stopped = false;
      try {
        for (const c of randomSplit(input)) released.push(rw.push(c));
        released.push(rw.end());
      } catch {
        stopped = true;
      }
      const out = Buffer.concat(released);
      if (!first) {
        assert.equal(stopped, false);
        assert.ok(out.equals(input));
      } else {
        assert.equal(stopped, true);
        assert.ok(out.length <= first.start, `released ${out.length} bytes, the match starts at ${first.start}`);
        assert.ok(input.subarray(0, out.length).equals(out));
      }
    }
  });

  it('replacement is the same however the stream is cut; memory stays bounded', () => {
    for (let round = 0; round < 500; round++) {
      const input = text();
      const once = (chunks: Buffer[]) => {
        const rw = new StreamRewriter(matcher, (h) => Buffer.from(`<${h.tag.length}>`));
        const out = chunks.map((c) => rw.push(c));
        out.push(rw.end());
        return Buffer.concat(out).toString();
      };
      const whole = once([input]);
      assert.equal(once(randomSplit(input)), whole);
      assert.ok(!whole.includes('cordonphSECRETone') && !whole.includes('needle-two'));
    }
    const rw = new StreamRewriter(matcher, () => Buffer.from('_'));
    let held = 0;
    for (let i = 0; i < 10_000; i++) {
      const c = Buffer.from('cordonphSECRETon');
      held += c.length - rw.push(c).length;
      assert.ok(held < 17, 'never holds more than the longest pattern - 1');
    }
  });

  it('holds back only what could still become a match (streams keep flowing)', () => {
    const rw = new StreamRewriter(matcher, () => Buffer.from('!'));
    assert.equal(rw.push(Buffer.from('data: {"text":"hello"}\n\n')).toString(), 'data: {"text":"hello"}\n\n');
    assert.equal(rw.push(Buffer.from('event: x cordon')).toString(), 'event: x ');
    assert.equal(rw.push(Buffer.from('ph and more')).toString(), 'cordonph and more');
  });
});

describe('placeholders and canaries', () => {
  it('token placeholders: prefix, marker, length class, unique', () => {
    const a = tokenPlaceholder('sk-ant-api03-', undefined);
    assert.match(a, /^sk-ant-api03-cordonph[A-Za-z0-9]+$/);
    assert.equal(a.length, 108);
    assert.equal(tokenPlaceholder('ghp_', undefined).length, 40);
    assert.equal(tokenPlaceholder('sk-', Buffer.from(`sk-${'x'.repeat(60)}`)).length, 63, 'the real length when the prefix matches');
    assert.equal(tokenPlaceholder('', undefined).length, 40);
    assert.ok(tokenPlaceholder('glpat-', undefined).length >= 6 + 8 + 22);
    assert.notEqual(tokenPlaceholder('x-', undefined), tokenPlaceholder('x-', undefined));
  });
  it('aws placeholders look like AWS keys', () => {
    const p = awsPlaceholder(false);
    assert.match(p.accessKeyId, /^AKIACORDON[A-Z2-7]{10}$/);
    assert.match(awsPlaceholder(true).accessKeyId, /^ASIACORDON/);
    assert.match(p.secretAccessKey, /^cordonph[A-Za-z0-9]{32}$/);
  });
  it('canaries: each format, unique per call', () => {
    const a = canaryValues('aws-credentials');
    assert.match(a.values[0]!, /^AKIA[A-Z2-7]{16}$/);
    assert.equal(a.envValue('AWS_ACCESS_KEY_ID'), a.values[0]);
    assert.equal(a.envValue('AWS_SECRET_ACCESS_KEY'), a.values[1]);
    assert.match(canaryValues('netrc').fileText, /^machine github\.com\n {2}login x-access-token\n {2}password ghp_[A-Za-z0-9]{36}\n$/);
    assert.notEqual(canaryValues('token').values[0], canaryValues('token').values[0]);
  });
});

describe('AWS secrets', () => {
  it('JSON and the first profile of an INI file', () => {
    const j = parseAwsSecret('s', Buffer.from('{"accessKeyId":"AKIAAAAAAAAAAAAAAAAA","secretAccessKey":"0123456789abcdef0123"}'));
    assert.equal(j.accessKeyId.toString(), 'AKIAAAAAAAAAAAAAAAAA');
    assert.equal(j.sessionToken, null);
    const i = parseAwsSecret('s', Buffer.from('; c\n[p1]\naws_access_key_id=ASIABBBBBBBBBBBBBBBB\naws_secret_access_key = k/ey+0123456789abcdef\naws_session_token = tok\n[p2]\naws_access_key_id = AKIACCCCCCCCCCCCCCCC\n'));
    assert.equal(i.accessKeyId.toString(), 'ASIABBBBBBBBBBBBBBBB');
    assert.equal(i.secretAccessKey.toString(), 'k/ey+0123456789abcdef');
    assert.equal(i.sessionToken?.toString(), 'tok');
  });
  it('errors name the secret, never the value', () => {
    for (const bad of ['{"accessKeyId":"lower","secretAccessKey":"SECRETVALUE12345678"}', 'SECRETVALUE', '{oops SECRETVALUE']) {
      assert.throws(
        () => parseAwsSecret('prod-aws', Buffer.from(bad)),
        (e: unknown) => e instanceof CordonError && e.code === 'CORDON_SECRET' && /prod-aws/.test(e.message) && !JSON.stringify(e.toJSON()).includes('SECRETVALUE'),
      );
    }
  });
});

describe('SigV4', () => {
  const secret = Buffer.from('wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY');
  it("AWS's get-vanilla example", () => {
    const cr = canonicalRequest({
      method: 'GET',
      target: '/',
      headers: [['Host', 'example.amazonaws.com'], ['X-Amz-Date', '20150830T123600Z']],
      signedHeaders: ['host', 'x-amz-date'],
      payloadHash: createHash('sha256').update('').digest('hex'),
      service: 'service',
    })!;
    const sig = sign(signingKey(secret, '20150830', 'us-east-1', 'service'), stringToSign('20150830T123600Z', '20150830/us-east-1/service/aws4_request', cr));
    assert.equal(sig, '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31');
  });
  it('canonical URI and query', () => {
    assert.equal(canonicalUri('/a/./b/../c//d%20e/', 'service'), '/a/c/d%2520e/');
    assert.equal(canonicalUri('/a//b/%2F', 's3'), '/a//b/%2F');
    assert.equal(canonicalQuery('b=2&a=3&a=1&c&d=%7e%20x'), 'a=1&a=3&b=2&c=&d=~%20x');
    assert.equal(canonicalQuery('a=%zz'), null);
  });
  it('agrees with the AWS SDK signer on assorted requests', async () => {
    class Sha256 {
      readonly h;
      constructor(s?: unknown) {
        this.h = s === undefined ? createHash('sha256') : createHmac('sha256', Buffer.from(s as Uint8Array));
      }
      update(d: unknown) {
        this.h.update(typeof d === 'string' ? d : Buffer.from(d as Uint8Array));
      }
      digest() {
        return Promise.resolve(new Uint8Array(this.h.digest()));
      }
      reset() {}
    }
    const cases: Array<{ service: string; method: string; path: string; query: Record<string, string>; body: string | undefined }> = [
      { service: 's3', method: 'PUT', path: '/bkt/a%20b/c+d.txt', query: { 'x-id': 'PutObject', 'a b': 'c/d' }, body: 'hello' },
      { service: 'dynamodb', method: 'POST', path: '/', query: {}, body: '{"a":1}' },
      { service: 'execute-api', method: 'GET', path: '/prod/items/a b/../c', query: { q: 'x y~*' }, body: undefined },
    ];
    for (const c of cases) {
      const signer = new SignatureV4({ credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: secret.toString() }, region: 'eu-west-1', service: c.service, sha256: Sha256, uriEscapePath: c.service !== 's3' });
      const out = await signer.sign(
        new HttpRequest({ method: c.method, protocol: 'https:', hostname: 'h.example', path: c.path, query: c.query, headers: { host: 'h.example', 'x-custom': '  a   b  ' }, ...(c.body ? { body: c.body } : {}) }),
        { signingDate: new Date('2026-01-02T03:04:05Z') },
      );
      const auth = parseAuthorization(String(out.headers.authorization))!;
      const qs = Object.entries(c.query).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
      const headers = Object.entries(out.headers as Record<string, string>);
      const cr = canonicalRequest({
        method: c.method,
        target: qs ? `${c.path}?${qs}` : c.path,
        headers,
        signedHeaders: auth.signedHeaders,
        payloadHash: createHash('sha256').update(c.body ?? '').digest('hex'),
        service: c.service,
      })!;
      const mine = sign(signingKey(secret, auth.date, auth.region, auth.service), stringToSign('20260102T030405Z', `${auth.date}/${auth.region}/${auth.service}/aws4_request`, cr));
      assert.equal(mine, auth.signature, `${c.service} ${c.method} ${c.path}`);
    }
  });
});

describe('issueCredentials', () => {
  const base = (o: Partial<Parameters<typeof issueCredentials>[0]> = {}) => ({
    sessionId: 's',
    bindings: bindings([{ secret: 'a', hosts: ['api.example.com'], env: 'A_KEY' }]),
    canaries: [],
    secrets: new Map([['a', Buffer.from('  real-value-aaaaaaaa\n')]]),
    home: '/home/u',
    audit: () => {},
    ...o,
  });
  it('sessions share nothing: placeholders differ, neither knows the other', () => {
    const a = issueCredentials(base());
    const b = issueCredentials(base());
    assert.notEqual(a.env().A_KEY, b.env().A_KEY);
    assert.ok(b.redactor()(`x ${a.env().A_KEY}`).includes(a.env().A_KEY!), "B's redactor does not know A's placeholder");
    a.revoke();
    assert.equal(b.list()[0]!.state, 'live');
  });
  it('a missing secret, a clash, a bad value fail the start without printing values', () => {
    assert.throws(() => issueCredentials(base({ secrets: new Map() })), /secret "a" .* is not in the vault/);
    assert.throws(
      () => issueCredentials(base({ bindings: bindings([{ secret: 'a', hosts: ['h.example.com'], env: 'X' }, { secret: 'a', hosts: ['i.example.com'], env: 'X' }]) })),
      /variable X is planted twice/,
    );
    assert.throws(
      () => issueCredentials(base({ secrets: new Map([['a', Buffer.from('bad value with spaces')]]) })),
      (e: unknown) => e instanceof CordonError && !e.message.includes('bad value'),
    );
  });
  it('aws bindings and an aws canary share ~/.aws/credentials as profiles', () => {
    const c = issueCredentials(
      base({
        bindings: bindings([
          { secret: 'dev', kind: 'aws', hosts: ['s3.amazonaws.com'], file: '~/.aws/credentials' },
          { secret: 'prod', kind: 'aws', hosts: ['sts.amazonaws.com'], file: '~/.aws/credentials' },
        ]),
        canaries: [{ file: '~/.aws/credentials', env: null, format: 'aws-credentials' }],
        secrets: new Map([
          ['dev', Buffer.from('{"accessKeyId":"AKIAAAAAAAAAAAAAAAAA","secretAccessKey":"0123456789abcdef0123"}')],
          ['prod', Buffer.from('{"accessKeyId":"AKIABBBBBBBBBBBBBBBB","secretAccessKey":"0123456789abcdef0124"}')],
        ]),
      }),
    );
    const files = c.files();
    assert.equal(files.length, 1);
    assert.deepEqual([...files[0]!.content.matchAll(/^\[(.+)\]$/gm)].map((m) => m[1]), ['default', 'prod', 'admin']);
  });
  it('close() wipes the real values; revoke() and list() report state', () => {
    const secrets = new Map([['a', Buffer.from('real-value-aaaaaaaa')]]);
    const c = issueCredentials(base({ secrets }));
    secrets.get('a')!.fill(0); // the caller may wipe its own copy at once
    const red = c.redactor();
    assert.equal(red('real-value-aaaaaaaa'), '[redacted]');
    assert.deepEqual(c.revoke(['other']), []);
    c.close();
    assert.equal(c.list()[0]!.state, 'revoked');
    assert.equal(c.redactor()(c.env().A_KEY!), '[redacted]', 'placeholders are still redacted after close');
  });
});
