// The seccomp filter end to end: rules.ts -> seccomp-export -> cached BPF ->
// real bwrap --seccomp -> syscall-probe, which tries every denied operation.
// The same probe runs once more without the filter, to show the operations
// are otherwise reachable (so these tests can fail).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CordonError } from '../../src/errors.ts';
import { SECCOMP_EXPORT_PATH, compileSeccompRules, seccompFilterPath } from '../../src/sandbox/seccomp/compile.ts';
import { SECCOMP_RULES, renderRules } from '../../src/sandbox/seccomp/rules.ts';
import { NATIVE_IN_SANDBOX, ROOT, bwrapArgs, nativeBin, requireBwrap } from './harness.ts';

type ProbeResult = { probe: string; errno?: string; signal?: string };

/** Rule syscalls this architecture does not have (optional rules, skipped by the helper). */
const ABSENT_ON_ARCH: Record<string, string[]> = { x64: ['umount'] };

/** Operations that must stay allowed, and unfiltered answers that prove the filter did the denying. */
const REACHABLE_WITHOUT_FILTER: Record<string, (r: ProbeResult) => boolean> = {
  process_vm_readv: (r) => r.errno === 'ok',
  'personality:noaslr': (r) => r.errno === 'ok',
  'clone:newuser': (r) => r.errno === 'ok',
  'clone:newuser_hibits': (r) => r.errno === 'ok',
  unshare: (r) => r.errno === 'ok',
  clone3: (r) => r.errno === 'ok',
  keyctl: (r) => r.errno === 'ok',
  setns: (r) => r.errno === 'EBADF',
  mount: (r) => r.errno === 'ENOENT',
  name_to_handle_at: (r) => r.errno === 'EOVERFLOW',
  clock_settime: (r) => r.errno === 'EINVAL',
  'ioctl:tiocsti': (r) => r.errno === 'EBADF',
  'ioctl:tiocsti_hibits': (r) => r.errno === 'EBADF',
  x32: (r) => r.signal === undefined,
  int80: (r) => r.signal === undefined,
};

function runProbe(extra: string[], fds: number[] = []): ProbeResult[] {
  const r = spawnSync('bwrap', bwrapArgs(extra, [`${NATIVE_IN_SANDBOX}/syscall-probe`]), {
    stdio: ['ignore', 'pipe', 'pipe', ...fds],
    timeout: 60_000,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `syscall-probe failed (status ${r.status}, signal ${r.signal}): ${r.stderr}`);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as ProbeResult);
}

function expectedErrno(probe: string): string {
  const syscall = probe.split(':')[0]!;
  const rules = SECCOMP_RULES.filter((r) => r.syscall === syscall);
  assert.ok(rules.length > 0, `probe ${probe} exercises ${syscall}, which no rule denies`);
  const errnos = new Set(rules.map((r) => r.errno));
  assert.equal(errnos.size, 1, `rules for ${syscall} disagree on the errno`);
  return rules[0]!.errno;
}

describe('seccomp filter in a real bwrap sandbox', () => {
  let work: string;
  let filter: string;
  let filtered: Map<string, ProbeResult>;
  let unfiltered: Map<string, ProbeResult>;

  before(async () => {
    requireBwrap();
    nativeBin('syscall-probe');
    nativeBin('seccomp-export');
    work = mkdtempSync(join(tmpdir(), 'cordon-seccomp-'));
    filter = await seccompFilterPath({ installDir: ROOT, cacheDir: join(work, 'cache') });
    const fd = openSync(filter, 'r');
    try {
      filtered = new Map(runProbe(['--seccomp', '3'], [fd]).map((r) => [r.probe, r]));
    } finally {
      closeSync(fd);
    }
    unfiltered = new Map(runProbe([]).map((r) => [r.probe, r]));
  });

  after(() => rmSync(work, { recursive: true, force: true }));

  test('every denied operation is refused with the errno its rule names', () => {
    const wrong: string[] = [];
    for (const [name, r] of filtered) {
      if (name.startsWith('ok:') || name === 'x32' || name === 'int80') continue;
      const want = expectedErrno(name);
      if (r.errno !== want) wrong.push(`${name}: got ${JSON.stringify(r)}, want ${want}`);
    }
    assert.deepEqual(wrong, []);
  });

  test('foreign ABIs kill the process: x32 (nr | 0x40000000) and i386 int 0x80', () => {
    // Both only exist on x86_64; elsewhere the probe has no such entries.
    if (process.arch !== 'x64') return assert.equal(filtered.has('x32') || filtered.has('int80'), false);
    assert.deepEqual(filtered.get('x32'), { probe: 'x32', signal: 'SIGSYS' });
    assert.deepEqual(filtered.get('int80'), { probe: 'int80', signal: 'SIGSYS' });
  });

  test('ordinary operations still work: fork, threads, plain clone, files, TCP/UDP/unix/netlink sockets', () => {
    const ok = [...filtered.values()].filter((r) => r.probe.startsWith('ok:'));
    assert.ok(ok.length >= 10, 'the probe lost its positive checks');
    for (const r of ok) assert.equal(r.errno, 'ok', `${r.probe} should be allowed, got ${JSON.stringify(r)}`);
  });

  test('every rule is exercised by at least one probe', () => {
    const probed = new Set([...filtered.keys()].map((n) => n.split(':')[0]));
    const absent = new Set(ABSENT_ON_ARCH[process.arch] ?? []);
    const unprobed = [...new Set(SECCOMP_RULES.map((r) => r.syscall))].filter((s) => !probed.has(s) && !absent.has(s));
    assert.deepEqual(unprobed, [], 'add a probe to test/probes/syscall-probe.c');
  });

  test('without the filter the same operations are reachable (the test can fail)', () => {
    const notReachable: string[] = [];
    for (const [name, isReachable] of Object.entries(REACHABLE_WITHOUT_FILTER)) {
      const r = unfiltered.get(name);
      if (!r || !isReachable(r)) notReachable.push(`${name}: ${JSON.stringify(r)}`);
    }
    assert.deepEqual(notReachable, [], 'these should succeed (or fail differently) without the filter; is the kernel configured unusually?');
    // And more broadly: a good share of the probes answer differently.
    const differ = [...filtered.keys()].filter((n) => !n.startsWith('ok:') && JSON.stringify(filtered.get(n)) !== JSON.stringify(unfiltered.get(n)));
    assert.ok(differ.length >= 30, `only ${differ.length} probes differ without the filter`);
  });
});

