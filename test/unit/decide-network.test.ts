import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decideNetwork,
  explainNetwork,
  normalizeRequestPath,
  pathMatches,
  pathPatternProblem,
  type NetworkFact,
} from '../../src/policy/decide-network.ts';
import type { NetworkRule } from '../../src/policy/types.ts';

type RuleSpec = Partial<Omit<NetworkRule, 'index'>> & Pick<NetworkRule, 'decision' | 'host'>;

function rules(...specs: RuleSpec[]): NetworkRule[] {
  return specs.map((s, index) => ({
    ports: [80, 443],
    methods: null,
    paths: null,
    maxBodyBytes: null,
    protocol: 'http',
    ...s,
    index,
  }));
}

const req = (host: string, method: string, path: string, extra: Partial<NetworkFact> = {}): NetworkFact => ({
  host,
  port: 443,
  protocol: 'http',
  method,
  path,
  ...extra,
});
const conn = (host: string, port = 443, protocol: 'http' | 'tcp' = 'http'): NetworkFact => ({ host, port, protocol });

describe('normalizeRequestPath', () => {
  const ok: Array<[string, string]> = [
    ['/', '/'],
    ['/v1/files', '/v1/files'],
    ['/v1/files/', '/v1/files/'],
    ['/v1/files?x=1', '/v1/files'],
    ['/v1/files?x=/../..', '/v1/files'],
    ['//v1///files', '/v1/files'],
    ['/v1/./files', '/v1/files'],
    ['/v1/x/../files', '/v1/files'],
    ['/v1/%66iles', '/v1/files'],
    ['/v1/%2e%2e/v2', '/v2'],
    ['/v1/%2E/files', '/v1/files'],
    ['/a/%7e', '/a/~'],
    ['/a/%3a', '/a/%3A'],
    ['/a/%20b', '/a/%20b'],
    ['/a/b/..', '/a'],
    ['/a/b/../', '/a/'],
    ['/..;/x', '/..;/x'],
  ];
  for (const [raw, want] of ok) {
    it(`${raw} -> ${want}`, () => {
      const r = normalizeRequestPath(raw);
      assert.equal(r.ok ? r.path : r.reason, want);
    });
  }
  const bad: Array<[string, RegExp]> = [
    ['/v1%2Ffiles', /encoded "\/"/],
    ['/v1%2ffiles', /encoded "\/"/],
    ['/v1/%5cfiles', /encoded "\\"/],
    ['/v1/%00', /NUL/],
    ['/v1/%252Ffiles', /double-encoded/],
    ['/v1/%252e%252e/x', /double-encoded/],
    ['/v1/\x00', /control/],
    ['/v1/ files', /control, space/],
    ['/v1/é', /non-ASCII/],
    ['/v1\\files', /"\\"/],
    ['/v1#frag', /"#"/],
    ['/v1/%zz', /malformed/],
    ['/v1/%4', /malformed/],
    ['/..', /above the root/],
    ['/a/../../b', /above the root/],
    ['/a//../b', /mixes/],
    ['v1/files', /start with/],
    ['*', /start with/],
  ];
  for (const [raw, reason] of bad) {
    it(`refuses ${JSON.stringify(raw)}`, () => {
      const r = normalizeRequestPath(raw);
      assert.equal(r.ok, false);
      assert.match(!r.ok ? r.reason : '', reason);
    });
  }
});

