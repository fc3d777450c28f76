// cordon-netcap as a process: PROG's status passes through, fds 3 and 4
// reach PROG untouched, signals are forwarded, nothing outlives a killed
// parent, and a capture that cannot be set up never runs PROG.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, openSync, closeSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ensureTestUser, FakeProxy, hostArgv, NETCAP, NODE_INSIDE, PROBE, removeDir, requireNetcap, run, sandboxArgv, sleep, tempDir, WHO, type RunOptions } from './helpers.ts';

/** ppid of every process, from /proc. */
function parents(): Map<number, number> {
  const m = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      m.set(Number(name), Number(fields[1]));
    } catch {
      // exited meanwhile
    }
  }
  return m;
}

function descendants(pid: number): number[] {
  const ppid = parents();
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of ppid) {
      if (parent === p) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * Starts `sh -c '"$@" & wait'` around cordon-netcap (so it has a parent we may
 * kill), waits until the sandbox prints "ready", and returns the tree.
 */
async function startTree(o: RunOptions): Promise<{ sh: number; tree: number[]; netcap: number }> {
  const child = spawn('/bin/sh', ['-c', '"$@" & wait', 'sh', ...hostArgv(o)], { stdio: ['ignore', 'pipe', 'inherit'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  child.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the sandbox did not start')), 10_000);
    child.stdout.on('data', (d: Buffer) => {
      if (d.includes('ready')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  const tree = descendants(child.pid!);
  const netcap = tree.find((p) => comm(p) === 'cordon-netcap');
  assert.ok(netcap, `cordon-netcap is in the tree ${tree.map((p) => `${p}:${comm(p)}`).join(' ')}`);
  return { sh: child.pid!, tree, netcap };
}

async function allGoneWithin(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = pids.filter(alive);
    if (left.length === 0 || Date.now() > deadline) return left;
    await sleep(20);
  }
}

for (const who of WHO) {
  describe(`cordon-netcap lifecycle as ${who}`, () => {
    let dir: string;
    let proxy: FakeProxy;

    before(async () => {
      requireNetcap();
      ensureTestUser();
      dir = tempDir(`netcap-life-${who}-`);
      chmodSync(dir, 0o777);
      proxy = await FakeProxy.start(dir);
    });
    after(async () => {
      await proxy.close();
      removeDir(dir);
    });

    test("PROG's exit status passes through (128+n for a signal)", async () => {
      const base = { who, socket: proxy.path } as const;
      assert.equal((await run({ ...base, cmd: ['sh', '-c', 'exit 7'] })).code, 7);
      assert.equal((await run({ ...base, cmd: ['true'] })).code, 0);
      assert.equal((await run({ ...base, prog: ['/bin/sh', '-c', 'exit 3'] })).code, 3);
      assert.equal((await run({ ...base, prog: ['/bin/sh', '-c', 'kill -TERM $$'] })).code, 128 + 15);
      const missing = await run({ ...base, prog: ['/nonexistent/prog'] });
      assert.equal(missing.code, 127);
      assert.match(missing.stderr, /^cordon-netcap: cannot run \/nonexistent\/prog: /);
    });

    test('fds 3 and 4 reach PROG untouched (bwrap --seccomp / --json-status-fd)', async () => {
      const f3 = join(dir, `fd3-${who}`);
      writeFileSync(f3, 'from-fd-3', { mode: 0o644 });
      const fd3 = openSync(f3, 'r');
      const prog = ['/bin/sh', '-c', 'cat <&3; echo " to-fd-4" >&4'];
      const argv = hostArgv({ who, socket: proxy.path, prog });
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe', fd3, 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
      closeSync(fd3);
      let out = '';
      let four = '';
      child.stdout!.on('data', (d) => (out += d));
      (child.stdio[4] as NodeJS.ReadableStream).on('data', (d) => (four += d));
      const code = await new Promise((r) => child.on('close', r));
      assert.equal(code, 0);
      assert.equal(out, 'from-fd-3');
      assert.equal(four, ' to-fd-4\n');

      // And bwrap itself, reporting its child's pid on fd 4.
      const bw = sandboxArgv({ who, socket: proxy.path, cmd: ['true'] });
      bw.splice(1, 0, '--json-status-fd', '4');
      const argv2 = hostArgv({ who, socket: proxy.path, prog: bw });
      const c2 = spawn(argv2[0]!, argv2.slice(1), { stdio: ['ignore', 'ignore', 'pipe', 'ignore', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
      let status = '';
      (c2.stdio[4] as NodeJS.ReadableStream).on('data', (d) => (status += d));
      assert.equal(await new Promise((r) => c2.on('close', r)), 0);
      assert.match(status, /"child-pid": ?\d+/);
    });

    test('SIGTERM to cordon-netcap is forwarded to PROG', async () => {
      const o = { who, socket: proxy.path, prog: ['/bin/sh', '-c', 'trap "exit 42" TERM; echo ready; while :; do sleep 0.05; done'] };
      const argv = hostArgv(o);
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
      await new Promise<void>((r) => child.stdout.on('data', (d: Buffer) => d.includes('ready') && r()));
      const netcap = [child.pid!, ...descendants(child.pid!)].find((p) => comm(p) === 'cordon-netcap')!;
      process.kill(netcap, 'SIGTERM');
      assert.equal(await new Promise((r) => child.on('close', r)), 42);
    });

    test('SIGKILL of the parent leaves no process behind within a second', async () => {
      const o = { who, socket: proxy.path, cmd: ['sh', '-c', 'sleep 100 & echo ready; sleep 100'] };
      const { tree, netcap } = await startTree(o);
      const parent = parents().get(netcap)!;
      const watched = [netcap, ...descendants(netcap)];
      assert.ok(watched.length >= 4, `netcap, bwrap, and the sandbox's processes: ${watched.map(comm).join(' ')}`);
      process.kill(parent, 'SIGKILL');
      const left = await allGoneWithin(watched, 1000);
      assert.deepEqual(left.map((p) => `${p}:${comm(p)}`), []);
      for (const p of tree.filter(alive)) process.kill(p, 'SIGKILL');
    });

    test('SIGKILL of cordon-netcap itself takes the sandbox down', async () => {
      const { tree, netcap } = await startTree({ who, socket: proxy.path, cmd: ['sh', '-c', 'echo ready; sleep 100'] });
      const watched = [netcap, ...descendants(netcap)];
      process.kill(netcap, 'SIGKILL');
      assert.deepEqual((await allGoneWithin(watched, 1000)).map((p) => `${p}:${comm(p)}`), []);
      for (const p of tree.filter(alive)) process.kill(p, 'SIGKILL');
    });

    test('running out of descriptors resets the excess connections, and later ones work', async () => {
      const ops = JSON.stringify([{ op: 'concurrent', n: 100, bytes: 1000 }]);
      const after = JSON.stringify([{ op: 'tcp', host: '1.2.3.4', port: 80, send: 'after' }]);
      // cordon-netcap gets 40 descriptors (soft); the sandbox raises its own soft limit back.
      const cmd = ['sh', '-c', `ulimit -S -n 4096 && ${NODE_INSIDE} ${PROBE} '${ops}' && ${NODE_INSIDE} ${PROBE} '${after}'`];
      const argv = hostArgv({ who, socket: proxy.path, cmd });
      argv.splice(who === 'user' ? 4 : 0, 0, 'prlimit', '--nofile=40:4096', '--');
      const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.on('close', (code) => resolve({ code, out }));
      });
      assert.equal(r.code, 0);
      const out = r.out;
      const [burst, later] = out.trim().split('\n').slice(-2).map((l) => JSON.parse(l)[0]);
      assert.ok(burst.ok > 0 && burst.ok < 100, `some fit, the rest did not: ${JSON.stringify(burst)}`);
      for (const f of burst.failed) assert.equal(f.error, 'ECONNRESET');
      assert.equal(later.data, 'after');
    });

    test('a capture that cannot be set up exits 125 with one line and never runs PROG', async () => {
      const fakeNft = join(dir, 'fake-nft');
      writeFileSync(fakeNft, '#!/bin/sh\ncat >/dev/null\nexit 0\n', { mode: 0o755 });
      const cases: Array<[string, string[], RegExp]> = [
        ['missing nft', ['--nft-tool', '/nonexistent/nft'], /no usable nft binary at \/nonexistent\/nft/],
        ['nft fails', ['--nft-tool', '/bin/false'], /nft \(capture rules\) failed/],
        ['rules not applied', ['--nft-tool', fakeNft], /self-test: /],
        ['ip fails', ['--ip-tool', '/bin/false'], /ip \(network set-up\) failed/],
        ['no PROG', [], /usage/],
      ];
      for (const [name, args, reason] of cases) {
        const marker = join(dir, `ran-${who}-${name.replaceAll(' ', '-')}`);
        const r = await run({ who, socket: proxy.path, netcapArgs: args, prog: name === 'no PROG' ? [] : ['/bin/sh', '-c', `touch ${marker}`] });
        assert.equal(r.code, 125, `${name}: ${r.stderr}`);
        assert.match(r.stderr, /^cordon-netcap: [^\n]+\n$/, `${name}: one line`);
        assert.match(r.stderr, reason, name);
        assert.equal(existsSync(marker), false, `${name}: PROG must not have run`);
      }
      const long = await run({ who, socket: `/${'x'.repeat(120)}`, netcapArgs: [], prog: ['/bin/true'] });
      assert.equal(long.code, 125);
      assert.match(long.stderr, /longer than a Unix socket path/);
      assert.ok(existsSync(NETCAP));
    });
  });
}
