import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createSessionCa } from '../../src/proxy/index.ts';
import { isCordonError } from '../../src/errors.ts';

describe('session CA', () => {
  it('is a CA limited to issuing leaves (pathlen 0), made in memory', async () => {
    const ca = await createSessionCa({ label: 'sess-1' });
    const c = new X509Certificate(ca.caPem);
    assert.equal(c.ca, true);
    assert.match(c.subject, /cordon session CA sess-1/);
    assert.ok(c.checkIssued(c));
    assert.doesNotMatch(ca.caPem, /PRIVATE KEY/);
  });

  it('mints short-lived leaves with exactly one SAN, cached per name', async () => {
    const ca = await createSessionCa();
    const caCert = new X509Certificate(ca.caPem);
    const a = await ca.leafFor('API.example.test');
    const leaf = new X509Certificate(a.certPem);
    assert.equal(leaf.subjectAltName, 'DNS:api.example.test');
    assert.ok(leaf.checkIssued(caCert));
    assert.ok(leaf.verify(caCert.publicKey));
    assert.equal(leaf.ca, false);
    assert.ok(Date.parse(leaf.validTo) - Date.now() <= 24 * 3600_000 + 60_000);
    assert.match(leaf.keyUsage?.join(',') ?? '1.3.6.1.5.5.7.3.1', /1\.3\.6\.1\.5\.5\.7\.3\.1/);
    assert.equal(await ca.leafFor('api.example.test'), a);
    const ip = new X509Certificate((await ca.leafFor('::1')).certPem);
    assert.equal(ip.subjectAltName, 'IP Address:0:0:0:0:0:0:0:1');
    const v4 = new X509Certificate((await ca.leafFor('127.0.0.1')).certPem);
    assert.equal(v4.subjectAltName, 'IP Address:127.0.0.1');
  });

  it('two sessions never share a CA', async () => {
    const [a, b] = await Promise.all([createSessionCa(), createSessionCa()]);
    assert.notEqual(a.caPem, b.caPem);
    const leafA = new X509Certificate((await a.leafFor('x.test')).certPem);
    assert.equal(leafA.checkIssued(new X509Certificate(b.caPem)), false);
  });

  it('caBundle appends the CA to the system bundle; a missing bundle is an error', async () => {
    const ca = await createSessionCa();
    const dir = mkdtempSync(join(tmpdir(), 'cordon-ca-'));
    try {
      const sys = join(dir, 'system.pem');
      writeFileSync(sys, '-----BEGIN CERTIFICATE-----\nSYSTEM\n-----END CERTIFICATE-----\n');
      const bundle = ca.caBundle(sys);
      assert.ok(bundle.startsWith('-----BEGIN CERTIFICATE-----\nSYSTEM'));
      assert.ok(bundle.endsWith(ca.caPem));
      assert.throws(() => ca.caBundle(join(dir, 'missing.pem')), (e) => isCordonError(e) && e.code === 'CORDON_PREREQ_MISSING');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