describe('pathMatches', () => {
  const seg = (p: string) => {
    const r = normalizeRequestPath(p);
    assert.ok(r.ok, p);
    return r.segments;
  };
  const cases: Array<[pattern: string, path: string, generous: boolean, want: boolean]> = [
    ['/v1/files', '/v1/files', false, true],
    ['/v1/files', '/v1/files/', false, true],
    ['/v1/files', '/v1/files/abc', false, true],
    ['/v1/files', '/v1/filesx', false, false],
    ['/v1/files/', '/v1/files', false, true],
    ['/v1/files/', '/v1/files/a/b', false, true],
    ['/v1/files/', '/v1/file', false, false],
    ['/v1/files', '/V1/Files', false, false],
    ['/v1/files', '/V1/Files', true, true],
    ['/v1/files', '/v1/files;x=1', false, false],
    ['/v1/files', '/v1/files;x=1', true, true],
    ['/v1/files', '/v1/fil%65s', false, true],
    ['/v1/files', '/v1/x/../files', false, true],
    ['/', '/anything/at/all', false, true],
    ['/repos/*/pulls', '/repos/cordon/pulls', false, true],
    ['/repos/*/pulls', '/repos/cordon/pulls/', false, true],
    ['/repos/*/pulls', '/repos/a/b/pulls', false, false],
    ['/repos/*/pulls', '/repos/cordon/pulls/1', false, false],
    ['/repos/*/', '/repos/cordon/pulls/1', false, true],
    ['/v1/*.json', '/v1/a.json', false, true],
    ['/v1/*.json', '/v1/a.jsonx', false, false],
    ['/v1/*.json', '/v1/dir/a.json', false, false],
    ['/a/**/b', '/a/b', false, true],
    ['/a/**/b', '/a/x/y/z/b', false, true],
    ['/a/**/b', '/a/x/y/z/c', false, false],
    ['/a/**', '/a/x/y', false, true],
    ['/a/*b*c', '/a/xbyc', false, true],
    ['/a/*b*c', '/a/xcyb', false, false],
    ['/**/secret', '/x/y/secret', false, true],
  ];
  for (const [pattern, path, generous, want] of cases) {
    it(`${pattern} ${generous ? '~' : '='} ${path} -> ${want}`, () => assert.equal(pathMatches(pattern, seg(path), generous), want));
  }
  it('does not blow up on "**" against long paths', () => {
    const long = `/${'a/'.repeat(5000)}z`;
    const t = Date.now();
    assert.equal(pathMatches('/**/a/**/a/**/b', seg(long), false), false);
    assert.ok(Date.now() - t < 2000);
  });
  it('an unusable pattern matches everything for deny rules and nothing for allow rules', () => {
    assert.equal(pathMatches('/a%2Fb', seg('/x'), true), true);
    assert.equal(pathMatches('/a%2Fb', seg('/x'), false), false);
    assert.match(pathPatternProblem('/a%2Fb') ?? '', /encoded/);
    assert.match(pathPatternProblem('/a?b') ?? '', /query/);
    assert.equal(pathPatternProblem('/repos/*/pulls'), null);
  });
});

describe('decideNetwork: precedence', () => {
  const R = rules(
    { decision: 'allow', host: 'api.example.com' }, // 0
    { decision: 'deny', host: 'api.example.com', methods: ['POST'], paths: ['/v1/files'] }, // 1
    { decision: 'allow', host: '*.github.com', methods: ['GET'] }, // 2
    { decision: 'ask', host: 'uploads.github.com' }, // 3
    { decision: 'allow', host: 'uploads.github.com', ports: [443] }, // 4
    { decision: 'allow', host: 'git.example.org', protocol: 'tcp', ports: [22] }, // 5
    { decision: 'deny', host: 'evil.example.org', ports: [443] }, // 6
    { decision: 'allow', host: 'upload.example.net', maxBodyBytes: 1000 }, // 7
    { decision: 'allow', host: '*.example.net', methods: ['GET', 'POST'] }, // 8
    { decision: 'allow', host: '93.184.215.14', ports: [8443] }, // 9
  );
  const cases: Array<[name: string, fact: NetworkFact, decision: string, rule: number | null]> = [
    ['default deny', req('other.com', 'GET', '/'), 'deny', null],
    ['allow', req('api.example.com', 'GET', '/v1/models'), 'allow', 0],
    ['deny beats allow', req('api.example.com', 'POST', '/v1/files'), 'deny', 1],
    ['deny matches sub-paths', req('api.example.com', 'POST', '/v1/files/upload'), 'deny', 1],
    ['deny via dot segments', req('api.example.com', 'POST', '/v1/models/../files'), 'deny', 1],
    ['deny via //', req('api.example.com', 'POST', '//v1//files'), 'deny', 1],
    ['deny via encoded letters', req('api.example.com', 'POST', '/v1/%66iles'), 'deny', 1],
    ['deny via case', req('api.example.com', 'POST', '/V1/FILES'), 'deny', 1],
    ['deny via ;params', req('api.example.com', 'POST', '/v1/files;a=b'), 'deny', 1],
    ['deny via lower-case method', req('api.example.com', 'post', '/v1/files'), 'deny', 1],
    ['deny via unparseable path', req('api.example.com', 'POST', '/v1%2Ffiles'), 'deny', 1],
    ['query is not the path', req('api.example.com', 'POST', '/v1/models?p=/v1/files'), 'allow', 0],
    ['other method is allowed', req('api.example.com', 'GET', '/v1/files'), 'allow', 0],
    ['wildcard allow', req('api.github.com', 'GET', '/repos'), 'allow', 2],
    ['wildcard allow: method must match', req('api.github.com', 'DELETE', '/repos'), 'deny', null],
    ['allow methods are exact', req('api.github.com', 'get', '/repos'), 'deny', null],
    ['wildcard does not match the base', req('github.com', 'GET', '/'), 'deny', null],
    ['ask beats allow', req('uploads.github.com', 'GET', '/'), 'ask', 3],
    ['port outside the rule', req('api.example.com', 'GET', '/', { port: 8080 }), 'deny', null],
    ['tcp rule covers raw tcp', conn('git.example.org', 22, 'tcp'), 'allow', 5],
    ['tcp rule covers http too', req('git.example.org', 'GET', '/', { port: 22 }), 'allow', 5],
    ['http allow does not cover raw tcp', conn('api.github.com', 443, 'tcp'), 'deny', null],
    ['a conditional http deny applies in full to raw tcp', conn('api.example.com', 443, 'tcp'), 'deny', 1],
    ['http deny covers raw tcp', conn('evil.example.org', 443, 'tcp'), 'deny', 6],
    ['body within limit', req('upload.example.net', 'POST', '/', { bodyBytes: 1000 }), 'allow', 7],
    ['body over limit is denied', req('upload.example.net', 'POST', '/', { bodyBytes: 1001 }), 'deny', 7],
    ['ip literal rule', req('93.184.215.14', 'GET', '/', { port: 8443 }), 'allow', 9],
    ['ip literal in another spelling', req('1572394766', 'GET', '/', { port: 8443 }), 'allow', 9],
    ['name vs ip rule', req('example.com', 'GET', '/', { port: 8443 }), 'deny', null],
    ['NUL in host', req('evil.example\x00.api.example.com', 'GET', '/'), 'deny', null],
    ['trailing-dot host', req('api.example.com.', 'GET', '/'), 'allow', 0],
    ['invalid fact: port', req('api.example.com', 'GET', '/', { port: 0 }), 'deny', null],
    ['invalid fact: method', req('api.example.com', 'G ET', '/'), 'deny', null],
    ['invalid fact: body', req('api.example.com', 'GET', '/', { bodyBytes: -1 }), 'deny', null],
  ];
  for (const [name, fact, decision, rule] of cases) {
    it(name, () => {
      const v = decideNetwork(R, fact);
      assert.equal(v.decision, decision, v.reason);
      assert.equal(v.rule?.index ?? null, rule);
    });
  }
  it('rule order does not matter', () => {
    const reversed = [...R].reverse();
    for (const [, fact] of cases) assert.equal(decideNetwork(reversed, fact).decision, decideNetwork(R, fact).decision);
  });
  it('with no rules everything is denied', () => {
    assert.equal(decideNetwork([], req('api.example.com', 'GET', '/')).decision, 'deny');
  });
});

