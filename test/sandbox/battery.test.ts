// The bypass battery for the sandbox boundary (classes 13, 14 and the
// file/process/env parts of 15), run from inside real sessions.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createFixture } from '../../src/selftest/fixture.ts';
import { PROBES } from '../../src/selftest/probes/index.ts';
import { runBattery } from '../../src/selftest/runner.ts';
import type { Fixture, ProbeResult } from '../../src/selftest/types.ts';
import { assertFreshBuild, CORDON } from '../helpers/cordon.ts';

describe('bypass battery: filesystem, control plane, cross-session', () => {
  let fixture: Fixture;
  let results: ProbeResult[] = [];
  before(async () => {
    assertFreshBuild();
    fixture = createFixture();
    results = await runBattery({ fixture, cordon: CORDON, probes: PROBES.filter((p) => [13, 14, 15].includes(p.class)) });
  });
  after(() => rmSync(fixture.root, { recursive: true, force: true }));

  for (const probe of PROBES.filter((p) => [13, 14, 15].includes(p.class))) {
    it(`${probe.id}: ${probe.title}`, () => {
      const r = results.find((x) => x.id === probe.id);
      assert.ok(r, 'the probe ran');
      assert.equal(r.outcome, 'contained', `${r.outcome}: ${r.detail}`);
      assert.ok(r.sessionId, 'the session is in the audit log');
      assert.ok(r.evidence.some((e) => e.type === 'session.end'), 'the session end is audited');
    });
  }
});
