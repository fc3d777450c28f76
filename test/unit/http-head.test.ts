import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  HeadReader,
  parseChunkedStream,
  parseRequestHead,
  parseResponseHead,
  type ChunkEvent,
  type RequestHeadResult,
} from '../../src/proxy/http-head.ts';

const bytes = (s: string) => Uint8Array.from(Buffer.from(s, 'latin1'));
const text = (b: Uint8Array) => Buffer.from(b).toString('latin1');
const head = (...lines: string[]) => bytes(`${lines.join('\r\n')}\r\n\r\n`);

function parsed(r: RequestHeadResult) {
  assert.equal(r.kind, 'parsed', r.kind === 'invalid' ? r.reason : r.kind);
  return r as Extract<RequestHeadResult, { kind: 'parsed' }>;
}

describe('parseRequestHead: accepted', () => {
  it('a plain GET', () => {
    const b = head('GET /v1/models?x=1 HTTP/1.1', 'Host: API.example.com', 'Accept: */*', 'X-Tab:\tvalue\t');
    const r = parsed(parseRequestHead(b));
    assert.equal(r.method, 'GET');
    assert.equal(r.target, '/v1/models?x=1');
    assert.equal(r.targetForm, 'origin');
    assert.equal(r.version, '1.1');
    assert.deepEqual(r.framing, { kind: 'none' });
    assert.equal(r.host?.host, 'api.example.com');
    assert.equal(r.headerBytes, b.length);
    assert.deepEqual(r.headers, [
      ['Host', 'API.example.com'],
      ['Accept', '*/*'],
      ['X-Tab', 'value'],
    ]);
  });

  const cases: Array<[name: string, b: Uint8Array, check: (r: ReturnType<typeof parsed>) => void]> = [
    ['Content-Length', head('POST /x HTTP/1.1', 'Host: a.com', 'Content-Length: 42'), (r) => assert.deepEqual(r.framing, { kind: 'length', length: 42 })],
    ['Content-Length with OWS', head('POST /x HTTP/1.1', 'Host: a.com', 'Content-Length:  7 '), (r) => assert.deepEqual(r.framing, { kind: 'length', length: 7 })],
    ['chunked', head('POST /x HTTP/1.1', 'Host: a.com', 'Transfer-Encoding: chunked'), (r) => assert.deepEqual(r.framing, { kind: 'chunked' })],
    ['Chunked (case)', head('POST /x HTTP/1.1', 'Host: a.com', 'transfer-encoding: Chunked'), (r) => assert.deepEqual(r.framing, { kind: 'chunked' })],
    ['absolute-form', head('GET http://a.com/x HTTP/1.1', 'Host: a.com'), (r) => {
      assert.equal(r.targetForm, 'absolute');
      assert.equal(r.targetAuthority?.host, 'a.com');
      assert.equal(r.targetAuthority?.port, 80);
    }],
    ['absolute-form with the default port in Host', head('GET http://a.com/x HTTP/1.1', 'Host: a.com:80'), (r) => assert.equal(r.targetForm, 'absolute')],
    ['absolute-form with an explicit port', head('GET http://a.com:8080/x HTTP/1.1', 'Host: a.com:8080'), (r) => assert.equal(r.targetAuthority?.port, 8080)],
    ['CONNECT', head('CONNECT a.com:443 HTTP/1.1', 'Host: a.com:443'), (r) => {
      assert.equal(r.targetForm, 'authority');
      assert.equal(r.targetAuthority?.port, 443);
    }],
    ['CONNECT with a Host without port', head('CONNECT a.com:443 HTTP/1.1', 'Host: a.com'), (r) => assert.equal(r.targetForm, 'authority')],
    ['CONNECT to a hex IP is that IP', head('CONNECT 0x7f.1:443 HTTP/1.1', 'Host: 127.0.0.1:443'), (r) => assert.equal(r.targetAuthority?.host, '127.0.0.1')],
    ['OPTIONS *', head('OPTIONS * HTTP/1.1', 'Host: a.com'), (r) => assert.equal(r.targetForm, 'asterisk')],
    ['HTTP/1.0 without Host', head('GET / HTTP/1.0'), (r) => {
      assert.equal(r.version, '1.0');
      assert.equal(r.host, null);
    }],
    ['leading CRLFs are skipped', bytes(`\r\n\r\nGET / HTTP/1.1\r\nHost: a.com\r\n\r\n`), (r) => assert.equal(r.headerBytes, 35)],
    ['Expect: 100-continue', head('PUT /x HTTP/1.1', 'Host: a.com', 'Content-Length: 1', 'Expect: 100-Continue'), (r) => assert.equal(r.expectContinue, true)],
    ['WebSocket upgrade', head('GET /ws HTTP/1.1', 'Host: a.com', 'Connection: keep-alive, Upgrade', 'Upgrade: websocket'), (r) => {
      assert.equal(r.websocket, true);
      assert.equal(r.h2c, false);
      assert.equal(r.upgrade, 'websocket');
      assert.deepEqual(r.connectionTokens, ['keep-alive', 'upgrade']);
    }],
    ['h2c upgrade', head('GET / HTTP/1.1', 'Host: a.com', 'Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA'), (r) => assert.equal(r.h2c, true)],
    ['HTTP2-Settings alone flags h2c', head('GET / HTTP/1.1', 'Host: a.com', 'HTTP2-Settings: AAMAAABk'), (r) => assert.equal(r.h2c, true)],
    ['Host in hex IP form is canonicalised', head('GET / HTTP/1.1', 'Host: 0x7f.1:8080'), (r) => {
      assert.equal(r.host?.host, '127.0.0.1');
      assert.equal(r.host?.port, 8080);
    }],
    ['obs-text in a value', bytes('GET / HTTP/1.1\r\nHost: a.com\r\nX-Name: caf\xe9\r\n\r\n'), (r) => assert.equal(r.headers[1]![1], 'caf\xe9')],
    ['body bytes after the head are not part of it', bytes('POST / HTTP/1.1\r\nHost: a.com\r\nContent-Length: 3\r\n\r\nabc'), (r) => assert.equal(r.headerBytes, 'POST / HTTP/1.1\r\nHost: a.com\r\nContent-Length: 3\r\n\r\n'.length)],
  ];
  for (const [name, b, check] of cases) it(name, () => check(parsed(parseRequestHead(b))));

  it('reports an HTTP/2 prior-knowledge preface', () => {
    assert.equal(parseRequestHead(bytes('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')).kind, 'h2-preface');
    assert.equal(parseRequestHead(bytes('PRI * HTTP/2.0\r\n')).kind, 'h2-preface');
    assert.equal(parseRequestHead(bytes('PRI * HTT')).kind, 'need-more');
  });
  it('needs more for a partial head', () => {
    for (const s of ['', 'GET / HTTP/1.1', 'GET / HTTP/1.1\r\nHost: a.com\r\n', 'GET / HTTP/1.1\r\nHost: a.com\r\n\r', '\r']) {
      assert.equal(parseRequestHead(bytes(s)).kind, 'need-more', JSON.stringify(s));
    }
  });
});

