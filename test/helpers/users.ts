// An unprivileged user for tests that must not run as root. Created if
// missing (tests run as root in CI); a test fails, never skips, without it.

import { execFileSync } from 'node:child_process';

export const TEST_USER = 'cordontest';

export function ensureTestUser(): { uid: number; gid: number } {
  if (process.getuid?.() !== 0) throw new Error('this test creates an unprivileged user and must run as root');
  try {
    execFileSync('id', ['-u', TEST_USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--create-home', '--shell', '/bin/sh', TEST_USER]);
  }
  const uid = Number(execFileSync('id', ['-u', TEST_USER], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', TEST_USER], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** argv prefix that runs a command as the test user with a clean environment. */
export function asTestUser(env: Record<string, string | undefined>): string[] {
  const pairs = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  return ['runuser', '-u', TEST_USER, '--', 'env', '-i', ...pairs];
}
