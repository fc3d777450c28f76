// AWS SigV4 through the proxy: the sandbox's SDK signs with the placeholder
// pair, the inspector verifies that signature and signs again with the real
// pair, and a loopback S3 that verifies with the REAL keys accepts it.
// Tampered, foreign and presigned requests stop at the inspector.

import assert from 'node:assert/strict';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { HttpRequest } from '@smithy/core/protocols';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, createHmac } from 'node:crypto';
import { readResponses, syntheticFor, upstreamCa } from '../proxy/helpers.ts';
import { fakeS3, type FakeS3, type RealKeys } from './fake-s3.ts';
import { session, type Session } from './helpers.ts';

const REAL: RealKeys = { accessKeyId: 'AKIAREALKEY000000001', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiREALKEY12345' };

class Sha256 {
  readonly #h;
  constructor(secret?: unknown) {
    this.#h = secret === undefined ? createHash('sha256') : createHmac('sha256', Buffer.from(secret as Uint8Array));
  }
  update(d: unknown): void {
    this.#h.update(typeof d === 'string' ? d : Buffer.from(d as Uint8Array));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#h.digest()));
  }
  reset(): void {}
}

/** An S3 client whose connections go through the session's proxy (as the forwarder delivers them). */
async function sdkThroughProxy(s: Session, s3: FakeS3, creds: { accessKeyId: string; secretAccessKey: string }): Promise<S3Client> {
  const addr = await syntheticFor(s.tp.socketPath, 's3.test');
  const socketPath = s.tp.socketPath;
  const ca = s.tp.ca.caPem;
  class ViaProxy extends https.Agent {
    override createConnection(options: tls.ConnectionOptions): net.Socket {
      const raw = net.connect({ path: socketPath });
      raw.write(`CORDON/1 TCP ${addr} ${s3.port} 40000\n`);
      return tls.connect({ ...options, socket: raw, ca, servername: 's3.test' });
    }
  }
  return new S3Client({
    region: 'us-east-1',
    endpoint: `https://s3.test:${s3.port}`,
    forcePathStyle: true,
    credentials: creds,
    requestHandler: new NodeHttpHandler({ httpsAgent: new ViaProxy({ keepAlive: true }) }),
    maxAttempts: 1,
  });
}

/** Sign a request with smithy's signer (what any AWS SDK would send). */
async function signed(
  creds: { accessKeyId: string; secretAccessKey: string },
  o: { method: string; path: string; port: number; headers?: Record<string, string>; body?: string; service?: string; query?: Record<string, string>; hashBody?: boolean },
): Promise<Record<string, string>> {
  const service = o.service ?? 's3';
  const signer = new SignatureV4({ credentials: creds, region: 'us-east-1', service, sha256: Sha256, uriEscapePath: service !== 's3', applyChecksum: o.hashBody ?? service === 's3' });
  const headers: Record<string, string> = { host: `s3.test:${o.port}`, ...o.headers };
  if (o.body !== undefined) headers['content-length'] = String(Buffer.byteLength(o.body));
  const r = await signer.sign(new HttpRequest({ method: o.method, protocol: 'https:', hostname: 's3.test', port: o.port, path: o.path, query: o.query ?? {}, headers, ...(o.body !== undefined ? { body: o.body } : {}) }));
  return r.headers as Record<string, string>;
}

const raw = (method: string, target: string, headers: Record<string, string>, body = '') =>
  `${method} ${target} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n${body}`;

/** Straight to the fake S3 (no proxy), trusting its CA. */
async function direct(s3: FakeS3, bytes: string): Promise<{ status: number; body: string }> {
  const ca = (await upstreamCa()).caPem;
  const t = tls.connect({ host: '127.0.0.1', port: s3.port, servername: 's3.test', ca });
  await new Promise((r) => t.once('secureConnect', r));
  const p = readResponses(t, 1);
  t.write(bytes);
  const r = (await p)[0]!;
  t.destroy();
  return { status: r.status, body: r.body.toString() };
}

describe('AWS SigV4: verify with the placeholder, sign again with the real key', () => {
  let s3: FakeS3;
  let s: Session;
  let ph: { accessKeyId: string; secretAccessKey: string };
  let client: S3Client;
  before(async () => {
    s3 = await fakeS3('s3.test', REAL);
    s = await session({
      bindings: [{ secret: 'aws', kind: 'aws', hosts: ['s3.test'], ports: [s3.port], env: 'AWS_ACCESS_KEY_ID', file: '~/.aws/credentials', stripHeaders: ['x-amz-meta-strip'] }],
      secrets: { aws: JSON.stringify(REAL) },
      hosts: { 's3.test': s3.port },
      maxSignedBodyBytes: 4096,
    });
    ph = s.creds.issued()[0]!.aws!;
    client = await sdkThroughProxy(s, s3, ph);
  });
  after(async () => {
    client.destroy();
    await s.close();
    await s3.server.close();
  });

  it('placeholder pair: AWS-shaped, in env and an aws credentials file', () => {
    assert.match(ph.accessKeyId, /^AKIACORDON[A-Z2-7]{10}$/);
    assert.equal(ph.secretAccessKey.length, 40);
    assert.deepEqual(s.creds.env(), { AWS_ACCESS_KEY_ID: ph.accessKeyId, AWS_SECRET_ACCESS_KEY: ph.secretAccessKey });
    assert.deepEqual(s.creds.files(), [
      { path: '/home/agent/.aws/credentials', content: `[default]\naws_access_key_id = ${ph.accessKeyId}\naws_secret_access_key = ${ph.secretAccessKey}\n` },
    ]);
  });

  it('the fake S3 verifies with the real key: it rejects the placeholder signature', async () => {
    const hPh = await signed(ph, { method: 'GET', path: '/bkt/x', port: s3.port });
    assert.equal((await direct(s3, raw('GET', '/bkt/x', hPh))).status, 403);
    assert.equal(s3.verdicts.at(-1), 'InvalidAccessKeyId');
    const hMixed = await signed({ accessKeyId: REAL.accessKeyId, secretAccessKey: ph.secretAccessKey }, { method: 'GET', path: '/bkt/x', port: s3.port });
    assert.equal((await direct(s3, raw('GET', '/bkt/x', hMixed))).status, 403);
    assert.equal(s3.verdicts.at(-1), 'SignatureDoesNotMatch');
    const hReal = await signed(REAL, { method: 'GET', path: '/bkt/x', port: s3.port });
    assert.equal((await direct(s3, raw('GET', '/bkt/x', hReal))).status, 404, 'the real key is accepted (no such object)');
    assert.equal(s3.verdicts.at(-1), null);
  });

  it('@aws-sdk/client-s3 PutObject/GetObject with the placeholder pair work end to end', async () => {
    const n = s3.verdicts.length;
    const body = `hello from the sandbox ${'x'.repeat(3000)}`;
    const put = await client.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'dir/hello world.txt', Body: body }));
    assert.equal(put.$metadata.httpStatusCode, 200);
    assert.equal(s3.objects.get('/bkt/dir/hello%20world.txt')?.toString(), body);
    const got = await client.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'dir/hello world.txt' }));
    assert.equal(await got.Body!.transformToString(), body);
    const big = Buffer.alloc(3 * 1024 * 1024, 'a');
    await client.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'big', Body: big }));
    assert.equal(s3.objects.get('/bkt/big')?.length, big.length);
    assert.deepEqual(s3.verdicts.slice(n), [null, null, null]);
    for (const r of s3.received.slice(-3)) {
      assert.match(String(r.headers.authorization), new RegExp(`Credential=${REAL.accessKeyId}/`));
      if (r.method === 'PUT') assert.ok(r.headers['content-length'] && !r.headers['transfer-encoding'], 'Content-Length kept (S3 needs it)');
    }
    const uses = s.records('cred.use').slice(-3);
    assert.deepEqual(uses.map((u) => u.sites), [['sigv4'], ['sigv4'], ['sigv4']]);
  });

  it('a request changed after signing is refused by the inspector (body, header)', async () => {
    const n = s3.received.length;
    const h = await signed(ph, { method: 'PUT', path: '/bkt/t', port: s3.port, body: 'hello world' });
    const r = await s.send('s3.test', s3.port, [raw('PUT', '/bkt/t', h, 'HELLO world')]);
    assert.equal(r.status, 403);
    assert.match(r.body.toString(), /does not match its signed x-amz-content-sha256/);
    for (const got of s3.received.slice(n)) assert.equal(got.aborted, true, 'the upstream never got the whole body');
    assert.equal(s3.objects.has('/bkt/t'), false);
    const h2 = await signed(ph, { method: 'GET', path: '/bkt/x', port: s3.port, headers: { 'x-amz-meta-a': '1' } });
    const r2 = await s.send('s3.test', s3.port, [raw('GET', '/bkt/x', { ...h2, 'x-amz-meta-a': '2' })]);
    assert.equal(r2.status, 403);
    assert.match(r2.body.toString(), /signature does not verify/);
    const r3 = await s.send('s3.test', s3.port, [raw('GET', '/bkt/other', h2)]);
    assert.equal(r3.status, 403, 'a signature replayed on another path');
  });

  it('foreign signatures, foreign session tokens and presigned URLs are refused', async () => {
    const n = s3.received.length;
    const attacker = { accessKeyId: 'AKIAATTACKER00000001', secretAccessKey: 'attackerattackerattackerattacker12345678' };
    let r = await s.send('s3.test', s3.port, [raw('GET', '/bkt/x', await signed(attacker, { method: 'GET', path: '/bkt/x', port: s3.port }))]);
    assert.equal(r.status, 403);
    assert.match(r.body.toString(), /foreign credential in the authorization header/);
    const wrongSecret = { accessKeyId: ph.accessKeyId, secretAccessKey: 'not-the-placeholder-secret-000000000000' };
    r = await s.send('s3.test', s3.port, [raw('GET', '/bkt/x', await signed(wrongSecret, { method: 'GET', path: '/bkt/x', port: s3.port }))]);
    assert.match(r.body.toString(), /signature does not verify/);
    r = await s.send('s3.test', s3.port, [raw('GET', '/bkt/x', { ...(await signed(ph, { method: 'GET', path: '/bkt/x', port: s3.port })), 'x-amz-security-token': 'FwoGZXIvYXdzE' })]);
    assert.match(r.body.toString(), /foreign credential in the x-amz-security-token header/);
    const q = `X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${ph.accessKeyId}%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=${'0'.repeat(64)}`;
    r = await s.send('s3.test', s3.port, [raw('GET', `/bkt/x?${q}`, { host: `s3.test:${s3.port}` })]);
    assert.match(r.body.toString(), /presigned/);
    assert.equal(s3.received.length, n, 'none reached S3');
  });

  it('no x-amz-content-sha256 (non-S3 services): the body is read whole and hashed, within the bound', async () => {
    const body = JSON.stringify({ TableName: 't', Key: { id: { S: '1' } } });
    const h = await signed(ph, { method: 'POST', path: '/', port: s3.port, service: 'dynamodb', hashBody: false, body, headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.GetItem' } });
    assert.equal(h['x-amz-content-sha256'], undefined);
    const r = await s.send('s3.test', s3.port, [raw('POST', '/', h, body)]);
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(s3.verdicts.at(-1), null);
    const tooBig = 'y'.repeat(5000);
    const h2 = await signed(ph, { method: 'POST', path: '/', port: s3.port, service: 'dynamodb', hashBody: false, body: tooBig });
    const r2 = await s.send('s3.test', s3.port, [raw('POST', '/', h2, tooBig)]);
    assert.equal(r2.status, 403);
    assert.match(r2.body.toString(), /larger than 4096 bytes/);
  });

  it('signed headers the inspector edits (stripHeaders, Accept-Encoding) are signed as forwarded', async () => {
    const h = await signed(ph, { method: 'PUT', path: '/bkt/e', port: s3.port, body: 'edited', headers: { 'accept-encoding': 'gzip, br', 'x-amz-meta-strip': 'yes', 'x-amz-meta-keep': 'k' } });
    const r = await s.send('s3.test', s3.port, [raw('PUT', '/bkt/e', h, 'edited')]);
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(s3.verdicts.at(-1), null);
    const got = s3.received.at(-1)!;
    assert.equal(got.headers['x-amz-meta-strip'], undefined);
    assert.equal(got.headers['accept-encoding'], 'identity');
    assert.match(String(got.headers.authorization), /SignedHeaders=accept-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-meta-keep,/);
  });

  it('a response naming the real access key id shows the placeholder id', async () => {
    const h = await signed(ph, { method: 'GET', path: '/whoami', port: s3.port });
    const r = await s.send('s3.test', s3.port, [raw('GET', '/whoami', h)]);
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), `<Owner><AccessKeyId>${ph.accessKeyId}</AccessKeyId></Owner>`);
  });
});