describe('parseRequestHead: refused (smuggling and confusion)', () => {
  const cases: Array<[name: string, b: Uint8Array, status: number, reason: RegExp]> = [
    // CL.TE and TE.CL
    ['CL.TE', head('POST / HTTP/1.1', 'Host: a.com', 'Content-Length: 6', 'Transfer-Encoding: chunked'), 400, /both/],
    ['TE.CL', head('POST / HTTP/1.1', 'Host: a.com', 'Transfer-Encoding: chunked', 'Content-Length: 6'), 400, /both/],
    ['CL.TE with an odd TE', head('POST / HTTP/1.1', 'Host: a.com', 'Content-Length: 6', 'Transfer-Encoding: xchunked'), 400, /both/],
    // Content-Length
    ['duplicate CL, equal', head('POST / HTTP/1.1', 'Host: a.com', 'Content-Length: 5', 'Content-Length: 5'), 400, /more than one Content-Length/],
    ['duplicate CL, different', head('POST / HTTP/1.1', 'Host: a.com', 'Content-Length: 5', 'content-length: 6'), 400, /more than one Content-Length/],
    ['CL list', head('POST / HTTP/1.1', 'Host: a.com', 'Content-Length: 5, 5'), 400, /invalid Content-Length/],
    ['CL sign', head('POST / HTTP/1.1', 'Host: a.com', 'Content-Length: +5'), 400, /invalid Content-Length/],
    ['CL negative', head('POST / HTTP/1.1', 'Host: a.com', 'Content-Length: -1'), 400, /invalid Content-Length/],
    ['CL hex', head('POST / HTTP/1.1', 'Host: a.com', 'Content-Length: 0x5'), 400, /invalid Content-Length/],
    ['CL empty', head('POST / HTTP/1.1', 'Host: a.com', 'Content-Length:'), 400, /invalid Content-Length/],
    ['CL huge', head('POST / HTTP/1.1', 'Host: a.com', 'Content-Length: 99999999999999999999'), 400, /invalid Content-Length/],
    ['Content_Length lookalike', head('POST / HTTP/1.1', 'Host: a.com', 'Content_Length: 5'), 400, /imitates/],
    ['Transfer_Encoding lookalike', head('POST / HTTP/1.1', 'Host: a.com', 'Content-Length: 5', 'Transfer_Encoding: chunked'), 400, /imitates/],
    // Transfer-Encoding
    ['TE chunked, identity', head('POST / HTTP/1.1', 'Host: a.com', 'Transfer-Encoding: chunked, identity'), 400, /not the final/],
    ['TE chunked, gzip', head('POST / HTTP/1.1', 'Host: a.com', 'Transfer-Encoding: chunked, gzip'), 400, /not the final/],
    ['TE gzip, chunked', head('POST / HTTP/1.1', 'Host: a.com', 'Transfer-Encoding: gzip, chunked'), 501, /only the "chunked"/],
    ['TE chunked, chunked', head('POST / HTTP/1.1', 'Host: a.com', 'Transfer-Encoding: chunked, chunked'), 400, /not the final|twice/],
    ['TE xchunked', head('POST / HTTP/1.1', 'Host: a.com', 'Transfer-Encoding: xchunked'), 501, /only the "chunked"/],
    ['TE identity', head('POST / HTTP/1.1', 'Host: a.com', 'Transfer-Encoding: identity'), 501, /only the "chunked"/],
    ['TE trailing space', head('POST / HTTP/1.1', 'Host: a.com', 'Transfer-Encoding: chunked '), 400, /odd whitespace/],
    ['TE leading tab', head('POST / HTTP/1.1', 'Host: a.com', 'Transfer-Encoding:\tchunked'), 400, /odd whitespace/],
    ['TE vertical tab', head('POST / HTTP/1.1', 'Host: a.com', 'Transfer-Encoding: chunked\x0b'), 400, /control/],
    ['TE quoted', head('POST / HTTP/1.1', 'Host: a.com', 'Transfer-Encoding: "chunked"'), 400, /invalid transfer coding/],
    ['duplicate TE', head('POST / HTTP/1.1', 'Host: a.com', 'Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'), 400, /more than one Transfer-Encoding/],
    ['TE with space before colon', head('POST / HTTP/1.1', 'Host: a.com', 'Transfer-Encoding : chunked'), 400, /whitespace before ":"/],
    ['TE on HTTP/1.0', head('POST / HTTP/1.0', 'Transfer-Encoding: chunked'), 400, /HTTP\/1\.0/],
    ['TE hidden by obs-fold', head('POST / HTTP/1.1', 'Host: a.com', 'X: y', ' Transfer-Encoding: chunked'), 400, /obs-fold/],
    // Host
    ['missing Host', head('GET / HTTP/1.1'), 400, /no Host/],
    ['duplicate Host', head('GET / HTTP/1.1', 'Host: a.com', 'Host: a.com'), 400, /more than one Host/],
    ['duplicate Host, different', head('GET / HTTP/1.1', 'Host: allowed.com', 'host: evil.com'), 400, /more than one Host/],
    ['absolute-URI with another Host', head('GET http://allowed.com/ HTTP/1.1', 'Host: evil.com'), 400, /another host/],
    ['absolute-URI with another port', head('GET http://a.com/ HTTP/1.1', 'Host: a.com:8080'), 400, /another host/],
    ['CONNECT with another Host', head('CONNECT allowed.com:443 HTTP/1.1', 'Host: evil.com:443'), 400, /another host/],
    ['Host with NUL', head('GET / HTTP/1.1', 'Host: evil.example\x00.google.com'), 400, /NUL/],
    ['Host with userinfo', head('GET / HTTP/1.1', 'Host: user@a.com'), 400, /Host: .*user information/],
    ['Host with a path', head('GET / HTTP/1.1', 'Host: a.com/x'), 400, /Host/],
    ['Host empty', head('GET / HTTP/1.1', 'Host:'), 400, /Host/],
    ['Host with a space inside', head('GET / HTTP/1.1', 'Host: a.com evil.com'), 400, /space/],
    ['Host non-ASCII', bytes('GET / HTTP/1.1\r\nHost: b\xfccher.example\r\n\r\n'), 400, /non-ASCII/],
    ['Connection strips Host', head('GET / HTTP/1.1', 'Host: a.com', 'Connection: close, Host'), 400, /Connection names/],
    ['Connection strips Content-Length', head('POST / HTTP/1.1', 'Host: a.com', 'Content-Length: 1', 'Connection: content-length'), 400, /Connection names/],
    // line syntax
    ['bare LF', bytes('GET / HTTP/1.1\nHost: a.com\n\n'), 400, /bare LF/],
    ['bare LF in one header', bytes('GET / HTTP/1.1\r\nHost: a.com\nX: 1\r\n\r\n'), 400, /bare LF/],
    ['bare CR', bytes('GET / HTTP/1.1\r\nHost: a.com\rX: 1\r\n\r\n'), 400, /bare CR/],
    ['NUL in a value', head('GET / HTTP/1.1', 'Host: a.com', 'X: a\x00b'), 400, /NUL/],
    ['control in a value', head('GET / HTTP/1.1', 'Host: a.com', 'X: a\x01b'), 400, /control/],
    ['DEL in a value', head('GET / HTTP/1.1', 'Host: a.com', 'X: a\x7fb'), 400, /control/],
    ['obs-fold', head('GET / HTTP/1.1', 'Host: a.com', 'X: a', '\tb'), 400, /obs-fold/],
    ['space before colon', head('GET / HTTP/1.1', 'Host : a.com'), 400, /whitespace before ":"/],
    ['bad header name', head('GET / HTTP/1.1', 'Host: a.com', 'X(y): 1'), 400, /invalid header name/],
    ['no colon', head('GET / HTTP/1.1', 'Host: a.com', 'garbage'), 400, /without a name/],
    ['empty name', head('GET / HTTP/1.1', 'Host: a.com', ': x'), 400, /without a name/],
    // request line
    ['HTTP/0.9', bytes('GET /\r\n\r\n'), 400, /HTTP\/0\.9/],
    ['double space', head('GET  / HTTP/1.1', 'Host: a.com'), 400, /malformed request line/],
    ['tab separator', head('GET\t/ HTTP/1.1', 'Host: a.com'), 400, /malformed request line|HTTP\/0\.9|invalid method/],
    ['trailing space', head('GET / HTTP/1.1 ', 'Host: a.com'), 400, /malformed request line/],
    ['bad method', head('G@T / HTTP/1.1', 'Host: a.com'), 400, /invalid method/],
    ['lower-case version', head('GET / http/1.1', 'Host: a.com'), 400, /malformed HTTP version/],
    ['HTTP/1.2', head('GET / HTTP/1.2', 'Host: a.com'), 505, /not supported/],
    ['HTTP/2.0 without PRI', head('GET / HTTP/2.0', 'Host: a.com'), 505, /not supported/],
    ['HTTP/01.1', head('GET / HTTP/01.1', 'Host: a.com'), 400, /malformed HTTP version/],
    ['fragment in target', head('GET /#x HTTP/1.1', 'Host: a.com'), 400, /fragment/],
    ['non-ASCII target', bytes('GET /\xe9 HTTP/1.1\r\nHost: a.com\r\n\r\n'), 400, /non-ASCII/],
    ['NUL in target', bytes('GET /\x00 HTTP/1.1\r\nHost: a.com\r\n\r\n'), 400, /NUL/],
    ['relative target', head('GET a.com/x HTTP/1.1', 'Host: a.com'), 400, /unrecognised request target/],
    ['* for GET', head('GET * HTTP/1.1', 'Host: a.com'), 400, /OPTIONS only/],
    ['CONNECT without port', head('CONNECT a.com HTTP/1.1', 'Host: a.com'), 400, /needs a port/],
    ['CONNECT with NUL', bytes('CONNECT evil.example\x00.google.com:443 HTTP/1.1\r\nHost: google.com\r\n\r\n'), 400, /NUL/],
    ['CONNECT with a body', head('CONNECT a.com:443 HTTP/1.1', 'Host: a.com:443', 'Content-Length: 5'), 400, /CONNECT request with a body/],
    ['CONNECT origin-form', head('CONNECT /x HTTP/1.1', 'Host: a.com'), 400, /CONNECT target/],
    ['absolute ftp', head('GET ftp://a.com/ HTTP/1.1', 'Host: a.com'), 400, /not supported/],
    ['absolute with userinfo', head('GET http://u:p@a.com/ HTTP/1.1', 'Host: a.com'), 400, /user information/],
    ['absolute with a hex IP vs Host name', head('GET http://0x7f.1/ HTTP/1.1', 'Host: localhost'), 400, /another host/],
    // Expect, Upgrade
    ['unknown expectation', head('GET / HTTP/1.1', 'Host: a.com', 'Expect: 200-ok'), 417, /expectation/],
    ['duplicate Upgrade', head('GET / HTTP/1.1', 'Host: a.com', 'Upgrade: websocket', 'Upgrade: h2c'), 400, /more than one Upgrade/],
  ];
  for (const [name, b, status, reason] of cases) {
    it(name, () => {
      const r = parseRequestHead(b);
      assert.equal(r.kind, 'invalid', `expected refusal, got ${r.kind}`);
      if (r.kind === 'invalid') {
        assert.equal(r.status, status, r.reason);
        assert.match(r.reason, reason);
      }
    });
  }

  it('answers 431 for heads over the limit', () => {
    const big = head('GET / HTTP/1.1', 'Host: a.com', `X: ${'a'.repeat(70000)}`);
    assert.deepEqual(parseRequestHead(big), { kind: 'invalid', reason: 'the head is too large', status: 431 });
    const endless = bytes(`GET / HTTP/1.1\r\nX: ${'a'.repeat(70000)}`);
    assert.equal((parseRequestHead(endless) as { status: number }).status, 431);
    const small = head('GET / HTTP/1.1', 'Host: a.com', `X: ${'a'.repeat(200)}`);
    assert.equal((parseRequestHead(small, { maxHeadBytes: 100 }) as { status: number }).status, 431);
    const many = head('GET / HTTP/1.1', 'Host: a.com', ...Array.from({ length: 101 }, (_, i) => `X-${i}: 1`));
    assert.equal((parseRequestHead(many) as { status: number }).status, 431);
  });
});

