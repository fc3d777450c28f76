// The keyring backend, and the encrypted-file backend's key kept in the
// keyring, against a real Secret Service: gnome-keyring-daemon on a private
// session bus (dbus-run-session) with a throwaway HOME. No mocks. The bus and
// the daemon end when this test process does (their stdin closes).

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openVault, probeSecretService, vaultLayout } from '../../src/broker/vault/index.ts';
import { KEY_SERVICE, SecretServiceClient, VALUE_SERVICE } from '../../src/broker/vault/secret-service.ts';
import { CordonError } from '../../src/errors.ts';

const roots: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  roots.push(d);
  return d;
}
const stateDir = () => join(tempDir('cordon-vault-kr-'), 'state');

interface SecretService {
  address: string;
  home: string;
  stop(): Promise<void>;
}

/**
 * A session bus with gnome-keyring on it. `unlock`: start the daemon with a
 * login keyring (created and unlocked with a throwaway password); otherwise
 * leave it to D-Bus activation, which starts a daemon with no default keyring.
 */
async function startSecretService(unlock: boolean): Promise<SecretService> {
  const missing = ['dbus-run-session', 'gnome-keyring-daemon'].filter((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status !== 0);
  if (missing.length > 0) {
    assert.fail(`${missing.join(' and ')} not found: the keyring tests need a real Secret Service. Install it: apt-get install -y gnome-keyring dbus`);
  }
  const home = tempDir('cordon-kr-home-');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_DATA_HOME: join(home, 'data'),
    XDG_CONFIG_HOME: join(home, 'config'),
    XDG_CACHE_HOME: join(home, 'cache'),
    XDG_RUNTIME_DIR: join(home, 'run'),
  };
  for (const d of ['data', 'config', 'cache', 'run']) mkdirSync(join(home, d), { mode: 0o700 });
  const start = unlock ? `printf throwaway | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1 || exit 3; ` : '';
  // `cat` holds the session open until our end of its stdin closes.
  const child: ChildProcess = spawn('dbus-run-session', ['--', 'sh', '-c', `${start}echo "BUS=$DBUS_SESSION_BUS_ADDRESS"; exec cat >/dev/null`], {
    env,
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('the Secret Service did not start within 10 s')), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      const m = /BUS=(\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`dbus-run-session exited (${code}) before the bus was up`)));
  });
  return {
    address,
    home,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.on('exit', () => resolve());
        child.stdin!.end();
      }),
  };
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

function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...allFiles(p));
    else out.push(p);
  }
  return out;
}

