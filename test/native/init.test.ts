// cordon-init inside a real bwrap sandbox: Landlock --ro/--rw, shell-style
// exit codes, descriptor sealing, and --require-landlock. Every restriction is
// checked against the same command without cordon-init, so a no-op init fails.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { compileSeccompRules } from '../../src/sandbox/seccomp/compile.ts';
import { NATIVE_IN_SANDBOX, bwrapArgs, nativeBin, requireBwrap } from './harness.ts';

const INIT = `${NATIVE_IN_SANDBOX}/cordon-init`;
/** What every test command needs: the system read-only, /dev writable. */
const SYSTEM = ['--ro', '/usr', '--ro', '/bin', '--ro', '/lib', '--ro', '/lib64', '--ro', '/proc', '--ro', NATIVE_IN_SANDBOX, '--rw', '/dev'];
const WORKSPACE = ['--ro', '/work/ro', '--rw', '/work/rw'];

// One line per operation: "name: ok" or "name: <the error message>".
const SCRIPT = `
t() { name=$1; shift; if out=$("$@" 2>&1); then echo "$name: ok"; else echo "$name: $out"; fi; }
t read_ro cat /work/ro/data.txt
t list_ro ls /work/ro
t write_ro sh -c 'echo x > /work/ro/new'
t truncate_ro sh -c ': > /work/ro/data.txt'
t remove_ro rm -f /work/ro/data.txt
t mkdir_ro mkdir /work/ro/d
t write_rw sh -c 'echo x > /work/rw/new && cat /work/rw/new >/dev/null'
t mkdir_rw mkdir /work/rw/d
t rename_rw mv /work/rw/new /work/rw/d/moved
t write_outside sh -c 'echo x > /work/outside'
t list_outside ls /work
t exec_outside /work/other/true
t signal_outside kill -0 1
`;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