describe('HeadReader', () => {
  it('finds the end of a head fed one byte at a time, with the body start as rest', () => {
    const all = bytes('\r\nPOST / HTTP/1.1\r\nHost: a.com\r\nContent-Length: 3\r\n\r\nabc');
    const reader = new HeadReader();
    let r = reader.push(all.subarray(0, 1));
    for (let i = 1; i < all.length - 3; i++) {
      assert.equal(r.kind, 'need-more', `at ${i}`);
      r = reader.push(all.subarray(i, i + 1));
    }
    assert.equal(r.kind, 'complete');
    assert.equal(reader.push(all.subarray(all.length - 3)), r, 'a spent reader repeats its answer');
    if (r.kind === 'complete') {
      assert.equal(text(r.head).endsWith('\r\n\r\n'), true);
      assert.equal(parsed(parseRequestHead(r.head)).framing.kind, 'length');
    }
  });
  it('keeps pipelined bytes as rest', () => {
    const r = new HeadReader().push(bytes('GET / HTTP/1.1\r\nHost: a.com\r\n\r\nGET /2 HTTP/1.1\r\n'));
    assert.equal(r.kind === 'complete' ? text(r.rest) : '', 'GET /2 HTTP/1.1\r\n');
  });
  const bad: Array<[string, string, number]> = [
    ['bare LF', 'GET / HTTP/1.1\nHost: a\n\n', 400],
    ['bare CR', 'GET / HTTP/1.1\rHost: a\r\n\r\n', 400],
    ['NUL', 'GET /\x00 HTTP/1.1\r\n\r\n', 400],
  ];
  for (const [name, s, status] of bad) {
    it(`refuses ${name} early`, () => {
      const r = new HeadReader().push(bytes(s));
      assert.equal(r.kind === 'invalid' ? r.status : 0, status);
    });
  }
  it('refuses endless heads at the limit', () => {
    const reader = new HeadReader(1024);
    let r = reader.push(bytes('GET / HTTP/1.1\r\n'));
    for (let i = 0; i < 200 && r.kind === 'need-more'; i++) r = reader.push(bytes('X-Filler: aaaaaaaaaa\r\n'));
    assert.equal(r.kind === 'invalid' ? r.status : 0, 431);
  });
});

