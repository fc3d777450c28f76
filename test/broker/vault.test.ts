// The vault's encrypted-file backend, and what both backends share: round
// trips, AES-GCM tamper detection, permissions, atomicity under SIGKILL,
// concurrent writers, and that no value byte reaches metadata or errors.
// The keyring backend against a real Secret Service: vault-keyring.test.ts.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Vault } from '../../src/broker/types.ts';
import { openVault, probeSecretService, vaultLayout } from '../../src/broker/vault/index.ts';
import { busSocketPath } from '../../src/broker/vault/secret-service-probe.ts';
import { CordonError } from '../../src/errors.ts';

const NO_BUS: NodeJS.ProcessEnv = {};
const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function stateDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'cordon-vault-'));
  roots.push(root);
  return join(root, 'state');
}

const openFile = (state: string) => openVault({ stateDir: state, prefer: 'file', env: NO_BUS });

/** A value that is easy to find in bytes, and its common encodings. */
function distinctive(): { value: Buffer; forms: Buffer[] } {
  const value = Buffer.from(`cordon-canary-${randomBytes(12).toString('hex')}`);
  return { value, forms: [value, Buffer.from(value.toString('base64')), Buffer.from(value.toString('hex')), Buffer.from(value.toString('base64url'))] };
}

function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...allFiles(p));
    else out.push(p);
  }
  return out;
}

