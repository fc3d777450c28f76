// The bypass battery for credentials (class 11, and the cross-session
// "A's placeholder through B's proxy"), run from inside real sessions under
// the credentials overlay: a random test secret in the fixture's file vault,
// bound to the legit name; exfil.cordon.test allowed by the rules and bound to
// nothing. Then negative controls: the same probes under deliberately weakened
// bindings must report LEAKED, so a green run means the broker held, not that
// the probes cannot fail.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AuditStore } from '../../src/audit/index.ts';
import { openVault } from '../../src/broker/vault/index.ts';
import { describeHit, findCanary, resolverWrapper, startAttackers, writeBatteryPolicy, type Attackers } from '../../src/selftest/attacker.ts';
import { addTestCredential, createFixture } from '../../src/selftest/fixture.ts';
import { CREDENTIAL_PROBES } from '../../src/selftest/probes/credentials.ts';
import { PROBES } from '../../src/selftest/probes/index.ts';
import { runBattery } from '../../src/selftest/runner.ts';
import type { Fixture, ProbeResult } from '../../src/selftest/types.ts';
import { assertFreshBuild, CORDON } from '../helpers/cordon.ts';

/** Every probe that runs under the credentials overlay (class 11 and the cross-session one). */
const CREDENTIAL = PROBES.filter((p) => p.credentials);

/** With the binding also covering the exfil name, the placeholder (or the injected real value) reaches the attacker. */
const MUST_LEAK_WHEN_BOUND_TO_EXFIL = ['cred.header', 'cred.query', 'cred.path', 'cred.body', 'cred.split-headers', 'cred.split-chunks', 'cred.redirect', 'cred.use-after-leak'];
/** With dangerouslyAllowForeignCredentials, other keys (the attacker's, the peer's placeholder) reach the bound host. */
const MUST_LEAK_WHEN_FOREIGN_ALLOWED = ['cred.foreign-key', 'xs.peer-placeholder'];