describe('parseChunkedStream', () => {
  function run(chunks: string[]): { data: string; events: ChunkEvent[] } {
    const p = parseChunkedStream();
    const events = chunks.flatMap((c) => p.push(bytes(c)));
    const data = events.map((e) => (e.kind === 'data' ? text(e.bytes) : '')).join('');
    return { data, events };
  }
  const kinds = (events: ChunkEvent[]) => events.map((e) => e.kind);

  it('reads a body and reports where it ends', () => {
    const { data, events } = run(['5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT']);
    assert.equal(data, 'hello world');
    assert.deepEqual(kinds(events), ['chunk', 'data', 'chunk', 'data', 'trailers', 'end']);
    const end = events.at(-1)!;
    assert.equal(end.kind === 'end' ? end.consumed : -1, '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n'.length);
  });
  it('works byte by byte', () => {
    const body = '3;ext=1\r\nabc\r\na\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n';
    const { data, events } = run(body.split(''));
    assert.equal(data, 'abc0123456789');
    const t = events.find((e) => e.kind === 'trailers');
    assert.deepEqual(t?.kind === 'trailers' ? t.headers : null, [['X-Sum', '1']]);
    assert.equal(events.at(-1)!.kind, 'end');
  });
  it('ends at the last chunk even when a smuggled request follows (TE.CL payload)', () => {
    const { events } = run(['0\r\n\r\nGET /admin HTTP/1.1\r\nHost: internal\r\n\r\n']);
    const end = events.at(-1)!;
    assert.equal(end.kind === 'end' ? end.consumed : -1, 5);
  });
  it('hands out views, not copies', () => {
    const input = bytes('4\r\nwxyz\r\n');
    const ev = parseChunkedStream().push(input).find((e) => e.kind === 'data');
    assert.equal(ev?.kind === 'data' ? ev.bytes.buffer : null, input.buffer);
  });
  it('accepts valid extensions', () => {
    for (const ext of [';a', ';a=b', ' ;a=b', ';a = b', ';a="x y"', ';a="q\\"q"', ';a;b=c']) {
      const { events } = run([`1${ext}\r\nx\r\n0\r\n\r\n`]);
      assert.equal(events.at(-1)!.kind, 'end', ext);
    }
  });
  const bad: Array<[string, string, RegExp]> = [
    ['negative size', '-5\r\nhello\r\n', /invalid chunk size/],
    ['0x prefix', '0x5\r\nhello\r\n', /extension/],
    ['not hex', 'g\r\n', /invalid chunk size/],
    ['empty size', '\r\n', /invalid chunk size/],
    ['space after size', '5 \r\nhello\r\n', /extension/],
    ['too many digits', '00000000000000005\r\nhello\r\n', /too many digits/],
    ['too large', 'fffffffffffffff\r\n', /too large/],
    ['bare LF after size', '5\nhello\r\n', /bare LF/],
    ['bare CR after size', '5\rhello\r\n', /bare CR/],
    ['missing CRLF after data', '5\r\nhelloX\r\n', /not followed by CRLF/],
    ['LF only after data', '5\r\nhello\n0\r\n\r\n', /not followed by CRLF/],
    ['extension with a bad char', '5;a@b\r\nhello\r\n', /extension/],
    ['extension with a control char', '5;a=\x01\r\nhello\r\n', /control/],
    ['extension with an open quote', '5;a="x\r\nhello\r\n', /extension/],
    ['forbidden trailer', '0\r\nContent-Length: 5\r\n\r\n', /forbidden trailer/],
    ['trailer obs-fold', '0\r\nX: a\r\n b\r\n\r\n', /obs-fold/],
    ['trailer bad name', '0\r\nX Y: a\r\n\r\n', /trailer/],
    ['NUL in size line', '5\x00\r\nhello\r\n', /control/],
  ];
  for (const [name, body, reason] of bad) {
    it(`refuses ${name}`, () => {
      const { events } = run([body]);
      const err = events.at(-1)!;
      assert.equal(err.kind, 'error', JSON.stringify(events.map((e) => e.kind)));
      assert.match(err.kind === 'error' ? err.reason : '', reason);
    });
  }
  it('limits size lines and trailers', () => {
    const p = parseChunkedStream({ maxLineBytes: 16 });
    assert.equal(p.push(bytes(`5;${'a'.repeat(20)}`)).at(-1)?.kind, 'error');
    const q = parseChunkedStream({ maxTrailerBytes: 10 });
    assert.equal(q.push(bytes(`0\r\nX-Long: ${'a'.repeat(20)}`)).at(-1)?.kind, 'error');
  });
  it('reads nothing after an error or the end', () => {
    const p = parseChunkedStream();
    p.push(bytes('zz\r\n'));
    assert.equal(p.state, 'error');
    assert.deepEqual(p.push(bytes('5\r\nhello\r\n')), []);
    const q = parseChunkedStream();
    q.push(bytes('0\r\n\r\n'));
    assert.equal(q.state, 'done');
    assert.deepEqual(q.push(bytes('5\r\n')), []);
  });
});