async function rejection(p: Promise<unknown>): Promise<CordonError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CordonError, `expected a CordonError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected the promise to reject');
}

function assertNoValue(text: string, value: Buffer, where: string): void {
  for (const form of [value.toString('utf8'), value.toString('base64'), value.toString('hex')]) assert.ok(!text.includes(form), `value found in ${where}`);
}

function errorText(e: CordonError): string {
  return `${e.message}\n${e.hint ?? ''}\n${JSON.stringify(e.toJSON())}\n${e.stack ?? ''}`;
}

describe('encrypted-file vault: round trips', () => {
  test('set, get, meta, list, rotate, delete', async () => {
    const state = stateDir();
    const t = [new Date('2026-01-01T00:00:00Z'), new Date('2026-02-01T00:00:00Z'), new Date('2026-03-01T00:00:00Z')];
    let i = 0;
    const v = await openVault({ stateDir: state, prefer: 'file', env: NO_BUS, now: () => t[Math.min(i++, 2)]! });
    assert.equal(v.backend, 'encrypted-file');
    assert.deepEqual(await v.list(), []);
    assert.equal(await v.get('github'), null);

    const every = Buffer.from(Array.from({ length: 256 }, (_, n) => n));
    const m1 = await v.set('github', every, { description: 'all bytes' });
    assert.deepEqual(m1, { name: 'github', createdAt: t[0]!.toISOString(), rotatedAt: null, bytes: 256, backend: 'encrypted-file', description: 'all bytes' });
    assert.deepEqual(await v.get('github'), every);
    assert.deepEqual(await v.meta('github'), m1);

    const m2 = await v.rotate('github', Buffer.from('second'));
    assert.equal(m2.createdAt, t[0]!.toISOString(), 'rotate keeps createdAt');
    assert.equal(m2.rotatedAt, t[1]!.toISOString());
    assert.equal(m2.description, 'all bytes', 'rotate keeps the description unless given');
    assert.equal((await v.get('github'))!.toString(), 'second');

    const m3 = await v.set('github', Buffer.from('third'));
    assert.equal(m3.createdAt, t[2]!.toISOString(), 'set replaces as a new secret');
    assert.equal(m3.rotatedAt, null);
    assert.equal(m3.description, null);

    await v.set('aws.prod', Buffer.from('x'));
    assert.deepEqual((await v.list()).map((m) => m.name), ['aws.prod', 'github']);

    const exists = await rejection(v.set('github', Buffer.from('y'), { exclusive: true }));
    assert.equal(exists.code, 'CORDON_SECRET');
    assert.equal(exists.detail.reason, 'exists');
    assert.equal((await v.get('github'))!.toString(), 'third', 'a refused set changes nothing');

    const missing = await rejection(v.rotate('nope', Buffer.from('y')));
    assert.equal(missing.detail.reason, 'not-found');

    assert.equal(await v.delete('github'), true);
    assert.equal(await v.delete('github'), false);
    assert.equal(await v.get('github'), null);
    assert.deepEqual((await v.list()).map((m) => m.name), ['aws.prod']);
    v.close();

    const again = await openFile(state);
    assert.equal((await again.get('aws.prod'))!.toString(), 'x', 'a second instance reads what the first wrote');
  });

  test('refuses bad names, empty and oversized values, without echoing them', async () => {
    const v = await openFile(stateDir());
    for (const name of ['', 'UPPER', '../escape', '.hidden', 'a/b', 'x'.repeat(65), 'ghp_TOKENlookingTHING']) {
      const e = await rejection(v.set(name, Buffer.from('v')));
      assert.equal(e.code, 'CORDON_USAGE');
      assert.equal(e.detail.reason, 'invalid-name');
      if (name.length > 3) assert.ok(!e.message.includes(name), 'an invalid name is not echoed');
    }
    assert.equal((await rejection(v.set('ok', Buffer.alloc(0)))).detail.reason, 'empty-value');
    assert.equal((await rejection(v.set('ok', Buffer.alloc((1 << 20) + 1)))).detail.reason, 'too-large');
    assert.equal((await rejection(v.set('ok', Buffer.from('v'), { description: 'bell\x07' }))).detail.reason, 'invalid-description');
    assert.deepEqual(await v.list(), []);
  });

  test('layout: 0700 directories, 0600 files, a 32-byte key', async () => {
    const state = stateDir();
    const v = await openFile(state);
    await v.set('one', Buffer.from('1'));
    const L = vaultLayout(state);
    for (const d of [L.dir, L.encryptedDir]) assert.equal(statSync(d).mode & 0o777, 0o700, d);
    for (const f of allFiles(L.dir)) assert.equal(statSync(f).mode & 0o777, 0o600, f);
    assert.equal(readFileSync(L.keyFile).length, 32);
    assert.ok(!existsSync(L.keyRefFile));
    assert.match(v.location, /key in .*vault\.key/);
    const rec = JSON.parse(readFileSync(join(L.encryptedDir, 'one.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(rec.alg, 'A256GCM');
    assert.equal(Buffer.from(rec.nonce as string, 'base64').length, 12);
    assert.equal(Buffer.from(rec.tag as string, 'base64').length, 16);
    // A fresh nonce per write, even for the same value.
    await v.set('one', Buffer.from('1'));
    const rec2 = JSON.parse(readFileSync(join(L.encryptedDir, 'one.json'), 'utf8')) as Record<string, unknown>;
    assert.notEqual(rec2.nonce, rec.nonce);
  });

  test('no value bytes in any vault file, metadata or listing', async () => {
    const state = stateDir();
    const v = await openFile(state);
    const { value, forms } = distinctive();
    await v.set('canary', value, { description: 'a test' });
    await v.rotate('canary', value);
    for (const f of allFiles(vaultLayout(state).dir)) {
      const bytes = readFileSync(f);
      for (const form of forms) assert.equal(bytes.indexOf(form), -1, `value bytes in ${f}`);
    }
    assertNoValue(JSON.stringify(await v.list()), value, 'list()');
    assertNoValue(JSON.stringify(await v.meta('canary')), value, 'meta()');
    assertNoValue(v.location, value, 'location');
  });
});

describe('encrypted-file vault: tamper detection', () => {
  async function setUp() {
    const state = stateDir();
    const v = await openFile(state);
    const { value } = distinctive();
    await v.set('alpha', value, { description: 'first' });
    await v.set('beta', Buffer.from('beta-value'));
    const file = (n: string) => join(vaultLayout(state).encryptedDir, `${n}.json`);
    return { state, v, value, file };
  }

  test('every flipped byte of a secret file is an error naming the secret, never the value', async () => {
    const { state, value, file } = await setUp();
    const original = readFileSync(file('alpha'));
    for (let i = 0; i < original.length; i++) {
      const bad = Buffer.from(original);
      bad[i] = bad[i]! ^ 0xff;
      writeFileSync(file('alpha'), bad);
      const v = await openFile(state);
      const e = await rejection(v.get('alpha'));
      assert.equal(e.code, 'CORDON_SECRET', `byte ${i}`);
      assert.ok(['corrupt', 'tampered'].includes(e.detail.reason as string), `byte ${i}: ${String(e.detail.reason)}`);
      assert.match(e.message, /secret alpha/);
      assertNoValue(errorText(e), value, `the error for byte ${i}`);
    }
    writeFileSync(file('alpha'), original);
    assert.deepEqual(await (await openFile(state)).get('alpha'), value);
  });

  test('a flipped ciphertext or tag bit fails authentication', async () => {
    const { v, value, file } = await setUp();
    const original = readFileSync(file('alpha'), 'utf8');
    for (const field of ['ciphertext', 'tag', 'nonce'] as const) {
      const rec = JSON.parse(original) as Record<string, string>;
      const raw = Buffer.from(rec[field]!, 'base64');
      raw[raw.length >> 1] = raw[raw.length >> 1]! ^ 0x01;
      rec[field] = raw.toString('base64');
      writeFileSync(file('alpha'), JSON.stringify(rec));
      const e = await rejection(v.get('alpha'));
      assert.equal(e.detail.reason, 'tampered', field);
      assert.match(e.message, /secret alpha.*integrity/);
      assertNoValue(errorText(e), value, 'error');
    }
  });

  test('metadata is authenticated: an edited description or date fails', async () => {
    const { v, file } = await setUp();
    const rec = JSON.parse(readFileSync(file('alpha'), 'utf8')) as Record<string, unknown>;
    writeFileSync(file('alpha'), JSON.stringify({ ...rec, description: 'edited' }));
    assert.equal((await rejection(v.get('alpha'))).detail.reason, 'tampered');
    writeFileSync(file('alpha'), JSON.stringify({ ...rec, createdAt: '2020-01-01T00:00:00.000Z' }));
    assert.equal((await rejection(v.get('alpha'))).detail.reason, 'tampered');
  });

  test('swapping two files is detected, whether or not the name inside is edited', async () => {
    const { v, file } = await setUp();
    const a = readFileSync(file('alpha'));
    const b = readFileSync(file('beta'));
    writeFileSync(file('alpha'), b);
    writeFileSync(file('beta'), a);
    for (const n of ['alpha', 'beta']) {
      const e = await rejection(v.get(n));
      assert.equal(e.detail.reason, 'tampered');
      assert.match(e.message, new RegExp(`secret ${n}: .*another secret`));
    }
    // The attacker also rewrites the name field: the AAD still binds the ciphertext to "alpha".
    const rec = JSON.parse(a.toString()) as Record<string, unknown>;
    writeFileSync(file('beta'), JSON.stringify({ ...rec, name: 'beta' }));
    const e = await rejection(v.get('beta'));
    assert.equal(e.detail.reason, 'tampered');
    assert.match(e.message, /secret beta/);
  });

  test('truncation at any length is an error', async () => {
    const { v, value, file } = await setUp();
    const full = readFileSync(file('alpha'));
    for (const len of [0, 1, full.length >> 2, full.length >> 1, full.length - 40, full.length - 2]) {
      writeFileSync(file('alpha'), full.subarray(0, len));
      const e = await rejection(v.get('alpha'));
      assert.equal(e.code, 'CORDON_SECRET', `length ${len}`);
      assert.match(e.message, /secret alpha/);
      assertNoValue(errorText(e), value, 'error');
    }
    // list reports the broken record by name instead of crashing.
    const e = await rejection(v.list());
    assert.match(e.message, /secret alpha/);
    // The ways out: add --force (set) replaces it, delete removes it.
    await v.set('alpha', Buffer.from('fresh'));
    assert.equal((await v.get('alpha'))!.toString(), 'fresh');
    truncateSync(file('alpha'), 3);
    assert.equal(await v.delete('alpha'), true);
  });

  test('a wrong or missing key is an error, not garbage', async () => {
    const { state, v } = await setUp();
    const L = vaultLayout(state);
    writeFileSync(L.keyFile, randomBytes(32));
    assert.equal((await rejection((await openFile(state)).get('alpha'))).detail.reason, 'tampered');
    writeFileSync(L.keyFile, randomBytes(31));
    assert.equal((await rejection((await openFile(state)).get('alpha'))).detail.reason, 'corrupt');
    unlinkSync(L.keyFile);
    const e = await rejection((await openFile(state)).get('alpha'));
    assert.equal(e.detail.reason, 'key-missing');
    v.close();
  });
});

describe('encrypted-file vault: permissions', () => {
  const root = process.geteuid?.() === 0;

  test('refuses files and directories other users can reach', async () => {
    const state = stateDir();
    const v = await openFile(state);
    await v.set('one', Buffer.from('1'));
    const L = vaultLayout(state);
    const secretFile = join(L.encryptedDir, 'one.json');

    for (const [path, mode, good] of [
      [secretFile, 0o644, 0o600],
      [secretFile, 0o620, 0o600],
      [L.keyFile, 0o640, 0o600],
      [L.encryptedDir, 0o750, 0o700],
    ] as const) {
      chmodSync(path, mode);
      const e = await rejection((async () => (await openFile(state)).get('one'))());
      assert.equal(e.detail.reason, 'permissions', `${path} ${mode.toString(8)}`);
      assert.ok(e.message.includes(path), e.message);
      assert.match(e.hint ?? '', /chmod/);
      chmodSync(path, good);
    }
    chmodSync(L.dir, 0o755);
    assert.equal((await rejection(openFile(state))).detail.reason, 'permissions');
    chmodSync(L.dir, 0o700);
    assert.equal((await v.get('one'))!.toString(), '1', 'fine again once fixed');
  });

  test('refuses symlinks in place of files or directories', async () => {
    const state = stateDir();
    const v = await openFile(state);
    await v.set('one', Buffer.from('1'));
    await v.set('two', Buffer.from('2'));
    const L = vaultLayout(state);
    const one = join(L.encryptedDir, 'one.json');
    unlinkSync(one);
    symlinkSync(join(L.encryptedDir, 'two.json'), one);
    assert.equal((await rejection(v.get('one'))).detail.reason, 'permissions');
  });

  test('refuses files owned by another user', { skip: !root && !process.env.CI ? 'needs root to chown' : false }, async () => {
    assert.ok(root, 'this test needs root (CI runs as root)');
    const state = stateDir();
    const v = await openFile(state);
    await v.set('one', Buffer.from('1'));
    const L = vaultLayout(state);
    const secretFile = join(L.encryptedDir, 'one.json');
    chownSync(secretFile, 4242, 4242);
    const e = await rejection(v.get('one'));
    assert.equal(e.detail.reason, 'permissions');
    assert.match(e.message, /belongs to uid 4242/);
    chownSync(secretFile, 0, 0);
    chownSync(L.keyFile, 4242, 0);
    assert.equal((await rejection((async () => (await openFile(state)).get('one'))())).detail.reason, 'permissions');
    chownSync(L.keyFile, 0, 0);
    chownSync(L.dir, 4242, 0);
    assert.equal((await rejection(openFile(state))).detail.reason, 'permissions');
  });

  test('creates what it needs with private modes, whatever the umask', async () => {
    const state = stateDir();
    const old = process.umask(0o000);
    try {
      const v = await openFile(state);
      await v.set('one', Buffer.from('1'));
    } finally {
      process.umask(old);
    }
    const L = vaultLayout(state);
    for (const d of [L.dir, L.encryptedDir]) assert.equal(statSync(d).mode & 0o777, 0o700);
    for (const f of allFiles(L.dir)) assert.equal(statSync(f).mode & 0o777, 0o600);
  });
});

// ---- many processes ----

const VAULT_MODULE = new URL('../../src/broker/vault/index.ts', import.meta.url).href;

/** Run a small ESM program in a child process with the vault module loaded as `openVault`. */
function child(code: string, args: unknown) {
  const program = `import { openVault } from ${JSON.stringify(VAULT_MODULE)};\nconst args = JSON.parse(process.argv[1]);\n${code}`;
  return spawn(process.execPath, ['--input-type=module', '-e', program, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function exited(c: ReturnType<typeof child>): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  let stderr = '';
  c.stderr!.on('data', (d: Buffer) => (stderr += d));
  return new Promise((resolve) => c.on('exit', (code, signal) => resolve({ code, signal, stderr })));
}

describe('encrypted-file vault: atomicity and concurrency', () => {
  test('SIGKILL mid-write leaves the old value or the new one', async () => {
    const state = stateDir();
    const size = 256 * 1024;
    const A = Buffer.alloc(size, 'a');
    const B = Buffer.alloc(size, 'b');
    const v = await openFile(state);
    await v.set('big', A);
    for (let round = 0; round < 12; round++) {
      const real = child(
        `const v = await openVault({ stateDir: args.state, prefer: 'file', env: {} });
         process.stdout.write('ready\\n');
         for (let i = 0; ; i++) await v.set('big', Buffer.alloc(args.size, i % 2 ? 'a' : 'b'));`,
        { state, size },
      );
      await new Promise<void>((resolve) => real.stdout!.once('data', () => resolve()));
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 150));
      real.kill('SIGKILL');
      await new Promise((r) => real.on('exit', r));
      const value = await (await openFile(state)).get('big');
      assert.ok(value, `round ${round}: the secret survived`);
      assert.ok(value.equals(A) || value.equals(B), `round ${round}: old or new value, nothing in between`);
    }
    // The next writer breaks the dead writer's lock and sweeps its temporary files.
    await v.set('big', Buffer.from('after'));
    assert.equal((await v.get('big'))!.toString(), 'after');
    const leftovers = readdirSync(vaultLayout(state).encryptedDir).filter((n) => n.endsWith('.tmp'));
    assert.deepEqual(leftovers, []);
    assert.ok(!existsSync(join(vaultLayout(state).dir, '.lock')), 'lock released');
  });

  test('concurrent writers in several processes lose nothing', async () => {
    const state = stateDir();
    // The key is made by whichever process writes first: no pre-created key.
    const writers = Array.from({ length: 4 }, (_, w) =>
      exited(
        child(
          `const v = await openVault({ stateDir: args[0], prefer: 'file', env: {} });
           for (let i = 0; i < 10; i++) {
             await v.set('w' + args[1] + '-' + i, Buffer.from('value-' + args[1] + '-' + i));
             await v.set('shared', Buffer.from('shared-' + args[1] + '-' + i));
           }`,
          [state, String(w)],
        ),
      ),
    );
    for (const r of await Promise.all(writers)) assert.equal(r.code, 0, r.stderr);
    const v = await openFile(state);
    const names = (await v.list()).map((m) => m.name);
    assert.equal(names.length, 41);
    for (let w = 0; w < 4; w++) for (let i = 0; i < 10; i++) assert.equal((await v.get(`w${w}-${i}`))!.toString(), `value-${w}-${i}`);
    assert.match((await v.get('shared'))!.toString(), /^shared-\d-\d$/);
    const shared = await v.meta('shared');
    assert.equal(shared!.bytes, (await v.get('shared'))!.length, 'metadata matches the value that won');
  });

  test('concurrent calls on one instance and across instances in one process', async () => {
    const state = stateDir();
    const [v1, v2] = await Promise.all([openFile(state), openFile(state)]);
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? v1 : v2).set(`n${i}`, Buffer.from(`v${i}`), { exclusive: true })));
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => v1.set('once', Buffer.from('x'), { exclusive: true })));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'exclusive create: exactly one wins');
    assert.equal((await v2.list()).length, 21);
    for (let i = 0; i < 20; i++) assert.equal((await v2.get(`n${i}`))!.toString(), `v${i}`);
  });
});

describe('choosing a backend', () => {
  test('auto without a session bus is the encrypted file', async () => {
    const v: Vault = await openVault({ stateDir: stateDir(), env: NO_BUS });
    assert.equal(v.backend, 'encrypted-file');
  });

  test('keyring without a Secret Service fails with a reason and a fix', async () => {
    const e = await rejection(openVault({ stateDir: stateDir(), prefer: 'keyring', env: NO_BUS }));
    assert.equal(e.code, 'CORDON_SECRET');
    assert.equal(e.detail.reason, 'unavailable');
    assert.match(e.message, /no Secret Service is available: no D-Bus session bus/);
    assert.match(e.hint ?? '', /--vault file/);
  });

  test('an unknown backend is a usage error', async () => {
    const e = await rejection(openVault({ stateDir: stateDir(), prefer: 'floppy' as 'file' }));
    assert.equal(e.code, 'CORDON_USAGE');
  });

  test('a vault whose secrets are in one backend refuses the other', async () => {
    const state = stateDir();
    const v = await openFile(state);
    await v.set('one', Buffer.from('1'));
    const e = await rejection(openVault({ stateDir: state, prefer: 'keyring', env: NO_BUS }));
    assert.equal(e.detail.reason, 'backend-mismatch');
    assert.match(e.hint ?? '', /--vault file/);
    // Secrets in both (only by hand): auto refuses to guess.
    const L = vaultLayout(state);
    mkdirSync(L.keyringDir, { mode: 0o700 });
    writeFileSync(join(L.keyringDir, 'two.json'), '{}', { mode: 0o600 });
    assert.equal((await rejection(openVault({ stateDir: state, env: NO_BUS }))).detail.reason, 'backend-mismatch');
  });
});

describe('Secret Service probe', () => {
  test('parses D-Bus addresses', () => {
    assert.equal(busSocketPath('unix:path=/run/user/1000/bus'), '/run/user/1000/bus');
    assert.equal(busSocketPath('unix:abstract=/tmp/dbus-x,guid=ab'), '\0/tmp/dbus-x');
    assert.equal(busSocketPath('tcp:host=localhost,port=1;unix:path=/a%20b'), '/a b');
    assert.equal(busSocketPath('tcp:host=localhost,port=1'), null);
  });

  test('no bus, a dead socket, an unsupported address: unavailable, quickly', async () => {
    assert.equal((await probeSecretService({})).ok, false);
    const dead = await probeSecretService({ DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(tmpdir(), 'cordon-no-such-bus')}` });
    assert.equal(dead.ok, false);
    assert.match(dead.reason, /ENOENT/);
    assert.match((await probeSecretService({ DBUS_SESSION_BUS_ADDRESS: 'tcp:host=127.0.0.1,port=9' })).reason, /unsupported/);
  });

  test('a bus that accepts and never answers times out instead of hanging', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-bus-'));
    roots.push(dir);
    const path = join(dir, 'bus');
    const server = createServer(() => {}).listen(path);
    await new Promise((r) => server.once('listening', r));
    try {
      const t0 = Date.now();
      const r = await probeSecretService({ DBUS_SESSION_BUS_ADDRESS: `unix:path=${path}` }, 300);
      assert.equal(r.ok, false);
      assert.match(r.reason, /no answer within 300 ms/);
      assert.ok(Date.now() - t0 < 2000);
      // openVault falls back to the file store when the probe fails.
      const v = await openVault({ stateDir: stateDir(), env: { DBUS_SESSION_BUS_ADDRESS: `unix:path=${path}` } });
      assert.equal(v.backend, 'encrypted-file');
    } finally {
      server.close();
    }
  });
});