describe('decideNetwork: need-content and body limits', () => {
  const cases: Array<[name: string, specs: RuleSpec[], fact: NetworkFact, decision: string, extra?: (v: any) => void]> = [
    ['unconditional allow splices', [{ decision: 'allow', host: 'a.com' }], conn('a.com'), 'allow'],
    [
      'a method-bound allow needs content',
      [{ decision: 'allow', host: 'a.com', methods: ['GET'] }],
      conn('a.com'),
      'need-content',
      (v) => assert.deepEqual(v.needs, ['method']),
    ],
    [
      'a path-bound deny under an allow needs content',
      [
        { decision: 'allow', host: 'a.com' },
        { decision: 'deny', host: 'a.com', paths: ['/v1/files'] },
      ],
      conn('a.com'),
      'need-content',
      (v) => {
        assert.deepEqual(v.needs, ['path']);
        assert.deepEqual(v.matched.map((r: NetworkRule) => r.index), [0]);
        assert.deepEqual(v.pending.map((r: NetworkRule) => r.index), [1]);
      },
    ],
    [
      'a conditional deny without any allow is just deny',
      [{ decision: 'deny', host: 'a.com', paths: ['/x'] }],
      conn('a.com'),
      'deny',
    ],
    [
      'an unconditional deny decides at once',
      [
        { decision: 'allow', host: 'a.com', methods: ['GET'] },
        { decision: 'deny', host: 'a.com' },
      ],
      conn('a.com'),
      'deny',
    ],
    [
      'a conditional allow under an unconditional ask is ask',
      [
        { decision: 'ask', host: 'a.com' },
        { decision: 'allow', host: 'a.com', paths: ['/x'] },
      ],
      conn('a.com'),
      'ask',
    ],
    [
      'a body limit at connection level needs content',
      [{ decision: 'allow', host: 'a.com', maxBodyBytes: 10 }],
      conn('a.com'),
      'need-content',
      (v) => assert.deepEqual(v.needs, ['body']),
    ],
    [
      'a limited allow next to an unlimited one still needs content',
      [
        { decision: 'allow', host: 'a.com' },
        { decision: 'allow', host: 'a.com', methods: ['POST'], maxBodyBytes: 10 },
      ],
      conn('a.com'),
      'need-content',
    ],
    [
      'unknown body at request level: allowed with a limit to enforce',
      [
        { decision: 'allow', host: 'a.com', maxBodyBytes: 100 },
        { decision: 'allow', host: 'a.com', methods: ['POST'], maxBodyBytes: 10 },
      ],
      req('a.com', 'POST', '/'),
      'allow',
      (v) => assert.equal(v.bodyLimit, 10),
    ],
    [
      'the smallest limit of the matching allows decides',
      [
        { decision: 'allow', host: 'a.com', maxBodyBytes: 100 },
        { decision: 'allow', host: 'a.com', methods: ['POST'], maxBodyBytes: 10 },
      ],
      req('a.com', 'POST', '/', { bodyBytes: 50 }),
      'deny',
      (v) => assert.equal(v.rule.index, 1),
    ],
    [
      'a limit on a rule that does not match is ignored',
      [
        { decision: 'allow', host: 'a.com', maxBodyBytes: 100 },
        { decision: 'allow', host: 'a.com', methods: ['POST'], maxBodyBytes: 10 },
      ],
      req('a.com', 'PUT', '/', { bodyBytes: 50 }),
      'allow',
      (v) => assert.equal(v.bodyLimit, null),
    ],
    [
      'method known but path missing',
      [{ decision: 'allow', host: 'a.com', methods: ['GET'], paths: ['/ok/'] }],
      { host: 'a.com', port: 443, protocol: 'http', method: 'GET' },
      'need-content',
      (v) => assert.deepEqual(v.needs, ['path']),
    ],
    [
      'a wrong port is decided without content',
      [{ decision: 'allow', host: 'a.com', methods: ['GET'] }],
      conn('a.com', 8443),
      'deny',
    ],
    [
      'raw tcp never needs content',
      [
        { decision: 'allow', host: 'a.com', protocol: 'tcp', ports: [443] },
        { decision: 'deny', host: 'a.com', methods: ['POST'] },
      ],
      conn('a.com', 443, 'tcp'),
      'deny',
    ],
    [
      'an allow path rule does not match an unparseable path',
      [{ decision: 'allow', host: 'a.com', paths: ['/ok/'] }],
      req('a.com', 'GET', '/ok/..%2F..%2Fadmin'),
      'deny',
    ],
    [
      'an unparseable path does not matter when no rule looks at paths',
      [{ decision: 'allow', host: 'gitlab.com' }],
      req('gitlab.com', 'GET', '/api/v4/projects/group%2Fproject'),
      'allow',
    ],
  ];
  for (const [name, specs, fact, decision, extra] of cases) {
    it(name, () => {
      const v = decideNetwork(rules(...specs), fact);
      assert.equal(v.decision, decision, v.reason);
      extra?.(v);
    });
  }
});