let ss: SecretService;
before(async () => {
  ss = await startSecretService(true);
  // The native library reads this process's environment.
  process.env.DBUS_SESSION_BUS_ADDRESS = ss.address;
});
after(async () => {
  await ss?.stop();
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

describe('keyring backend (real gnome-keyring)', () => {
  test('the probe finds it', async () => {
    const p = await probeSecretService(process.env);
    assert.equal(p.ok, true, p.reason);
  });

  test('auto on an empty vault picks the keyring; round trip, list, rotate, delete', async () => {
    const state = stateDir();
    const v = await openVault({ stateDir: state });
    assert.equal(v.backend, 'keyring');
    assert.match(v.location, /Secret Service/);
    const every = Buffer.from(Array.from({ length: 256 }, (_, n) => n));
    const m1 = await v.set('kr-bytes', every, { description: 'binary' });
    assert.equal(m1.backend, 'keyring');
    assert.equal(m1.bytes, 256);
    assert.deepEqual(await v.get('kr-bytes'), every);
    assert.deepEqual(await new SecretServiceClient().get(VALUE_SERVICE, 'kr-bytes'), every, 'the value is in the keyring itself');

    const m2 = await v.rotate('kr-bytes', Buffer.from('rotated'));
    assert.equal(m2.createdAt, m1.createdAt);
    assert.ok(m2.rotatedAt);
    assert.equal(m2.description, 'binary');
    assert.equal((await v.get('kr-bytes'))!.toString(), 'rotated');
    assert.deepEqual((await v.list()).map((m) => [m.name, m.bytes, m.backend]), [['kr-bytes', 7, 'keyring']]);
    assert.equal((await rejection(v.set('kr-bytes', Buffer.from('x'), { exclusive: true }))).detail.reason, 'exists');

    assert.equal(await v.delete('kr-bytes'), true);
    assert.equal(await v.get('kr-bytes'), null);
    assert.equal(await new SecretServiceClient().get(VALUE_SERVICE, 'kr-bytes'), null, 'delete removes it from the keyring');
    assert.equal(await v.delete('kr-bytes'), false);
  });

  test('metadata files hold no value bytes; 0700/0600', async () => {
    const state = stateDir();
    const v = await openVault({ stateDir: state, prefer: 'keyring' });
    const value = Buffer.from(`cordon-canary-${randomBytes(12).toString('hex')}`);
    await v.set('kr-canary', value, { description: 'd' });
    const L = vaultLayout(state);
    const files = allFiles(L.dir);
    assert.ok(files.some((f) => f.endsWith('keyring/kr-canary.json')));
    for (const f of files) {
      const bytes = readFileSync(f);
      for (const form of [value, Buffer.from(value.toString('base64')), Buffer.from(value.toString('hex'))]) assert.equal(bytes.indexOf(form), -1, f);
    }
    assert.equal(statSync(L.keyringDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(L.keyringDir, 'kr-canary.json')).mode & 0o777, 0o600);
    await v.delete('kr-canary');
  });

  test('a value deleted from the keyring behind cordon is an error naming the secret', async () => {
    const v = await openVault({ stateDir: stateDir(), prefer: 'keyring' });
    await v.set('kr-gone', Buffer.from('soon gone'));
    await new SecretServiceClient().delete(VALUE_SERVICE, 'kr-gone');
    const e = await rejection(v.get('kr-gone'));
    assert.equal(e.detail.reason, 'corrupt');
    assert.match(e.message, /secret kr-gone is listed .* missing from the Secret Service/);
    assert.equal(await v.delete('kr-gone'), true, 'rm still cleans up');
  });

  test('concurrent writers across instances', async () => {
    const state = stateDir();
    const [a, b] = await Promise.all([openVault({ stateDir: state }), openVault({ stateDir: state })]);
    await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).set(`kr-c${i}`, Buffer.from(`v${i}`))));
    assert.equal((await a.list()).length, 10);
    for (let i = 0; i < 10; i++) assert.equal((await b.get(`kr-c${i}`))!.toString(), `v${i}`);
    for (let i = 0; i < 10; i++) await a.delete(`kr-c${i}`);
  });

  test('auto follows the secrets: a file vault stays a file vault', async () => {
    const state = stateDir();
    const f = await openVault({ stateDir: state, prefer: 'file' });
    await f.set('kept', Buffer.from('in the file'));
    const auto = await openVault({ stateDir: state });
    assert.equal(auto.backend, 'encrypted-file');
    assert.equal((await auto.get('kept'))!.toString(), 'in the file');
    const e = await rejection(openVault({ stateDir: state, prefer: 'keyring' }));
    assert.equal(e.detail.reason, 'backend-mismatch');
  });

  test('encrypted-file backend: the key is kept in the keyring, not in vault.key', async () => {
    const state = stateDir();
    const v = await openVault({ stateDir: state, prefer: 'file' });
    await v.set('filed', Buffer.from('sealed'));
    const L = vaultLayout(state);
    assert.ok(!existsSync(L.keyFile), 'no key file');
    const ref = JSON.parse(readFileSync(L.keyRefFile, 'utf8')) as { service: string; account: string };
    assert.equal(ref.service, KEY_SERVICE);
    const key = await new SecretServiceClient().get(KEY_SERVICE, ref.account);
    assert.equal(key?.length, 32);
    assert.match(v.location, /key in the Secret Service/);
    v.close();
    assert.equal((await (await openVault({ stateDir: state, prefer: 'file' })).get('filed'))!.toString(), 'sealed');

    // Without the keyring the key, and so the vault, is unavailable: a clear error, not a hang.
    const noBus = await openVault({ stateDir: state, prefer: 'file', env: {} });
    const e = await rejection(noBus.get('filed'));
    assert.equal(e.detail.reason, 'unavailable');
    assert.match(e.message, /vault key is kept in the Secret Service, which is not available/);

    // The key deleted from the keyring: said so.
    await new SecretServiceClient().delete(KEY_SERVICE, ref.account);
    assert.equal((await rejection((await openVault({ stateDir: state, prefer: 'file' })).get('filed'))).detail.reason, 'key-missing');
  });

  test('a vault on the keyring, opened where there is none: error with a fix', async () => {
    const state = stateDir();
    const v = await openVault({ stateDir: state });
    await v.set('kr-here', Buffer.from('x'));
    const e = await rejection(openVault({ stateDir: state, env: {} }));
    assert.equal(e.detail.reason, 'unavailable');
    assert.match(e.message, /keeps its secrets in the Secret Service, which is not available/);
    assert.match(e.hint ?? '', /DBUS_SESSION_BUS_ADDRESS|desktop session|dbus-run-session/);
    await v.delete('kr-here');
  });
});

describe('a Secret Service without a default keyring', () => {
  test('probe says why; prefer keyring fails clearly; auto falls back to the file', async () => {
    const bare = await startSecretService(false);
    try {
      const p = await probeSecretService({ DBUS_SESSION_BUS_ADDRESS: bare.address });
      assert.equal(p.ok, false);
      assert.match(p.reason, /no default keyring/);
      // openVault reads the bus from the process environment for the native library: swap it for this test.
      const saved = process.env.DBUS_SESSION_BUS_ADDRESS;
      process.env.DBUS_SESSION_BUS_ADDRESS = bare.address;
      try {
        const e = await rejection(openVault({ stateDir: stateDir(), prefer: 'keyring' }));
        assert.equal(e.detail.reason, 'unavailable');
        assert.match(e.message, /no default keyring/);
        assert.match(e.hint ?? '', /--vault file/);
        const v = await openVault({ stateDir: stateDir() });
        assert.equal(v.backend, 'encrypted-file');
      } finally {
        process.env.DBUS_SESSION_BUS_ADDRESS = saved;
      }
    } finally {
      await bare.stop();
    }
  });
});