describe('seccompFilterPath: compile once, then a cheap cached path', () => {
  let work: string;
  before(() => {
    nativeBin('seccomp-export');
    work = mkdtempSync(join(tmpdir(), 'cordon-seccomp-cache-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  test('writes seccomp-<sha256>.bpf, 0600, in a 0700 dir, a whole number of instructions', async (t) => {
    const cacheDir = join(work, 'a', 'cache');
    const t0 = performance.now();
    const p = await seccompFilterPath({ installDir: ROOT, cacheDir });
    const compileMs = performance.now() - t0;
    assert.match(p, /\/seccomp-[0-9a-f]{64}\.bpf$/);
    const st = statSync(p);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(statSync(cacheDir).mode & 0o777, 0o700);
    assert.equal(st.size % 8, 0);
    assert.ok(st.size / 8 > 50 && st.size / 8 <= 4096, `${st.size / 8} instructions`);
    assert.deepEqual(readdirSync(cacheDir), [p.split('/').pop()], 'no temp files left behind');

    const t1 = performance.now();
    const again = await seccompFilterPath({ installDir: ROOT, cacheDir });
    const hitMs = performance.now() - t1;
    assert.equal(again, p);
    t.diagnostic(`filter: ${st.size / 8} instructions; compile ${compileMs.toFixed(1)} ms; cached ${hitMs.toFixed(2)} ms`);
  });

  test('a cache hit runs no child process', async () => {
    // Copy the helper into a private install dir, compile once, then take
    // away its execute bit: a hit must still succeed (it only hashes it).
    const install = join(work, 'install');
    mkdirSync(join(install, 'build', 'native'), { recursive: true });
    const helper = join(install, SECCOMP_EXPORT_PATH);
    copyFileSync(nativeBin('seccomp-export'), helper);
    const cacheDir = join(work, 'b');
    const first = await seccompFilterPath({ installDir: install, cacheDir });
    chmodSync(helper, 0o644);
    assert.equal(await seccompFilterPath({ installDir: install, cacheDir }), first);
    // A different cache dir is a miss, and now the helper cannot run.
    await assert.rejects(seccompFilterPath({ installDir: install, cacheDir: join(work, 'c') }), (e: unknown) => e instanceof CordonError && e.code === 'CORDON_PREREQ_MISSING');
  });

  test('a missing helper fails closed with CORDON_PREREQ_MISSING and says how to fix it', async () => {
    await assert.rejects(seccompFilterPath({ installDir: join(work, 'nowhere'), cacheDir: join(work, 'd') }), (e: unknown) => {
      assert.ok(e instanceof CordonError);
      assert.equal(e.code, 'CORDON_PREREQ_MISSING');
      assert.match(e.hint ?? '', /build-native\.sh/);
      assert.match(e.hint ?? '', /libseccomp-dev/);
      return true;
    });
  });

  test('a corrupt cache entry is replaced', async () => {
    const cacheDir = join(work, 'e');
    const p = await seccompFilterPath({ installDir: ROOT, cacheDir });
    const fd = openSync(p, 'r+');
    ftruncateSync(fd, 5);
    closeSync(fd);
    assert.equal(await seccompFilterPath({ installDir: ROOT, cacheDir }), p);
    assert.equal(statSync(p).size % 8, 0);
    assert.ok(statSync(p).size > 8);
  });

  test('the rendered rules compile, and a bad rule text is an error naming the line', async () => {
    const helper = nativeBin('seccomp-export');
    const bpf = await compileSeccompRules(helper, renderRules());
    assert.equal(bpf.length % 8, 0);
    await assert.rejects(compileSeccompRules(helper, 'default allow\nbadarch kill\ndeny no_such_call EPERM\n'), /line 3: unknown syscall 'no_such_call'/);
  });
});
