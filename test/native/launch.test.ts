// cordon-launch on the host: rlimits, cgroup joining, exit status, descriptor
// pass-through, dying with its parent, and the --pty relay driven through a
// real pseudo-terminal (test/native/pty-driver.py, python3's pty support).

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NATIVE_IN_SANDBOX, bwrapArgs, nativeBin, processGone, requireBwrap, sleep } from './harness.ts';

const PYTHON = '/usr/bin/python3';
const DRIVER = fileURLToPath(new URL('./pty-driver.py', import.meta.url));
const PIDS_V1 = '/sys/fs/cgroup/pids';

let LAUNCH: string;

interface DriverResult {
  output: string;
  status: number | null;
  termios_before: unknown[];
  termios_after: unknown[];
  recorded: Record<string, number>;
  error?: string;
}

type Step =
  | { wait_for: string }
  | { poke_until: string; write?: string; every?: number }
  | { wait_dead: string }
  | { write: string }
  | { winsize: [number, number] }
  | { sleep: number }
  | { record_lflag: string }
  | { kill_output_pid: string; signal: number }
  | { wait_restored: number };

/** Runs argv on a fresh pty (the driver is its session leader and terminal). */
function onPty(argv: string[], steps: Step[], opts: { winsize?: [number, number]; env?: NodeJS.ProcessEnv } = {}): DriverResult {
  const r = spawnSync(PYTHON, [DRIVER, JSON.stringify({ argv, steps, winsize: opts.winsize ?? [24, 80], timeout: 20 })], {
    encoding: 'utf8',
    timeout: 30_000,
    env: opts.env ?? process.env,
  });
  assert.equal(r.status, 0, `pty driver failed: ${r.error?.message ?? ''} ${r.stderr}`);
  const res = JSON.parse(r.stdout) as DriverResult;
  assert.equal(res.error, undefined, `pty driver: ${res.error}\noutput so far: ${JSON.stringify(res.output)}`);
  return res;
}

const ICANON = 0o2; // termios.h
const ECHO = 0o10;

function run(args: string[], opts: { stdio?: ('pipe' | 'ignore' | number)[] } = {}) {
  return spawnSync(LAUNCH, args, { encoding: 'utf8', timeout: 20_000, stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'] });
}

function readLines(stream: Readable, count: number, timeoutMs = 5000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${count} lines, got ${JSON.stringify(buf)}`)), timeoutMs);
    stream.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      if (lines.length > count) {
        clearTimeout(timer);
        resolve(lines.slice(0, count));
      }
    });
  });
}

async function waitGone(pids: number[], withinMs: number): Promise<number[]> {
  const end = Date.now() + withinMs;
  for (;;) {
    const alive = pids.filter((p) => !processGone(p));
    if (alive.length === 0 || Date.now() > end) return alive;
    await sleep(20);
  }
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

before(() => {
  LAUNCH = nativeBin('cordon-launch');
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is required to drive a pty (apt-get install -y python3)`);
});

