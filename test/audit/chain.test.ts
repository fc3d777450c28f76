import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GENESIS, canonicalJson, headMac, recordMac, recordMacInput } from '../../src/audit/chain.ts';

test('canonical JSON: sorted keys, no whitespace, JSON.stringify value rules', () => {
  const cases: [unknown, string][] = [
    [{ b: 1, a: [{ d: null, c: 'x' }] }, '{"a":[{"c":"x","d":null}],"b":1}'],
    [{ z: 1, '10': 2, '9': 3, é: 4, Z: 5 }, '{"10":2,"9":3,"Z":5,"z":1,"é":4}'], // code-unit order, not JS integer-key order
    [{ u: undefined, f: () => 1, keep: 0 }, '{"keep":0}'],
    [[undefined, () => 1, NaN, Infinity, -0], '[null,null,null,null,0]'],
    [{ when: new Date(Date.UTC(2026, 4, 25)) }, '{"when":"2026-05-25T00:00:00.000Z"}'],
    [{ s: 'line\nquote" \u2028 \ud800' }, '{"s":"line\\nquote\\" \u2028 \\ud800"}'],
    [JSON.parse('{"__proto__":{"x":1},"a":1}'), '{"__proto__":{"x":1},"a":1}'],
    [{ n: 1e21, m: 0.1 }, '{"m":0.1,"n":1e+21}'],
  ];
  for (const [value, want] of cases) assert.equal(canonicalJson(value), want);
});

test('canonical JSON is a fixed point of parse + re-encode', () => {
  const values = [{ '10': [1.5, 'a\u0000b'], '9': { y: false, x: [] }, '': 'empty key' }, { deep: { deeper: { deepest: ['x'] } } }];
  for (const v of values) {
    const once = canonicalJson(v);
    assert.equal(canonicalJson(JSON.parse(once)), once);
  }
});

test('canonical JSON refuses what JSON cannot represent faithfully', () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => canonicalJson(cyclic), TypeError);
  assert.throws(() => canonicalJson({ n: 1n }), TypeError);
  assert.throws(() => canonicalJson(undefined), TypeError);
  // A repeated (non-cyclic) reference is fine.
  const shared = { x: 1 };
  assert.equal(canonicalJson({ a: shared, b: shared }), '{"a":{"x":1},"b":{"x":1}}');
});

test('the MAC input is the canonical JSON of the tagged field array', () => {
  const data = { z: [true, null], a: 'é', n: 1 };
  const f = { seq: 7, ts: '2026-05-25T10:00:00.123Z', session: 's"1', type: 'proxy.flow', data: canonicalJson(data), prev: GENESIS };
  assert.equal(recordMacInput(f), canonicalJson(['cordon.audit.record/1', f.seq, f.ts, f.session, f.type, data, f.prev]));
});

test('record and head MACs match fixed vectors (checked independently with openssl)', () => {
  const key = Buffer.alloc(32, 7);
  const data = canonicalJson({ host: 'api.example.com', n: 1, nested: { z: [true, null], a: 'é' } });
  const fields = { seq: 42, ts: '2026-05-25T10:00:00.123Z', session: 's-1', type: 'proxy.flow', data, prev: GENESIS };
  assert.equal(recordMac(key, fields), '0fff4aacff9d602a50dcc42b497c3f7a7fe7ba3aba23fb955c24e84fc7e27069');
  assert.equal(headMac(key, 42, 'ab'.repeat(32)), 'a98ec75d61765545d35262a477ae432cb4ff20a3e7ae8cb71d77dbc6f99eb5e4');
  // Every field is covered.
  for (const [k, v] of Object.entries({ seq: 43, ts: '2026-05-25T10:00:00.124Z', session: 's-2', type: 'proxy.flaw', data: '{"n":2}', prev: 'f'.repeat(64) })) {
    assert.notEqual(recordMac(key, { ...fields, [k]: v }), recordMac(key, fields), `${k} is not covered by the MAC`);
  }
  assert.notEqual(recordMac(Buffer.alloc(32, 8), fields), recordMac(key, fields));
});
