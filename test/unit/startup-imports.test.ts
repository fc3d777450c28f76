// `cordon run` has a start-up budget (npm run bench measures it). The cheapest
// way to lose it is a static import that drags the proxy, the vault or the
// policy compiler into every run. This test walks the bundle's static import
// graph from the `run` fast path and fails if any of them is reachable;
// those must stay behind dynamic imports, loaded only when a policy uses them.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { before, it } from 'node:test';
import { assertFreshBuild, ROOT } from '../helpers/cordon.ts';

/** Text only the heavy modules contain. */
const HEAVY: Record<string, RegExp> = {
  'the X.509 library (proxy CA)': /@peculiar\/asn1|X509CertificateGenerator/,
  'reflect-metadata': /Reflect\.defineMetadata\s*=|reflect-metadata/,
  'the keyring native module': /@napi-rs\/keyring|napi-rs\/keyring/,
  'zod': /ZodError|\$ZodType/,
  'the YAML parser': /class Composer|YAMLParseError/,
  'the session proxy': /createSessionProxy/,
};

function staticGraph(entry: string): string[] {
  const seen = new Set<string>();
  const stack = [entry];
  while (stack.length) {
    const f = stack.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s*"(\.[^"]+)"|^import\s*"(\.[^"]+)"/gm)) {
      stack.push(join(dirname(f), (m[1] ?? m[2])!));
    }
  }
  return [...seen];
}

before(() => assertFreshBuild());

it('dist/run.cjs, what `cordon run` loads, contains no heavy module', () => {
  const text = readFileSync(join(ROOT, 'dist', 'run.cjs'), 'utf8');
  for (const [what, re] of Object.entries(HEAVY)) assert.doesNotMatch(text, re, `${what} is bundled into run.cjs: import it lazily (scripts/build.ts LAZY)`);
  assert.match(text, /import\("\.\/lazy\/network\.mjs"\)/, 'the proxy is loaded from the ES module build when needed');
});

it('the run fast path of the ES module CLI statically loads no heavy module', () => {
  const entry = join(ROOT, 'dist', 'cordon.mjs');
  const fast = /import\("(\.\/chunks\/fast-run-[^"]+)"\)/.exec(readFileSync(entry, 'utf8'));
  assert.ok(fast, 'entry.ts loads the fast path with a dynamic import');
  const files = staticGraph(join(ROOT, 'dist', fast[1]!));
  assert.ok(files.length > 3, `followed the graph (${files.length} files)`);
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    for (const [what, re] of Object.entries(HEAVY)) assert.doesNotMatch(text, re, `${what} is statically reachable from cordon run (${f}): import it lazily`);
  }
});