describe('cordon-launch: limits and cgroups', () => {
  test('--rlimit sets soft = hard for nproc, as, cpu, fsize, nofile, core', () => {
    const r = run(['--rlimit', 'nofile=123', '--rlimit', 'nproc=77', '--rlimit', 'as=unlimited', '--rlimit', 'cpu=9', '--rlimit', 'fsize=1048576', '--rlimit', 'core=0', '--', 'cat', '/proc/self/limits']);
    assert.equal(r.status, 0, r.stderr);
    const limit = (name: string) => {
      const line = r.stdout.split('\n').find((l) => l.startsWith(name));
      assert.ok(line, `no ${name} in ${r.stdout}`);
      return line.slice(26).trim().split(/\s+/).slice(0, 2);
    };
    assert.deepEqual(limit('Max open files'), ['123', '123']);
    assert.deepEqual(limit('Max processes'), ['77', '77']);
    assert.deepEqual(limit('Max address space'), ['unlimited', 'unlimited']);
    assert.deepEqual(limit('Max cpu time'), ['9', '9']);
    assert.deepEqual(limit('Max file size'), ['1048576', '1048576']);
    assert.deepEqual(limit('Max core file size'), ['0', '0']);
  });

  test('a bad --rlimit is refused with 125 before anything runs', () => {
    for (const bad of ['stack=1', 'nofile=12k', 'nofile', 'cpu=-1', 'nofile=']) {
      const r = run(['--rlimit', bad, '--', 'echo', 'ran']);
      assert.equal(r.status, 125, bad);
      assert.equal(r.stdout, '', bad);
      assert.match(r.stderr, /^cordon-launch: --rlimit/, bad);
    }
  });

  describe('cgroups (v1 pids hierarchy)', () => {
    let cg: string;
    before(() => {
      if (!existsSync(`${PIDS_V1}/cgroup.procs`)) throw new Error(`${PIDS_V1} is not a mounted cgroup v1 pids hierarchy; this test needs one (run as root on a hybrid layout)`);
      cg = `${PIDS_V1}/cordon-test-${process.pid}`;
      mkdirSync(cg);
    });
    after(async () => {
      // The cgroup can only go once its processes are gone.
      for (let i = 0; i < 50 && existsSync(cg); i++) {
        try {
          rmdirSync(cg);
        } catch {
          await sleep(20);
        }
      }
    });

    test('the program and its descendants run in every --cgroup-procs cgroup', () => {
      const r = run(['--cgroup-procs', `${cg}/cgroup.procs`, '--', 'sh', '-c', 'cat /proc/self/cgroup; sh -c "cat /proc/self/cgroup"']);
      assert.equal(r.status, 0, r.stderr);
      const name = cg.slice(PIDS_V1.length);
      assert.equal(r.stdout.split('\n').filter((l) => /^\d+:pids:/.test(l) && l.endsWith(`:${name}`)).length, 2, r.stdout);
    });

    test('with --pty the program joins, cordon-launch itself stays out', () => {
      const r = run(['--pty', '--cgroup-procs', `${cg}/cgroup.procs`, '--', 'sh', '-c', 'grep pids: /proc/self/cgroup; grep pids: /proc/$PPID/cgroup']);
      assert.equal(r.status, 0, r.stderr);
      const [self, parent] = r.stdout.trim().split('\n');
      assert.ok(self?.endsWith(cg.slice(PIDS_V1.length)), r.stdout);
      assert.ok(parent && !parent.endsWith(cg.slice(PIDS_V1.length)), r.stdout);
    });

    test('a cgroup that cannot be joined is exit 125 with the reason', () => {
      const r = run(['--cgroup-procs', '/sys/fs/cgroup/pids/no-such-cgroup/cgroup.procs', '--', 'echo', 'ran']);
      assert.equal(r.status, 125);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, 'cordon-launch: cannot join cgroup /sys/fs/cgroup/pids/no-such-cgroup/cgroup.procs: No such file or directory\n');
    });
  });
});

