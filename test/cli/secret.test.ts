// `cordon secret` end to end, through the shipped bundle: values in by stdin,
// file, environment and a terminal prompt; metadata out; errors; and the
// value never in any command's stdout or stderr, the vault's metadata or the
// audit log's bytes.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { assertFreshBuild, CORDON, cordonSync, isolated, type Result } from '../helpers/cordon.ts';

before(() => assertFreshBuild());

function setUp() {
  const iso = isolated();
  // No session bus: the encrypted-file backend, whatever the machine has.
  delete iso.env.DBUS_SESSION_BUS_ADDRESS;
  const state = iso.env.CORDON_STATE_DIR!;
  const outputs: Result[] = [];
  const run = (args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}) => {
    const r = cordonSync(args, { env: { ...iso.env, ...opts.env }, input: opts.input ?? '' });
    outputs.push(r);
    return r;
  };
  const json = (r: Result) => JSON.parse(r.stdout) as Record<string, unknown>;
  return { iso, state, run, json, outputs };
}

const canary = () => `cordon-canary-${randomBytes(12).toString('hex')}`;

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/** No value, nor its base64/hex, in any output or in any file of the state directory (vault, audit.db and its WAL). */
function assertNowhere(values: string[], outputs: Result[], state: string): void {
  const forms = values.flatMap((v) => [v, Buffer.from(v).toString('base64'), Buffer.from(v).toString('hex')]);
  for (const r of outputs) for (const f of forms) assert.ok(!r.stdout.includes(f) && !r.stderr.includes(f), `a value leaked into output:\n${r.stdout}\n${r.stderr}`);
  const files = filesUnder(state).filter((f) => !f.includes('/cache/'));
  assert.ok(files.some((f) => f.endsWith('audit.db')), 'the audit log exists');
  for (const file of files) {
    const bytes = readFileSync(file);
    for (const f of forms) assert.equal(bytes.indexOf(Buffer.from(f)), -1, `a value in ${file}`);
  }
}