describe('explainNetwork', () => {
  it('says for every rule why it matched or not', () => {
    const R = rules(
      { decision: 'allow', host: '*.example.com', methods: ['GET'] },
      { decision: 'deny', host: 'api.example.com', paths: ['/admin/'] },
      { decision: 'allow', host: 'other.com' },
    );
    const e = explainNetwork(R, req('api.example.com', 'GET', '/admin/x'));
    assert.equal(e.verdict.decision, 'deny');
    assert.equal(e.verdict.rule?.index, 1);
    assert.deepEqual(
      e.rules.map((r) => r.status),
      ['match', 'match', 'no-match'],
    );
    assert.ok(e.rules[0]!.because.some((b) => /host api\.example\.com matches \*\.example\.com/.test(b)));
    assert.ok(e.rules[1]!.because.some((b) => /path \/admin\/x matches/.test(b)));
    assert.ok(e.rules[2]!.because.some((b) => /does not match other\.com/.test(b)));
    assert.ok(e.precedence.length > 0);
  });
  it('marks pending rules at connection level', () => {
    const e = explainNetwork(rules({ decision: 'allow', host: 'a.com', paths: ['/x'] }), conn('a.com'));
    assert.equal(e.verdict.decision, 'need-content');
    assert.equal(e.rules[0]!.status, 'pending');
    assert.ok(e.rules[0]!.because.some((b) => /not known yet/.test(b)));
  });
  it('reports a body over the limit as an effective deny', () => {
    const e = explainNetwork(rules({ decision: 'allow', host: 'a.com', maxBodyBytes: 1 }), req('a.com', 'POST', '/', { bodyBytes: 2 }));
    assert.equal(e.rules[0]!.effective, 'deny');
    assert.match(e.verdict.reason, /maxBodyBytes/);
  });
});
