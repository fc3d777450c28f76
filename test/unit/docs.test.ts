// The reference docs are generated from the code that enforces them; this
// fails when someone changes one without regenerating the other.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { it } from 'node:test';

it('docs/policy-reference.md and docs/invariants.md match the code', () => {
  const r = spawnSync(process.execPath, [new URL('../../scripts/gen-docs.ts', import.meta.url).pathname, '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