describe('cordon-init', () => {
  let host: string;

  before(() => {
    requireBwrap();
    nativeBin('cordon-init');
    nativeBin('seccomp-export');
  });

  // A fresh workspace per run, so one run's writes cannot satisfy another.
  function freshWorkspace(): string {
    host = mkdtempSync(join(tmpdir(), 'cordon-init-'));
    for (const d of ['ro', 'rw', 'other']) mkdirSync(join(host, d));
    writeFileSync(join(host, 'ro', 'data.txt'), 'hello\n');
    writeFileSync(join(host, 'ro', 'not-executable'), '#!/bin/sh\necho hi\n', { mode: 0o644 });
    copyFileSync('/usr/bin/true', join(host, 'other', 'true'));
    chmodSync(join(host, 'other', 'true'), 0o755);
    return host;
  }

  function sandbox(command: string[], opts: { extra?: string[]; fds?: ('ignore' | number)[] } = {}): Run {
    const ws = freshWorkspace();
    const r = spawnSync('bwrap', bwrapArgs(['--bind', ws, '/work', ...(opts.extra ?? [])], command), {
      stdio: ['ignore', 'pipe', 'pipe', ...(opts.fds ?? [])],
      encoding: 'utf8',
      timeout: 30_000,
    });
    rmSync(ws, { recursive: true, force: true });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  function results(r: Run): Record<string, string> {
    assert.equal(r.status, 0, r.stderr);
    return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
  }

  after(() => {
    if (host) rmSync(host, { recursive: true, force: true });
  });

  test('--ro reads, --rw writes, everything else is refused with EACCES', () => {
    const got = results(sandbox([INIT, ...SYSTEM, ...WORKSPACE, '--require-landlock', '--', '/bin/sh', '-c', SCRIPT]));
    assert.equal(got.read_ro, 'ok');
    assert.equal(got.list_ro, 'ok');
    assert.equal(got.write_rw, 'ok');
    assert.equal(got.mkdir_rw, 'ok');
    assert.equal(got.rename_rw, 'ok');
    for (const op of ['write_ro', 'truncate_ro', 'remove_ro', 'mkdir_ro', 'write_outside', 'list_outside', 'exec_outside']) {
      assert.match(got[op] ?? 'missing', /Permission denied/, `${op}: ${got[op]}`);
    }
    // ABI >= 6: signals to processes outside the Landlock domain (bwrap's pid 1).
    assert.match(got.signal_outside ?? 'missing', /not permitted/, `signal_outside: ${got.signal_outside}`);
  });

  test('control: without cordon-init the same operations succeed', () => {
    const got = results(sandbox(['/bin/sh', '-c', SCRIPT]));
    for (const [op, result] of Object.entries(got)) assert.equal(result, 'ok', `${op} should work without Landlock: ${result}`);
  });

  test('paths that do not exist are skipped; relative paths and bad options are refused (125)', () => {
    assert.equal(sandbox([INIT, ...SYSTEM, '--ro', '/no/such/path', '--', '/bin/true']).status, 0);
    const rel = sandbox([INIT, '--ro', 'usr', '--', '/bin/true']);
    assert.equal(rel.status, 125);
    assert.match(rel.stderr, /^cordon-init: --ro wants an absolute path/);
    assert.equal(sandbox([INIT, '--bogus', '--', '/bin/true']).status, 125);
    assert.equal(sandbox([INIT, '--ro', '/usr']).status, 125);
  });

  test('exit codes like a shell: 127 not found, 126 not executable, otherwise the command\'s own', () => {
    const missing = sandbox([INIT, ...SYSTEM, '--', '/no/such/cmd']);
    assert.equal(missing.status, 127);
    assert.equal(missing.stderr, 'cordon: /no/such/cmd: No such file or directory\n');

    const unknown = sandbox([INIT, ...SYSTEM, '--', 'no-such-command']);
    assert.equal(unknown.status, 127);
    assert.equal(unknown.stderr, 'cordon: no-such-command: command not found\n');

    const notExec = sandbox([INIT, ...SYSTEM, ...WORKSPACE, '--', '/work/ro/not-executable']);
    assert.equal(notExec.status, 126);
    assert.equal(notExec.stderr, 'cordon: /work/ro/not-executable: Permission denied\n');

    // Executable file, but Landlock grants no execute right there.
    const landlocked = sandbox([INIT, ...SYSTEM, ...WORKSPACE, '--', '/work/other/true']);
    assert.equal(landlocked.status, 126);
    assert.equal(sandbox([INIT, ...SYSTEM, '--', '/bin/true']).status, 0);

    assert.equal(sandbox([INIT, ...SYSTEM, '--', '/bin/sh', '-c', 'exit 42']).status, 42);
    const out = sandbox([INIT, ...SYSTEM, '--', '/bin/sh', '-c', 'echo "$0 $1"', 'a', 'b c']);
    assert.equal(out.stdout, 'a b c\n');
    assert.equal(sandbox([INIT, ...SYSTEM, '--', '/bin/sh', '-c', 'kill -TERM $$']).status, 128 + 15);
  });

  test('no inherited descriptor survives the exec except 0, 1, 2 and --keep-fd', () => {
    const fd = openSync('/etc/hostname', 'r');
    try {
      // ls lists the shell's descriptors, not its own.
      const list = ['/bin/sh', '-c', 'ls -x /proc/$$/fd'];
      // bwrap itself passes fd 5 (a host file) into the sandbox...
      const direct = sandbox(list, { fds: ['ignore', 'ignore', fd] });
      assert.match(direct.stdout, /\b5\b/, direct.stdout + direct.stderr);
      // ...cordon-init does not.
      assert.equal(sandbox([INIT, ...SYSTEM, '--', ...list], { fds: ['ignore', 'ignore', fd] }).stdout, '0  1  2\n');
      assert.equal(sandbox([INIT, ...SYSTEM, '--keep-fd', '5', '--', ...list], { fds: ['ignore', 'ignore', fd] }).stdout, '0  1  2  5\n');
      const closed = sandbox([INIT, ...SYSTEM, '--keep-fd', '9', '--', '/bin/true']);
      assert.equal(closed.status, 125, 'keeping a descriptor that is not open is an error');
    } finally {
      closeSync(fd);
    }
  });

  test('--require-landlock: exit 125 when the kernel says no; without it, continue unrestricted', async () => {
    // Make landlock_create_ruleset answer ENOSYS, as on a kernel without Landlock.
    const filter = await compileSeccompRules(nativeBin('seccomp-export'), 'default allow\nbadarch kill\ndeny landlock_create_ruleset ENOSYS\n');
    const path = join(mkdtempSync(join(tmpdir(), 'cordon-nolandlock-')), 'f.bpf');
    writeFileSync(path, filter);
    // bwrap reads the filter from the descriptor's offset: one fresh fd per run.
    const withSeccomp = (command: string[]): Run => {
      const fd = openSync(path, 'r');
      try {
        return sandbox(command, { extra: ['--seccomp', '6'], fds: ['ignore', 'ignore', 'ignore', fd] });
      } finally {
        closeSync(fd);
      }
    };
    try {
      const required = withSeccomp([INIT, ...SYSTEM, '--require-landlock', '--', '/bin/true']);
      assert.equal(required.status, 125);
      assert.equal(required.stderr, 'cordon-init: Landlock is required but unavailable: Function not implemented\n');
      const optional = withSeccomp([INIT, ...SYSTEM, '--', '/bin/sh', '-c', 'echo x > /work/outside && echo wrote']);
      assert.equal(optional.status, 0, optional.stderr);
      assert.equal(optional.stdout, 'wrote\n');
    } finally {
      rmSync(path, { force: true });
    }
  });
});