describe('AWS SigV4 with temporary real keys (INI secret with a session token)', () => {
  it('adds the real session token and signs it', async () => {
    const keys: RealKeys = { accessKeyId: 'ASIAREALTEMP00000001', secretAccessKey: 'tempSecretKey/abcdefghijklmnopqrstuvwxyz', sessionToken: 'IQoJb3JpZ2luX2VjEREALSESSIONTOKEN//abc+def=' };
    const s3 = await fakeS3('s3.test', keys);
    const ini = `# comment\n[work]\naws_access_key_id = ${keys.accessKeyId}\naws_secret_access_key = ${keys.secretAccessKey}\naws_session_token = ${keys.sessionToken}\n\n[other]\naws_access_key_id = AKIAOTHER\n`;
    const s = await session({ bindings: [{ secret: 'aws', kind: 'aws', hosts: ['s3.test'], ports: [s3.port], env: 'AWS' }], secrets: { aws: ini }, hosts: { 's3.test': s3.port } });
    const ph = s.creds.issued()[0]!.aws!;
    const client = await sdkThroughProxy(s, s3, ph);
    try {
      assert.match(ph.accessKeyId, /^ASIACORDON/);
      await client.send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: 'temp' }));
      assert.equal(s3.verdicts.at(-1), null);
      assert.equal(s3.received.at(-1)!.headers['x-amz-security-token'], keys.sessionToken);
      assert.match(String(s3.received.at(-1)!.headers.authorization), /SignedHeaders=[^,]*x-amz-security-token/);
      assert.ok(!JSON.stringify([s.creds.env(), s.creds.files(), s.audit]).includes('REALSESSION'));
    } finally {
      client.destroy();
      await s.close();
      await s3.server.close();
    }
  });
});
