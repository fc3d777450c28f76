// The bypass battery for egress (classes 1-10 and 12), run from inside real
// sessions against loopback attacker and legit endpoints, with the test DNS as
// the proxy host's resolver. Then a negative control: the same harness with a
// deliberately weakened policy must report LEAKED for the probes that aim at
// the attacker, so a green run means the probes held, not that they cannot fail.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AuditStore } from '../../src/audit/index.ts';
import { describeHit, findCanary, resolverWrapper, startAttackers, writeBatteryPolicy, type Attackers } from '../../src/selftest/attacker.ts';
import { createFixture } from '../../src/selftest/fixture.ts';
import { PROBES } from '../../src/selftest/probes/index.ts';
import { runBattery } from '../../src/selftest/runner.ts';
import type { Fixture, ProbeResult } from '../../src/selftest/types.ts';
import { assertFreshBuild, CORDON } from '../helpers/cordon.ts';

const NETWORK_CLASSES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12];
const NETWORK = PROBES.filter((p) => NETWORK_CLASSES.includes(p.class));

/** With the attacker's name and addresses allowed, these reach it: each must then report LEAKED. */
const MUST_LEAK_WHEN_WEAKENED = [
  'net.env-proxy-unset',
  'net.curl-noproxy',
  'net.node-fetch',
  'net.python-socket',
  'net.host-spellings',
  'net.ip-literal-spellings',
  'net.ipv6-embedded',
  'net.allowed-name-private-address',
  'net.lan-host',
  'net.rebind-several-addresses',
  'net.rebind-resolver',
  'net.doh-dot',
  'net.aaaa-only',
  'net.plain-http-denial',
  'net.host-loopback',
  'net.websocket',
  'net.expect-continue',
  'net.tls-split-hello',
];

/**
 * Probes that fail today because of a defect outside the battery (reported,
 * not fixed here). Each must keep failing the way described until the fix
 * lands; a fix makes this test fail so the entry is removed.
 */
// Probes expected to fail because of a known, not yet fixed defect (each
// entry says what). Empty: every defect the battery found has been fixed.
const KNOWN_GAPS: Record<string, RegExp> = {};