describe('cordon secret', () => {
  test('add from stdin, a file and the environment; list; rotate; rm', () => {
    const { iso, state, run, json, outputs } = setUp();
    const [v1, v2, v3, v4] = [canary(), canary(), canary(), canary()];

    let r = run(['secret', 'add', 'github', '--description', 'GitHub, personal'], { input: `${v1}\n` });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /added secret github: \d+ bytes in the encrypted-file vault \(one final newline dropped; --raw keeps it\)/);

    const file = join(iso.root, 'token.txt');
    writeFileSync(file, `${v2}\n\n`);
    r = run(['secret', 'add', 'openai', '--from-file', file, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const added = json(r) as { action: string; secret: { name: string; bytes: number; backend: string } };
    assert.equal(added.action, 'added');
    assert.equal(added.secret.bytes, v2.length + 1, 'exactly one final newline dropped');

    r = run(['secret', 'add', 'anthropic', '--from-env', 'MY_KEY', '--json'], { env: { MY_KEY: `${v3}\n` } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((json(r) as { secret: { bytes: number } }).secret.bytes, v3.length + 1, 'environment values are kept as they are');

    r = run(['secret', 'add', 'raw', '--raw', '--json'], { input: `${v4}\n` });
    assert.equal((json(r) as { secret: { bytes: number } }).secret.bytes, v4.length + 1, '--raw keeps the newline');

    r = run(['secret', 'list', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const listed = json(r) as { backend: string; location: string; secrets: { name: string; bytes: number; description: string | null; createdAt: string; rotatedAt: string | null }[] };
    assert.equal(listed.backend, 'encrypted-file');
    assert.deepEqual(
      listed.secrets.map((s) => s.name),
      ['anthropic', 'github', 'openai', 'raw'],
    );
    const gh = listed.secrets.find((s) => s.name === 'github')!;
    assert.deepEqual(Object.keys(gh).sort(), ['backend', 'bytes', 'createdAt', 'description', 'name', 'rotatedAt']);
    assert.equal(gh.bytes, v1.length);
    assert.equal(gh.description, 'GitHub, personal');

    r = run(['secret', 'list']);
    assert.match(r.stdout, /NAME\s+BYTES\s+CREATED\s+ROTATED\s+DESCRIPTION/);
    assert.match(r.stdout, /github\s+\d+\s+\S+\s+-\s+GitHub, personal/);

    const v5 = canary();
    r = run(['secret', 'rotate', 'github', '--json'], { input: v5 });
    assert.equal(r.status, 0, r.stderr);
    const rotated = json(r) as { action: string; secret: { createdAt: string; rotatedAt: string; description: string; bytes: number } };
    assert.equal(rotated.action, 'rotated');
    assert.equal(rotated.secret.createdAt, gh.createdAt, 'created is kept');
    assert.ok(rotated.secret.rotatedAt >= gh.createdAt);
    assert.equal(rotated.secret.description, 'GitHub, personal');
    assert.equal(rotated.secret.bytes, v5.length);

    r = run(['secret', 'add', 'github', '--force'], { input: canary() });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /replaced secret github/);

    r = run(['secret', 'rm', 'openai']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /removed secret openai/);
    r = run(['secret', 'rm', 'raw', '--json']);
    assert.deepEqual(json(r), { action: 'removed', name: 'raw', backend: 'encrypted-file' });
    assert.deepEqual(
      (json(run(['secret', 'list', '--json'])) as { secrets: { name: string }[] }).secrets.map((s) => s.name),
      ['anthropic', 'github'],
    );

    // Every change is in the audit log, by name.
    r = run(['audit', 'tail', '--json', '-n', '50']);
    assert.equal(r.status, 0, r.stderr);
    const types = r.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { type: string }).type)
      .filter((t) => t.startsWith('secret.'));
    assert.deepEqual(types, ['secret.added', 'secret.added', 'secret.added', 'secret.added', 'secret.rotated', 'secret.replaced', 'secret.removed', 'secret.removed']);

    assertNowhere([v1, v2, v3, v4, v5], outputs, state);
  });

  test('errors: unknown names, taken names, empty values, unset variables, values on the command line', () => {
    const { iso, state, run, json, outputs } = setUp();
    const v = canary();
    assert.equal(run(['secret', 'add', 'taken'], { input: v }).status, 0);

    let r = run(['secret', 'add', 'taken'], { input: canary() });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /secret taken already exists/);
    assert.match(r.stderr, /cordon secret rotate taken/);

    r = run(['secret', 'rm', 'nope', '--json']);
    assert.equal(r.status, 1);
    const err = JSON.parse(r.stderr) as { error: { code: string; reason: string; message: string } };
    assert.equal(err.error.code, 'CORDON_SECRET');
    assert.equal(err.error.reason, 'not-found');
    assert.equal(r.stdout, '');

    r = run(['secret', 'rotate', 'nope'], { input: 'x' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no secret named nope/);
    assert.match(r.stderr, /cordon secret add nope/);

    for (const input of ['', '\n']) {
      r = run(['secret', 'add', 'empty'], { input });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /value for secret empty from stdin is empty; nothing was stored/);
    }
    r = run(['secret', 'add', 'empty', '--raw'], { input: '\n' });
    assert.equal(r.status, 0, '--raw: a lone newline is a value');

    r = run(['secret', 'add', 'fromenv', '--from-env', 'CORDON_TEST_UNSET_VAR']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /environment variable CORDON_TEST_UNSET_VAR is not set; nothing was stored/);
    r = run(['secret', 'add', 'fromenv', '--from-env', 'EMPTY_VAR'], { env: { EMPTY_VAR: '' } });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /is empty/);

    r = run(['secret', 'add', 'fromfile', '--from-file', join(iso.root, 'missing.txt')]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot read .*missing\.txt: ENOENT/);
    r = run(['secret', 'add', 'both', '--from-file', 'a', '--from-env', 'B']);
    assert.equal(r.status, 2);

    // A value typed on the command line: refused, not stored, not repeated.
    // (Upper case: typed where the name belongs, it is not a valid name either.)
    const inline = `CordonCanary${randomBytes(12).toString('hex')}`;
    for (const args of [
      ['secret', 'add', 'inline', inline],
      ['secret', 'add', 'inline', `--value=${inline}`],
      ['secret', 'add', 'inline', '--token', inline],
      ['secret', 'rotate', 'taken', inline],
    ]) {
      r = run(args, { input: 'stdin-value' });
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, /values are never taken on the command line/);
    }
    r = run(['secret', 'add', inline], { input: 'x' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /invalid secret name/);
    assert.deepEqual(
      (json(run(['secret', 'list', '--json'])) as { secrets: { name: string }[] }).secrets.map((s) => s.name),
      ['empty', 'taken'],
      'nothing was stored by the refused commands',
    );

    r = run(['secret', 'add', '--help']);
    assert.match(r.stdout, /deliberately no option or argument for the value/);

    r = run(['secret', 'list', '--vault', 'keyring']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /this vault keeps its 2 secret\(s\) in the encrypted file; cordon uses one backend at a time/);
    const fresh = setUp();
    r = fresh.run(['secret', 'add', 'k', '--vault', 'keyring'], { input: 'x' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no Secret Service is available: no D-Bus session bus/);
    assert.match(r.stderr, /hint: .*--vault file/);

    assertNowhere([v, inline], outputs, state);
  });

  test('a terminal prompt does not echo, and takes the line as typed', { skip: spawnSync('python3', ['-c', '1']).status !== 0 ? 'needs python3 for a pty' : false }, () => {
    const { iso, run } = setUp();
    const value = canary();
    // python3's pty: type the value (with a typo fixed by backspace), then Enter.
    const driver = `
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b''
def drain(t):
    global out
    end = time.time() + t
    while time.time() < end:
        try:
            import select
            r, _, _ = select.select([fd], [], [], 0.05)
            if r: out += os.read(fd, 4096)
        except OSError:
            return
drain(1.0)
os.write(fd, sys.stdin.buffer.read() + b'X\\x7f\\r')
drain(3.0)
os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
`;
    const r = spawnSync('python3', ['-c', driver, CORDON[0]!, ...CORDON.slice(1), 'secret', 'add', 'typed'], { env: iso.env, input: value, encoding: 'utf8', timeout: 30_000 });
    assert.match(r.stdout, /Value for secret typed \(input hidden/);
    assert.match(r.stdout, /added secret/);
    assert.ok(!r.stdout.includes(value), 'the value is not echoed');
    const listed = JSON.parse(run(['secret', 'list', '--json']).stdout) as { secrets: { name: string; bytes: number }[] };
    assert.deepEqual(listed.secrets.map((s) => [s.name, s.bytes]), [['typed', value.length]]);
  });
});
