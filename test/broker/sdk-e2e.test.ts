// Credentials end to end: secrets added with `cordon secret add`, bound in a
// policy, and used by the official SDK clients (Anthropic, OpenAI, AWS S3)
// running unchanged INSIDE a real sandbox against loopback mock upstreams that
// check the real values. The sandbox must only ever hold placeholders; the
// upstreams must only ever see real values where bound; `cordon token revoke`
// must make the next request fail at once.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AuditStore } from '../../src/audit/index.ts';
import { upstreamCa } from '../proxy/helpers.ts';
import { assertFreshBuild, CORDON, cordonSync, isolated, ROOT, type Isolated } from '../helpers/cordon.ts';
import { fakeS3, type FakeS3 } from './fake-s3.ts';
import { upstream, type Upstream } from './helpers.ts';

const NODE_DIR = realpathSync(join(ROOT, 'node_modules', 'node'));
const MODULES = join(ROOT, 'node_modules');

// Random test values shaped like the real thing; none is a real credential.
const REAL = {
  anthropic: `sk-ant-api03-${randomBytes(40).toString('base64url')}`,
  openai: `sk-proj-${randomBytes(40).toString('base64url')}`,
  aws: { accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(30).toString('base64') },
};

const CLIENT = String.raw`
const { createRequire } = require('node:module');
const req = createRequire(process.env.MODULES + '/');
const Anthropic = req('@anthropic-ai/sdk').default ?? req('@anthropic-ai/sdk');
const OpenAI = req('openai').default ?? req('openai');
const { S3Client, PutObjectCommand, GetObjectCommand } = req('@aws-sdk/client-s3');
const fs = require('node:fs');
const out = (k, v) => console.log(JSON.stringify({ k, v }));
(async () => {
  const step = process.argv[2];
  if (step === 'env') {
    out('env', { ANTHROPIC_API_KEY: process.env.ANTHROPIC_API_KEY, OPENAI_API_KEY: process.env.OPENAI_API_KEY, AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID });
    out('environ', fs.readFileSync('/proc/self/environ', 'latin1'));
    out('awsfile', fs.existsSync(process.env.HOME + '/.aws/credentials') ? fs.readFileSync(process.env.HOME + '/.aws/credentials', 'utf8') : null);
    return;
  }
  const anthropic = new Anthropic({ baseURL: process.env.ANTHROPIC_URL, maxRetries: 0 });
  const openai = new OpenAI({ baseURL: process.env.OPENAI_URL, maxRetries: 0 });
  const s3 = new S3Client({ endpoint: process.env.S3_URL, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1 });
  const tryIt = async (k, fn) => { try { out(k, { ok: true, v: await fn() }); } catch (e) { out(k, { ok: false, status: e.status ?? e.$metadata?.httpStatusCode ?? null, error: String(e.message ?? e).slice(0, 300) }); } };
  if (step === 'all' || step === 'memory') {
    await tryIt('anthropic', async () => (await anthropic.messages.create({ model: 'claude-test', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] })).content[0].text);
    await tryIt('openai', async () => (await openai.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] })).choices[0].message.content);
    await tryIt('s3put', async () => (await s3.send(new PutObjectCommand({ Bucket: 'b', Key: 'k.txt', Body: 'hello from the sandbox' }))).$metadata.httpStatusCode);
    await tryIt('s3get', async () => await (await s3.send(new GetObjectCommand({ Bucket: 'b', Key: 'k.txt' }))).Body.transformToString());
  }
  if (step === 'memory') {
    // What a core dump of this process would hold: every readable, writable mapping, after the SDKs have used their keys.
    out('corelimit', fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max core file size')));
    const mem = fs.openSync('/proc/self/mem', 'r');
    const dump = fs.openSync('mem.bin', 'w');
    let total = 0;
    for (const l of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) rw/.exec(l);
      if (!m) continue;
      const start = Number.parseInt(m[1], 16);
      const len = Number.parseInt(m[2], 16) - start;
      if (len > 64 * 1024 * 1024) continue;
      const buf = Buffer.alloc(len);
      try { fs.readSync(mem, buf, 0, len, start); } catch { continue; }
      fs.writeSync(dump, buf);
      total += len;
    }
    fs.closeSync(dump);
    out('dumped', total);
  }
  if (step === 'revoke') {
    await tryIt('before', async () => (await anthropic.messages.create({ model: 'claude-test', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] })).content[0].text);
    fs.writeFileSync('ready', '1');
    while (!fs.existsSync('go')) await new Promise((r) => setTimeout(r, 50));
    await tryIt('after', async () => (await anthropic.messages.create({ model: 'claude-test', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] })).content[0].text);
  }
})();
`;

interface Ctx {
  t: Isolated;
  anthropic: Upstream;
  openai: Upstream;
  s3: FakeS3;
  policy: string;
}

function parse(stdout: string): Record<string, any> {
  const out: Record<string, any> = {};
  for (const line of stdout.split('\n')) {
    try {
      const j = JSON.parse(line) as { k: string; v: unknown };
      if (j && typeof j.k === 'string') out[j.k] = j.v;
    } catch {
      // not ours
    }
  }
  return out;
}