describe('bypass battery: credentials (class 11, cross-session placeholders)', () => {
  let fixture: Fixture;
  let attackers: Attackers;
  let results: ProbeResult[] = [];
  let boundToExfil: ProbeResult[] = [];
  let foreignAllowed: ProbeResult[] = [];
  let withoutOverlay: ProbeResult[] = [];
  let strictReceived: ReturnType<Attackers['received']>;
  let strictSessions: string[] = [];
  let real = '';

  before(async () => {
    assertFreshBuild();
    fixture = createFixture();
    attackers = await startAttackers({ dir: fixture.root });
    fixture.attackers = attackers;
    fixture.networkMode = 'proxy';
    const cordon = resolverWrapper(attackers, fixture.root, CORDON);
    const base = writeBatteryPolicy(attackers, join(fixture.root, 'network-battery.yaml'), { node: process.execPath });

    // Without a credentials overlay nothing runs (and no peer is started).
    withoutOverlay = await runBattery({ fixture, cordon, probes: CREDENTIAL, policyFile: base });

    const credentials = await addTestCredential(fixture);
    real = fixture.canaries[credentials.realCanary]!;
    const strict = writeBatteryPolicy(attackers, join(fixture.root, 'credentials.yaml'), { node: process.execPath, credentials });
    results = await runBattery({ fixture, cordon, probes: CREDENTIAL, policyFile: base, credentialPolicyFile: strict });
    strictReceived = attackers.received();
    strictSessions = results.flatMap((r) => (r.sessionId ? [r.sessionId] : []));

    const exfil = writeBatteryPolicy(attackers, join(fixture.root, 'credentials-WEAKENED-exfil.yaml'), { node: process.execPath, credentials, unsafeBindExfil: true });
    boundToExfil = await runBattery({ fixture, cordon, probes: CREDENTIAL.filter((p) => MUST_LEAK_WHEN_BOUND_TO_EXFIL.includes(p.id)), policyFile: base, credentialPolicyFile: exfil });
    const foreign = writeBatteryPolicy(attackers, join(fixture.root, 'credentials-WEAKENED-foreign.yaml'), { node: process.execPath, credentials, unsafeAllowForeign: true });
    foreignAllowed = await runBattery({ fixture, cordon, probes: CREDENTIAL.filter((p) => MUST_LEAK_WHEN_FOREIGN_ALLOWED.includes(p.id)), policyFile: base, credentialPolicyFile: foreign });
  });
  after(async () => {
    await attackers?.close();
    if (fixture) rmSync(fixture.root, { recursive: true, force: true });
  });

  it('the battery holds class 11 probes for every technique of the matrix, and the cross-session one', () => {
    const ids = CREDENTIAL.map((p) => p.id);
    for (const id of ['cred.header', 'cred.query', 'cred.path', 'cred.body', 'cred.split-headers', 'cred.split-chunks', 'cred.echo-scrub', 'cred.echo-interim', 'cred.echo-websocket', 'cred.redirect', 'cred.foreign-key', 'cred.canary', 'cred.use-after-leak', 'xs.peer-placeholder']) {
      assert.ok(ids.includes(id), `${id} is in the battery`);
    }
    assert.deepEqual(
      CREDENTIAL_PROBES.map((p) => p.class),
      CREDENTIAL_PROBES.map(() => 11),
    );
  });

  it('the test secret is in a file vault in the fixture state dir; the overlays name it, never its value', async () => {
    const vault = await openVault({ stateDir: fixture.stateDir, prefer: 'file', env: {} });
    try {
      assert.equal(vault.backend, 'encrypted-file');
      const v = await vault.get(fixture.credentials!.secret);
      assert.equal(v?.toString('latin1'), real);
      v?.fill(0);
    } finally {
      vault.close();
    }
    assert.ok(existsSync(join(fixture.stateDir, 'vault', 'vault.key')), 'the key is a file: the user keyring is never touched');
    for (const f of readdirSync(fixture.root).filter((n) => n.endsWith('.yaml'))) {
      assert.ok(!readFileSync(join(fixture.root, f), 'utf8').includes(real), `${f} holds no real value`);
    }
  });

  for (const probe of CREDENTIAL) {
    it(`${probe.id}: ${probe.title}`, () => {
      const r = results.find((x) => x.id === probe.id);
      assert.ok(r, 'the probe ran');
      assert.equal(r.outcome, 'contained', `${r.outcome}: ${r.detail}`);
      assert.ok(r.sessionId, 'the session is in the audit log');
      assert.ok(r.evidence.some((e) => e.type === 'session.end'), 'the session end is audited');
      assert.ok(r.evidence.some((e) => /^cred\.(leak|canary|refused|scrubbed)$/.test(e.type)), `a cred.* decision is the evidence: ${r.evidence.map((e) => e.type).join(', ')}`);
    });
  }

  it('no attacker endpoint received a credential, the real value, a canary or a whole request', () => {
    const all = Object.values(fixture.canaries);
    for (const h of strictReceived.attacker) {
      assert.equal(findCanary(h.bytes, all), null, describeHit(h, all));
      assert.doesNotMatch(h.bytes.toString('latin1'), /cordonph|ghp_|attackerkey/, describeHit(h, all));
      // What may arrive: a connection the proxy opened before judging the head, or the head of a streamed body cut short.
      const text = h.bytes.toString('latin1');
      if (h.bytes.length > 0) assert.match(text, /^POST \/(upload|collect) HTTP\/1\.1\r\n/, `only the start of a streamed body: ${describeHit(h, all)}`);
    }
    assert.ok(strictReceived.attacker.some((h) => h.bytes.length > 0), 'the streamed bodies did start upstream (the rules let them through: only the broker stopped the value)');
  });

  it('the bound host got the real value only in the bound header, and no foreign key', () => {
    const authorizations = strictReceived.legit.flatMap((q) => q.headers.filter(([n]) => n.toLowerCase() === 'authorization').map(([, v]) => v));
    assert.ok(authorizations.length >= 5, `${authorizations.length} injected requests`);
    for (const v of authorizations) assert.equal(v, `Bearer ${real}`);
    for (const q of strictReceived.legit) {
      const all = `${q.url}\n${q.headers.map(([n, v]) => `${n}: ${v}`).join('\n')}\n${q.body.toString('latin1')}`;
      assert.doesNotMatch(all, /attackerkey|ghp_/, `${q.method} ${q.url}`);
    }
  });

  it('the audit log holds the decisions, and no form of the real value', () => {
    const store = AuditStore.open(fixture.stateDir);
    const counts: Record<string, number> = {};
    try {
      for (const session of strictSessions) {
        for (const r of store.records({ session })) if (r.type.startsWith('cred.')) counts[r.type] = (counts[r.type] ?? 0) + 1;
      }
    } finally {
      store.close();
    }
    assert.ok((counts['cred.leak'] ?? 0) >= 20, `cred.leak: ${counts['cred.leak']}`);
    assert.ok((counts['cred.refused'] ?? 0) >= 9, `cred.refused: ${counts['cred.refused']}`);
    assert.ok((counts['cred.canary'] ?? 0) >= 5, `cred.canary: ${counts['cred.canary']}`);
    assert.ok((counts['cred.use'] ?? 0) >= 6, `cred.use: ${counts['cred.use']}`);
    assert.ok((counts['cred.scrubbed'] ?? 0) >= 2, `cred.scrubbed: ${counts['cred.scrubbed']}`);
    for (const name of ['audit.db', 'audit.db-wal']) {
      const file = join(fixture.stateDir, name);
      if (existsSync(file)) assert.equal(findCanary(readFileSync(file), [real]), null, `${name} holds the real value`);
    }
  });

  it('without a credentials overlay the probes do not apply, and say why', () => {
    assert.equal(withoutOverlay.length, CREDENTIAL.length);
    for (const r of withoutOverlay) {
      assert.equal(r.outcome, 'not applicable', r.id);
      assert.match(r.detail, /^not applicable: \S/);
      assert.equal(r.sessionId, null);
    }
  });

  it('with network.mode none, or no binding, applies() says not applicable', () => {
    const none = { fixture: { ...fixture, networkMode: 'none' as const }, peer: null };
    const unbound = { fixture: { ...fixture, credentials: undefined }, peer: null };
    for (const p of CREDENTIAL) {
      assert.match(p.applies?.(none) ?? '', /^not applicable: network\.mode is none/, p.id);
      assert.match(p.applies?.(unbound) ?? '', /^not applicable: the fixture has no credential binding/, p.id);
    }
  });

  describe('negative control: the binding also covers the exfil name', () => {
    for (const id of MUST_LEAK_WHEN_BOUND_TO_EXFIL) {
      it(`${id} reports LEAKED`, () => {
        const r = boundToExfil.find((x) => x.id === id);
        assert.ok(r, `${id} ran under the weakened binding`);
        assert.equal(r.outcome, 'LEAKED', `${id} did not detect the credential at the attacker: ${r.outcome}: ${r.detail}`);
        assert.match(r.detail, /an attacker endpoint received (the placeholder|the real value)/);
      });
    }
  });

  describe('negative control: foreign credentials allowed on the bound host', () => {
    for (const id of MUST_LEAK_WHEN_FOREIGN_ALLOWED) {
      it(`${id} reports LEAKED`, () => {
        const r = foreignAllowed.find((x) => x.id === id);
        assert.ok(r, `${id} ran under the weakened binding`);
        assert.equal(r.outcome, 'LEAKED', `${id} did not detect the foreign credential at the bound host: ${r.outcome}: ${r.detail}`);
        assert.match(r.detail, /the legit \(credentialed\) server received/);
      });
    }
  });
});
