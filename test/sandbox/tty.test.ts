// An interactive agent through a real pty: terminal size, Ctrl-C, job control,
// exit status, the user's terminal restored, and no keystroke injection.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import { assertFreshBuild, CORDON, isolated } from '../helpers/cordon.ts';

const DRIVER = fileURLToPath(new URL('../native/pty-driver.py', import.meta.url));

type Step = { wait_for: string } | { write: string } | { winsize: [number, number] } | { sleep: number };

function drive(argv: string[], env: NodeJS.ProcessEnv, cwd: string, steps: Step[], winsize: [number, number] = [30, 100]) {
  const r = spawnSync('/usr/bin/python3', [DRIVER, JSON.stringify({ argv, winsize, steps, timeout: 40 })], { env, cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`pty driver failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { output: string; status: number | null; termios_before: unknown[]; termios_after: unknown[]; error?: string };
}

before(() => assertFreshBuild());

describe('cordon run with a terminal', () => {
  const t = isolated();
  const env = { ...t.env, TERM: 'xterm', PS1: '' };
  const shell = [...CORDON, 'run', '--', '/bin/bash', '--norc', '--noprofile', '-i'];

  it('gives the sandbox a terminal of the right size, follows resizes, passes the exit status', () => {
    const r = drive(shell, env, t.workspace, [
      { wait_for: '$' },
      { write: 'stty size; tty\n' },
      { wait_for: '30 100' },
      { winsize: [40, 120] },
      { sleep: 1.5 },
      { write: 'stty size\n' },
      { wait_for: '40 120' },
      { write: 'exit 7\n' },
    ]);
    assert.equal(r.error, undefined, r.output);
    assert.match(r.output, /\/dev\/(pts\/\d+|console)/, "the sandbox has a terminal of its own");
    assert.equal(r.status, 7);
    assert.deepEqual(r.termios_after, r.termios_before, "the user's terminal is restored");
  });

  it('Ctrl-C interrupts the foreground job inside, not the session', () => {
    const r = drive(shell, env, t.workspace, [
      { wait_for: '$' },
      { write: 'sleep 60\n' },
      { sleep: 0.5 },
      { write: '\x03' },
      { write: 'echo "after-sleep:$?"\n' },
      { wait_for: 'after-sleep:130' },
      { write: 'echo still-here\n' },
      { wait_for: 'still-here' },
      { write: 'exit\n' },
    ]);
    assert.equal(r.error, undefined, r.output);
    assert.equal(r.status, 0);
  });

  it('job control works inside: Ctrl-Z, jobs, bg, fg', () => {
    const r = drive(shell, env, t.workspace, [
      { wait_for: '$' },
      { write: 'sleep 60\n' },
      { sleep: 0.5 },
      { write: '\x1a' },
      { wait_for: 'Stopped' },
      { write: 'jobs; echo jobs-listed\n' },
      { wait_for: 'jobs-listed' },
      { write: 'bg; fg\n' },
      { sleep: 0.3 },
      { write: '\x03' },
      { write: 'echo done-$?\n' },
      { wait_for: 'done-130' },
      { write: 'exit\n' },
    ]);
    assert.equal(r.error, undefined, r.output);
    assert.match(r.output, /sleep 60/);
  });

  it('cannot inject keystrokes into the terminal (TIOCSTI)', () => {
    const py = 'import fcntl,termios\ntry:\n  fcntl.ioctl(0, termios.TIOCSTI, b"X"); print("INJECTED")\nexcept OSError as e: print("denied", e.errno)';
    const r = drive([...CORDON, 'run', '--', 'python3', '-c', py], env, t.workspace, []);
    assert.equal(r.error, undefined, r.output);
    assert.match(r.output, /denied 1/);
    assert.doesNotMatch(r.output, /INJECTED/);
  });
});