async function setup(): Promise<Ctx> {
  const t = isolated();
  const addSecret = (name: string, value: string) => {
    const r = cordonSync(['secret', 'add', name, '--vault', 'file', '--from-env', 'SECRET_VALUE'], { env: { ...t.env, SECRET_VALUE: value } });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!r.stdout.includes(value) && !r.stderr.includes(value), 'a secret value never appears in output');
  };
  addSecret('anthropic', REAL.anthropic);
  addSecret('openai', REAL.openai);
  addSecret('aws', JSON.stringify(REAL.aws));

  const json = (status: number, body: unknown) => (res: import('node:http').ServerResponse) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const anthropic = await upstream('api.anthropic.test', {
    '/v1/messages': (req, res) =>
      // This SDK version sends the key as a bearer token.
      req.headers.authorization === `Bearer ${REAL.anthropic}` && req.headers['x-api-key'] === undefined
        ? json(200, { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-test', content: [{ type: 'text', text: 'hello from the mock' }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 1, output_tokens: 3 } })(res)
        : json(401, { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } })(res),
  });
  const openai = await upstream('api.openai.test', {
    '/v1/chat/completions': (req, res) =>
      req.headers.authorization === `Bearer ${REAL.openai}`
        ? json(200, { id: 'c1', object: 'chat.completion', created: 1, model: 'gpt-test', choices: [{ index: 0, message: { role: 'assistant', content: 'hi from the mock' }, finish_reason: 'stop' }] })(res)
        : json(401, { error: { message: 'Incorrect API key', type: 'invalid_request_error' } })(res),
  });
  const s3 = await fakeS3('s3.cordon.test', REAL.aws);
  const caFile = join(t.root, 'upstream-ca.pem');
  writeFileSync(caFile, (await upstreamCa()).caPem);
  const policy = join(t.root, 'policy.yaml');
  const ports = [anthropic.port, openai.port, s3.port];
  writeFileSync(
    policy,
    `version: 1
filesystem:
  read: [${NODE_DIR}, ${MODULES}]
network:
  mode: proxy
  upstreamCa: ${caFile}
  hosts:
    api.anthropic.test: [127.0.0.1]
    api.openai.test: [127.0.0.1]
    s3.cordon.test: [127.0.0.1]
  rules:
    - allow: api.anthropic.test
      ports: [${anthropic.port}]
    - allow: api.openai.test
      ports: [${openai.port}]
    - allow: s3.cordon.test
      ports: [${s3.port}]
    - allow: 127.0.0.1
      ports: [${ports.join(', ')}]
credentials:
  bindings:
    - secret: anthropic
      env: ANTHROPIC_API_KEY
      placeholderPrefix: sk-ant-api03-
      hosts: [api.anthropic.test]
      ports: [${anthropic.port}]
    - secret: openai
      env: OPENAI_API_KEY
      placeholderPrefix: sk-proj-
      hosts: [api.openai.test]
      ports: [${openai.port}]
      paths: [/v1/]
    - secret: aws
      kind: aws
      env: AWS
      file: ~/.aws/credentials
      hosts: [s3.cordon.test]
      ports: [${s3.port}]
`,
  );
  writeFileSync(join(t.workspace, 'client.cjs'), CLIENT);
  return { t, anthropic, openai, s3, policy };
}