describe('cordon-launch: exec, status, descriptors', () => {
  test('without --pty the program replaces cordon-launch (same pid) and its status passes through', async () => {
    const child = spawn(LAUNCH, ['--', 'sh', '-c', 'echo $$; exit 7'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [pid] = await readLines(child.stdout!, 1);
    assert.equal(Number(pid), child.pid);
    assert.deepEqual(await exited(child), { code: 7, signal: null });

    // Killed by a signal: the caller sees the signal itself, there is no wrapper.
    const killed = run(['--', 'sh', '-c', 'kill -KILL $$']);
    assert.equal(killed.signal, 'SIGKILL');
  });

  test('with --pty the status passes through, 128+n for a signal', () => {
    assert.equal(run(['--pty', '--', 'sh', '-c', 'exit 7']).status, 7);
    assert.equal(run(['--pty', '--', 'sh', '-c', 'kill -TERM $$']).status, 128 + 15);
    assert.equal(run(['--pty', '--', 'sh', '-c', 'kill -KILL $$']).status, 128 + 9);
  });

  test('127 when the program is not found, 126 when it cannot be executed, in both modes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-launch-'));
    const notExecutable = join(dir, 'data.txt');
    writeFileSync(notExecutable, 'hello\n', { mode: 0o644 });
    after(() => rmSync(dir, { recursive: true, force: true }));
    for (const mode of [[], ['--pty']]) {
      const missing = run([...mode, '--', 'no-such-program']);
      assert.equal(missing.status, 127);
      assert.equal(missing.stderr, 'cordon-launch: no-such-program: command not found\n');
      const notExec = run([...mode, '--', notExecutable]);
      assert.equal(notExec.status, 126);
      assert.equal(notExec.stderr, `cordon-launch: ${notExecutable}: Permission denied\n`);
      assert.equal(run([...mode, '--bogus', '--', 'true']).status, 125);
      assert.equal(run([...mode]).status, 125);
    }
  });

  test('inherited descriptors (bwrap\'s --seccomp and --json-status-fd) stay open for the program', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-launch-'));
    const file = join(dir, 'filter.bpf');
    writeFileSync(file, 'x');
    const fd = openSync(file, 'r');
    try {
      for (const mode of [[], ['--pty']]) {
        const child = spawn(LAUNCH, [...mode, '--', 'sh', '-c', 'readlink /proc/self/fd/3; echo status >&4'], { stdio: ['ignore', 'pipe', 'inherit', fd, 'pipe'] });
        const [link] = await readLines(child.stdout!, 1);
        const [status] = await readLines(child.stdio[4] as Readable, 1);
        assert.equal(link, file);
        assert.equal(status, 'status');
        assert.equal((await exited(child)).code, 0);
      }
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('with --pty cordon-launch holds no copy of them: EOF as soon as the program closes its own', async () => {
    const child = spawn(LAUNCH, ['--pty', '--', 'sh', '-c', 'echo hi >&3; exec 3>&-; sleep 2'], { stdio: ['ignore', 'ignore', 'inherit', 'pipe'] });
    const t0 = Date.now();
    const pipe = child.stdio[3] as Readable;
    let data = '';
    pipe.on('data', (d: Buffer) => (data += d.toString()));
    await new Promise((resolve) => pipe.once('end', resolve));
    assert.equal(data, 'hi\n');
    assert.ok(Date.now() - t0 < 1500, 'EOF only came when cordon-launch exited');
    child.kill('SIGKILL');
    await exited(child);
  });
});

describe('cordon-launch: dies with its parent', () => {
  for (const mode of [[], ['--pty']]) {
    test(`${mode.length ? 'with' : 'without'} --pty: parent SIGKILLed -> cordon-launch and its program gone within a second`, async () => {
      // sh runs cordon-launch in the background and reports both pids.
      const parent = spawn('/bin/sh', ['-c', `"$0" ${mode.join(' ')} -- /bin/sh -c 'echo $$; exec sleep 100' & echo $!; wait`, LAUNCH], { stdio: ['ignore', 'pipe', 'inherit'] });
      const [launchPid, programPid] = (await readLines(parent.stdout!, 2)).map(Number) as [number, number];
      if (mode.length === 0) assert.equal(programPid, launchPid, 'exec in place');
      assert.equal(processGone(launchPid), false);
      parent.kill('SIGKILL');
      await exited(parent);
      assert.deepEqual(await waitGone([launchPid, programPid], 1000), [], 'still alive a second after the parent died');
    });
  }

  test('a parent that is already gone (the pdeathsig race) means exit at once', () => {
    // --parent-pid names the parent we expect; getppid() differs, as after a lost race.
    const r = run(['--parent-pid', '1', '--', 'echo', 'ran']);
    assert.equal(r.status, 125);
    assert.equal(r.stdout, '');
  });
});

describe('cordon-launch --pty on a real terminal', () => {
  test('relays output, shows the window size, ^C interrupts sleep, restores the terminal', () => {
    const t0 = Date.now();
    const r = onPty([LAUNCH, '--pty', '--', '/bin/sh', '-c', 'stty size; tty; echo ready; sleep 30; echo after'], [{ wait_for: 'ready' }, { record_lflag: 'during' }, { sleep: 0.2 }, { write: '\x03' }], {
      winsize: [33, 97],
    });
    assert.ok(Date.now() - t0 < 10_000, '^C did not interrupt sleep');
    assert.equal(r.status, 128 + 2, r.output);
    assert.match(r.output, /^33 97\r\n\/dev\/pts\/\d+\r\nready\r\n/);
    assert.doesNotMatch(r.output, /after/);
    assert.equal(r.recorded.during! & (ICANON | ECHO), 0, 'the real terminal was not in raw mode');
    assert.deepEqual(r.termios_after, r.termios_before, 'terminal settings not restored');
  });

  test('copies the window size on every SIGWINCH', () => {
    const script = 'trap "stty size" WINCH; echo ready; i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; echo timeout';
    const r = onPty([LAUNCH, '--pty', '--', '/bin/sh', '-c', script], [{ wait_for: 'ready' }, { winsize: [40, 120] }, { wait_for: '40 120' }, { winsize: [50, 132] }, { wait_for: '50 132' }, { write: '\x03' }]);
    assert.equal(r.status, 130, r.output);
    assert.doesNotMatch(r.output, /timeout/);
  });

  test('job control of an interactive shell works inside (^Z, jobs, kill %1)', () => {
    const r = onPty(
      [LAUNCH, '--pty', '--', '/bin/bash', '--norc', '--noprofile', '-i'],
      [
        { wait_for: 'cordon$ ' },
        // The job prints "started" itself, so it is in the foreground when ^Z comes.
        { write: 'sh -c \'echo st""arted; exec sleep 30\'\r' },
        { wait_for: 'started' },
        { write: '\x1a' },
        { wait_for: 'Stopped' },
        { write: 'jobs -l\r' },
        { sleep: 0.3 },
        { write: 'kill -9 %1\r' },
        // The job's process dies. (bash's own "Killed" notice is not a reliable witness: it
        // reports the job Stopped once more right after the kill, and was seen to leave the
        // dead job an unreaped zombie for as long as the test waited.)
        { wait_dead: '\\[1\\]\\+\\s+(\\d+) Stopped' },
        // `exit` would refuse while bash still lists the job as stopped; exec does not ask.
        { write: 'exec sh -c "exit 3"\r' },
      ],
      { env: { ...process.env, PS1: 'cordon$ ', TERM: 'dumb' } },
    );
    assert.equal(r.status, 3, r.output);
    assert.doesNotMatch(r.output, /no job control/);
    assert.match(r.output, /\[1\]\+\s+\d+ Stopped\s+sh -c/);
    assert.deepEqual(r.termios_after, r.termios_before);
  });

  test('drains every byte written just before the program exits', () => {
    const r = onPty([LAUNCH, '--pty', '--', '/bin/sh', '-c', 'head -c 300000 /dev/zero | tr "\\0" a; echo; echo END'], []);
    assert.equal(r.status, 0);
    assert.equal(r.output.split('a').length - 1, 300000);
    assert.match(r.output, /END\r\n$/);
  });

  test('terminals only: non-tty descriptors pass through, and the program still gets a controlling terminal', () => {
    const r = run(['--pty', '--', 'sh', '-c', 'echo out; echo err >&2; [ -t 0 ] || echo stdin-not-a-tty; exec 3</dev/tty && echo has-ctty']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'out\nstdin-not-a-tty\nhas-ctty\n');
    assert.equal(r.stderr, 'err\n');
  });

  test('SIGTERM to cordon-launch is forwarded to the program', async () => {
    const child = spawn(LAUNCH, ['--pty', '--', 'sh', '-c', 'trap "echo got-term; exit 5" TERM; echo ready; while :; do sleep 0.05; done'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await readLines(child.stdout!, 1);
    child.kill('SIGTERM');
    const [line] = await readLines(child.stdout!, 1);
    assert.equal(line, 'got-term');
    assert.deepEqual(await exited(child), { code: 5, signal: null });
  });

  test('when its parent dies it kills the program and restores the terminal', async () => {
    const token = `cordon-pdeath-${process.pid}`;
    const dir = mkdtempSync(join(tmpdir(), 'cordon-launch-'));
    const script = join(dir, 'outer.sh');
    // outer (session leader, survives) -> middle (cordon-launch's parent, killed) -> cordon-launch -> program
    writeFileSync(
      script,
      `/bin/sh -c 'echo middle $$; "$0" --pty -- /bin/sh -c "echo inner \\$\\$; exec sleep 100" ${token}; echo middle-done' "$LAUNCH"\necho outer-done\nsleep 0.5\n`,
    );
    try {
      const r = onPty(
        ['/bin/sh', script],
        [{ wait_for: 'inner ' }, { sleep: 0.3 }, { record_lflag: 'during' }, { kill_output_pid: 'middle (\\d+)', signal: 9 }, { wait_restored: 3 }, { wait_for: 'outer-done' }],
        { env: { ...process.env, LAUNCH } },
      );
      assert.equal(r.recorded.during! & ICANON, 0, 'cordon-launch had not switched the terminal to raw mode');
      assert.deepEqual(r.termios_after, r.termios_before);
      const inner = Number(/inner (\d+)/.exec(r.output)?.[1]);
      const launchers = readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(token);
          } catch {
            return false;
          }
        })
        .map(Number);
      assert.deepEqual(await waitGone([inner, ...launchers], 1000), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('cordon-launch --pty -> bwrap -> cordon-init: ^C reaches the sandboxed command', () => {
  // In --pty mode bwrap runs without --new-session, so its processes share the
  // terminal; cordon-init moves the command to the foreground group, so ^C
  // reaches the command and not bwrap (which would die and end the sandbox).
  const sandboxed = (script: string) => {
    const args = bwrapArgs([], [`${NATIVE_IN_SANDBOX}/cordon-init`, '--ro', '/usr', '--ro', '/proc', '--rw', '/dev', '--require-landlock', '--take-terminal', '--', '/bin/sh', '-c', script]);
    return [LAUNCH, '--pty', '--', requireBwrap(), ...args.filter((a) => a !== '--new-session')];
  };

  test('a command that handles SIGINT survives ^C and finishes', () => {
    const script = 'trap "echo caught" INT; echo ready; i=0; while [ $i -lt 10 ]; do sleep 0.1; i=$((i+1)); done; echo finished';
    const r = onPty(sandboxed(script), [{ wait_for: 'ready' }, { sleep: 0.2 }, { write: '\x03' }]);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /caught\r\nfinished\r\n/);
  });

  test('a command that does not is interrupted: 130 all the way out', () => {
    const r = onPty(sandboxed('echo ready; sleep 30; echo after'), [{ wait_for: 'ready' }, { sleep: 0.2 }, { write: '\x03' }]);
    assert.equal(r.status, 130, r.output);
    assert.doesNotMatch(r.output, /after/);
    assert.deepEqual(r.termios_after, r.termios_before);
  });
});
