// Shared pieces of the native helper tests: where the binaries are, a check
// that they are built and current, and the bwrap command line the tests use.
// Nothing here skips: a missing prerequisite throws, so the test fails and
// says what to install or run.

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
export const NATIVE = `${ROOT}/build/native`;
/** Where tests bind build/native inside a sandbox. */
export const NATIVE_IN_SANDBOX = '/cordon';

const SOURCES: Record<string, string> = {
  'seccomp-export': 'native/seccomp-export.c',
  'cordon-init': 'native/cordon-init.c',
  'cordon-launch': 'native/cordon-launch.c',
  'syscall-probe': 'test/probes/syscall-probe.c',
};

/** Path of a built helper; throws if it is missing or older than its source. */
export function nativeBin(name: keyof typeof SOURCES & string): string {
  const bin = `${NATIVE}/${name}`;
  const src = `${ROOT}/${SOURCES[name]}`;
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run scripts/build-native.sh`);
  const built = statSync(bin).mtimeMs;
  for (const input of [src, `${ROOT}/native/Makefile`]) {
    if (statSync(input).mtimeMs > built) throw new Error(`${bin} is older than ${input}: run scripts/build-native.sh`);
  }
  return bin;
}

export function requireBwrap(): string {
  try {
    execFileSync('bwrap', ['--version'], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(`bubblewrap is required for this test (apt-get install -y bubblewrap): ${(e as Error).message}`);
  }
  return 'bwrap';
}

/**
 * The sandbox of the brief: every namespace, uid/gid 1000, no capabilities,
 * a new session, the system read-only, build/native at /cordon.
 * `extra` goes before the command (more mounts, --seccomp FD...).
 */
export function bwrapArgs(extra: string[], command: string[]): string[] {
  return [
    '--unshare-all',
    '--unshare-user',
    '--uid', '1000',
    '--gid', '1000',
    '--cap-drop', 'ALL',
    '--die-with-parent',
    '--new-session',
    '--ro-bind', '/usr', '/usr',
    '--symlink', 'usr/bin', '/bin',
    '--symlink', 'usr/lib', '/lib',
    '--symlink', 'usr/lib64', '/lib64',
    '--proc', '/proc',
    '--dev', '/dev',
    '--ro-bind', NATIVE, NATIVE_IN_SANDBOX,
    ...extra,
    '--',
    ...command,
  ];
}

/** Is `pid` gone (no such process, or a zombie nobody reaped yet)? */
export function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