describe('parseResponseHead', () => {
  const res = (...lines: string[]) => head(...lines);
  const cases: Array<[name: string, b: Uint8Array, method: string, framing: string | null, extra?: Record<string, unknown>]> = [
    ['length', res('HTTP/1.1 200 OK', 'Content-Length: 5'), 'GET', 'length'],
    ['chunked', res('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked'), 'GET', 'chunked'],
    ['gzip, chunked', res('HTTP/1.1 200 OK', 'Transfer-Encoding: gzip, chunked'), 'GET', 'chunked'],
    ['gzip only: until close', res('HTTP/1.1 200 OK', 'Transfer-Encoding: gzip'), 'GET', 'close'],
    ['no framing: until close', res('HTTP/1.0 200 OK'), 'GET', 'close'],
    ['204', res('HTTP/1.1 204 No Content', 'Content-Length: 10'), 'GET', 'none'],
    ['304', res('HTTP/1.1 304 Not Modified', 'Content-Length: 10'), 'GET', 'none'],
    ['HEAD', res('HTTP/1.1 200 OK', 'Content-Length: 10'), 'HEAD', 'none'],
    ['100 Continue', res('HTTP/1.1 100 Continue'), 'PUT', 'none', { informational: true, tunnel: false }],
    ['103 Early Hints', res('HTTP/1.1 103 Early Hints', 'Link: </a>; rel=preload'), 'GET', 'none', { informational: true }],
    ['101 Switching Protocols', res('HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket'), 'GET', 'none', { tunnel: true }],
    ['CONNECT 200', res('HTTP/1.1 200 Connection established'), 'CONNECT', 'none', { tunnel: true }],
    ['CONNECT 407 has a body', res('HTTP/1.1 407 Proxy Auth', 'Content-Length: 3'), 'CONNECT', 'length', { tunnel: false }],
    ['no reason phrase', res('HTTP/1.1 200'), 'GET', 'close', { reason: '' }],
    ['empty reason phrase', res('HTTP/1.1 200 '), 'GET', 'close', { reason: '' }],
    ['CL.TE', res('HTTP/1.1 200 OK', 'Content-Length: 5', 'Transfer-Encoding: chunked'), 'GET', null],
    ['duplicate CL', res('HTTP/1.1 200 OK', 'Content-Length: 5', 'Content-Length: 5'), 'GET', null],
    ['chunked not final', res('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked, gzip'), 'GET', null],
    ['duplicate TE', res('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'), 'GET', null],
    ['bad status line', res('HTTP/1.1 20 OK'), 'GET', null],
    ['HTTP/2 status line', res('HTTP/2 200 OK'), 'GET', null],
    ['bare LF', bytes('HTTP/1.1 200 OK\nContent-Length: 0\n\n'), 'GET', null],
    ['obs-fold', res('HTTP/1.1 200 OK', 'X: a', ' b'), 'GET', null],
    ['NUL', res('HTTP/1.1 200 OK', 'X: a\x00'), 'GET', null],
  ];
  for (const [name, b, method, framing, extra] of cases) {
    it(name, () => {
      const r = parseResponseHead(b, method);
      if (framing === null) {
        assert.equal(r.kind, 'invalid');
        return;
      }
      assert.equal(r.kind, 'parsed', r.kind === 'invalid' ? r.reason : r.kind);
      if (r.kind !== 'parsed') return;
      assert.equal(r.framing.kind, framing);
      for (const [k, v] of Object.entries(extra ?? {})) assert.equal((r as unknown as Record<string, unknown>)[k], v, k);
    });
  }
  it('needs more for a partial head', () => assert.equal(parseResponseHead(bytes('HTTP/1.1 200 OK\r\n'), 'GET').kind, 'need-more'));
});