function runClient(c: Ctx, step: string) {
  return spawn(CORDON[0]!, [...CORDON.slice(1), 'run', '--no-tty', '--policy', c.policy, '--', join(NODE_DIR, 'bin', 'node'), 'client.cjs', step], {
    cwd: c.t.workspace,
    env: c.t.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function collect(child: ReturnType<typeof spawn>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const status = await new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { status, stdout, stderr };
}

before(() => assertFreshBuild());

describe('credentials: official SDKs in the sandbox hold placeholders only', () => {
  let c: Ctx;
  before(async () => {
    c = await setup();
    // The client learns the mock URLs through a policy `env.set` layered in (they are not secrets).
    const extra = `env:\n  set:\n    MODULES: ${MODULES}\n    ANTHROPIC_URL: https://api.anthropic.test:${c.anthropic.port}\n    OPENAI_URL: https://api.openai.test:${c.openai.port}/v1\n    S3_URL: https://s3.cordon.test:${c.s3.port}\n`;
    writeFileSync(c.policy, readFileSync(c.policy, 'utf8') + extra);
  });
  after(async () => {
    await Promise.all([c.anthropic.server.close(), c.openai.server.close(), c.s3.server.close()]);
  });

  it('Anthropic, OpenAI and S3 clients work unchanged; upstreams see the real values', async () => {
    const r = await collect(runClient(c, 'all'));
    const out = parse(r.stdout);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(out.anthropic, { ok: true, v: 'hello from the mock' }, r.stderr);
    assert.deepEqual(out.openai, { ok: true, v: 'hi from the mock' });
    assert.deepEqual(out.s3put, { ok: true, v: 200 });
    assert.deepEqual(out.s3get, { ok: true, v: 'hello from the sandbox' });
    assert.ok(c.anthropic.received.some((x) => x.headers.authorization === `Bearer ${REAL.anthropic}`));
    assert.ok(c.openai.received.some((x) => x.headers.authorization === `Bearer ${REAL.openai}`));
    assert.ok(c.s3.verdicts.length >= 2 && c.s3.verdicts.every((v) => v === null), `S3 verified the re-signed requests: ${c.s3.verdicts}`);
    assert.ok(c.s3.received.every((x) => String(x.headers.authorization).includes(`Credential=${REAL.aws.accessKeyId}/`)));
  });

  it('the sandbox never holds a real value: env, /proc/self/environ, planted files', async () => {
    const r = await collect(runClient(c, 'env'));
    const out = parse(r.stdout);
    assert.equal(r.status, 0, r.stderr);
    const all = r.stdout + r.stderr;
    for (const v of [REAL.anthropic, REAL.openai, REAL.aws.accessKeyId, REAL.aws.secretAccessKey]) assert.ok(!all.includes(v), 'a real value reached the sandbox');
    assert.match(out.env.ANTHROPIC_API_KEY, /^sk-ant-api03-cordonph/);
    assert.match(out.env.OPENAI_API_KEY, /^sk-proj-cordonph/);
    assert.match(out.env.AWS_ACCESS_KEY_ID, /^AKIACORDON/);
    assert.match(out.awsfile, /aws_access_key_id\s*=\s*AKIACORDON/);
  });

  it("a memory image of the SDK process (what a core dump would hold) has the placeholders, no real value; core dumps are off", async () => {
    const r = await collect(runClient(c, 'memory'));
    const out = parse(r.stdout);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(out.anthropic, { ok: true, v: 'hello from the mock' }, 'the SDK did use its key');
    assert.match(String(out.corelimit), /Max core file size\s+0\s+0\s/, 'RLIMIT_CORE is 0, soft and hard');
    const dump = readFileSync(join(c.t.workspace, 'mem.bin'));
    try {
      assert.ok(dump.length > 1024 * 1024 && dump.length === out.dumped, `a real memory image: ${dump.length} bytes`);
      assert.ok(dump.includes(Buffer.from('sk-ant-api03-cordonph')), 'the image holds the placeholder the SDK used (the dump sees what the process holds)');
      for (const [name, v] of Object.entries({ anthropic: REAL.anthropic, openai: REAL.openai, awsKey: REAL.aws.accessKeyId, awsSecret: REAL.aws.secretAccessKey })) {
        assert.ok(!dump.includes(Buffer.from(v)), `the real ${name} value is in the sandboxed process's memory`);
        assert.ok(!dump.includes(Buffer.from(v, 'utf16le')), `the real ${name} value (two-byte string) is in the sandboxed process's memory`);
      }
    } finally {
      rmSync(join(c.t.workspace, 'mem.bin'), { force: true });
    }
  });

  it('the audit log records each use, and no value', () => {
    const store = AuditStore.open(join(c.t.root, 'state'));
    try {
      const uses = store.tail(200, { type: 'cred.use' });
      assert.ok(uses.some((u) => u.data.secretName === 'anthropic'));
      assert.ok(uses.some((u) => u.data.secretName === 'aws'));
    } finally {
      store.close();
    }
    const bytes = readFileSync(join(c.t.root, 'state', 'audit.db'));
    const wal = existsSync(join(c.t.root, 'state', 'audit.db-wal')) ? readFileSync(join(c.t.root, 'state', 'audit.db-wal')) : Buffer.alloc(0);
    for (const v of [REAL.anthropic, REAL.openai, REAL.aws.secretAccessKey]) assert.ok(!bytes.includes(v) && !wal.includes(v), 'no secret value in the audit store');
  });

  it('cordon token revoke makes the next request fail at once', async () => {
    const child = runClient(c, 'revoke');
    const done = collect(child);
    const t0 = Date.now();
    while (!existsSync(join(c.t.workspace, 'ready')) && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 50));
    const sessions = JSON.parse(cordonSync(['sessions', '--json'], { env: c.t.env }).stdout) as { sessions: { sessionId: string }[] };
    assert.equal(sessions.sessions.length, 1);
    const rv = cordonSync(['token', 'revoke', 'anthropic', '--json'], { env: c.t.env });
    assert.equal(rv.status, 0, rv.stderr);
    assert.deepEqual(JSON.parse(rv.stdout).revoked, ['anthropic']);
    writeFileSync(join(c.t.workspace, 'go'), '1');
    const r = await done;
    const out = parse(r.stdout);
    assert.deepEqual(out.before, { ok: true, v: 'hello from the mock' });
    assert.equal(out.after.ok, false, 'the request after revocation failed');
    assert.equal(out.after.status, 403);
    assert.match(out.after.error, /revoked/);
  });
});