describe('bypass battery: egress (classes 1-10, 12)', () => {
  let fixture: Fixture;
  let attackers: Attackers;
  let results: ProbeResult[] = [];
  let weakened: ProbeResult[] = [];
  let strictReceived: ReturnType<Attackers['received']>;
  let strictSessions: string[] = [];

  before(async () => {
    assertFreshBuild();
    fixture = createFixture();
    attackers = await startAttackers({ dir: fixture.root });
    fixture.attackers = attackers;
    fixture.networkMode = 'proxy';
    // A byte budget, so the slow drip has something to trip (each probe is its own session).
    fixture.budget = { bytesUp: 256 * 1024, requests: null, destinations: null };
    const strictPolicy = writeBatteryPolicy(attackers, join(fixture.root, 'network-battery.yaml'), { node: process.execPath, budget: { bytesUp: '256KiB' } });
    const cordon = resolverWrapper(attackers, fixture.root, CORDON);
    results = await runBattery({ fixture, cordon, probes: NETWORK, policyFile: strictPolicy });
    strictReceived = attackers.received();
    strictSessions = results.flatMap((r) => (r.sessionId ? [r.sessionId] : []));

    const weakPolicy = writeBatteryPolicy(attackers, join(fixture.root, 'network-battery-WEAKENED.yaml'), { node: process.execPath, unsafeAllowAttacker: true });
    weakened = await runBattery({
      fixture,
      cordon,
      probes: NETWORK.filter((p) => MUST_LEAK_WHEN_WEAKENED.includes(p.id) || p.id === 'net.exfil-slow-drip'),
      policyFile: weakPolicy,
    });
  });
  after(async () => {
    await attackers?.close();
    if (fixture) rmSync(fixture.root, { recursive: true, force: true });
  });

  it('the test DNS is the proxy host resolver (root, port 53 on 127.66.0.53, unshare from util-linux)', () => {
    assert.ok(attackers.resolverActive, 'cannot make the test DNS the proxy\'s resolver: run as root; apt-get install -y util-linux; free 127.66.0.53:53');
  });

  it('the LAN host (a private address in a network namespace this test creates) is up', () => {
    assert.ok(attackers.lan, `the LAN host is needed for net.lan-host: ${attackers.lanUnavailable}`);
    assert.match(attackers.lan.ip, /^10\.213\.\d+\.2$/);
  });

  it('covers every egress class of the bypass matrix', () => {
    for (const k of NETWORK_CLASSES) assert.ok(NETWORK.some((p) => p.class === k), `no probe for class ${k}`);
  });

  for (const probe of NETWORK) {
    it(`${probe.id}: ${probe.title}`, () => {
      const r = results.find((x) => x.id === probe.id);
      assert.ok(r, 'the probe ran');
      const gap = KNOWN_GAPS[probe.id];
      if (gap) {
        assert.equal(r.outcome, 'LEAKED', `${probe.id} no longer fails (${r.outcome}: ${r.detail}): the defect is fixed, remove it from KNOWN_GAPS`);
        assert.match(r.detail, gap, `${probe.id} fails differently than the known gap: ${r.detail}`);
        return;
      }
      if (r.outcome === 'not applicable') {
        assert.match(r.detail, /^not applicable: \S/, 'a probe that does not apply says why');
        return;
      }
      assert.equal(r.outcome, 'contained', `${r.outcome}: ${r.detail}`);
      assert.ok(r.sessionId, 'the session is in the audit log');
      assert.ok(r.evidence.some((e) => e.type === 'session.end'), 'the session end is audited');
    });
  }

  it('no attacker endpoint received anything, and the test DNS saw no canary', () => {
    const all = [attackers.canary, ...Object.values(fixture.canaries)];
    // The known gaps do reach an endpoint; their sessions' windows are left out here (their own test pins them).
    const gapWindows = sessionWindows(results.filter((r) => r.id in KNOWN_GAPS).flatMap((r) => (r.sessionId ? [r.sessionId] : [])));
    const outsideGaps = strictReceived.attacker.filter((h) => !gapWindows.some(([from, to]) => h.at >= from && h.at <= to));
    assert.deepEqual(outsideGaps.map((h) => describeHit(h, all)), []);
    assert.deepEqual(strictReceived.dns.filter((q) => findCanary(q.name, all) !== null).map((q) => `${q.type} ${q.name}`), []);
    // Where the policy grants it (net.exfil-audit-trail), the canary does reach the legit API: the detector works.
    assert.ok(attackers.canaryFound(all).some((d) => d.startsWith('legit')), 'the canary never reached the legit endpoints');
    // The allowed endpoints did get traffic: the probes are not failing for want of a network.
    assert.ok(strictReceived.legit.length >= 5, `the legit endpoints got ${strictReceived.legit.length} requests`);
  });

  it('the audit log holds the denied attempts', () => {
    const store = AuditStore.open(fixture.stateDir);
    try {
      let denied = 0;
      let dns = 0;
      for (const session of strictSessions) {
        for (const r of store.records({ session })) {
          const d = r.data as Record<string, unknown>;
          if (r.type === 'net.flow' && ['deny', 'refused', 'ask'].includes(String(d.decision))) denied++;
          if (r.type === 'net.request' && d.decision !== 'allow') denied++;
          if (r.type === 'dns.query' && d.decision === 'deny') dns++;
        }
      }
      assert.ok(denied >= 250, `only ${denied} denied flows and requests were audited`);
      assert.ok(dns >= 10, `only ${dns} denied DNS queries were audited`);
    } finally {
      store.close();
    }
  });

  /** [start, end] in ms of each session, from its audit records. */
  function sessionWindows(sessions: string[]): Array<[number, number]> {
    const store = AuditStore.open(fixture.stateDir);
    try {
      return sessions.map((session) => {
        const recs = [...store.records({ session })];
        return [Date.parse(recs[0]!.ts), Date.parse(recs.at(-1)!.ts) + 50];
      });
    } finally {
      store.close();
    }
  }

  it('net.exfil-slow-drip ran and the byte budget stopped it', () => {
    const r = results.find((x) => x.id === 'net.exfil-slow-drip')!;
    assert.equal(r.outcome, 'contained', `${r.outcome}: ${r.detail}`);
    assert.ok(r.evidence.some((e) => e.type === 'net.budget'), `the trip is the evidence: ${r.evidence.map((e) => e.type).join(', ')}`);
  });

  it('negative control: the same drip under a policy without the budget reports LEAKED', () => {
    const r = weakened.find((x) => x.id === 'net.exfil-slow-drip');
    assert.ok(r, 'the drip ran under the weakened policy (which sets no budget)');
    assert.equal(r.outcome, 'LEAKED', `${r.outcome}: ${r.detail}`);
    assert.match(r.detail, /budget/);
  });

  describe('negative control: a deliberately weakened policy (the attacker allowed)', () => {
    for (const id of MUST_LEAK_WHEN_WEAKENED) {
      it(`${id} reports LEAKED`, () => {
        const r = weakened.find((x) => x.id === id);
        assert.ok(r, `${id} ran under the weakened policy`);
        assert.equal(r.outcome, 'LEAKED', `${id} did not detect a reachable attacker: ${r.outcome}: ${r.detail}`);
        assert.match(r.detail, /reached an attacker endpoint/);
      });
    }
  });
});
