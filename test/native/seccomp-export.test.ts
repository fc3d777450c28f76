// The rule text format of native/seccomp-export, and properties of the
// policy in rules.ts checked without a kernel (a small evaluator of the
// conditions stands in for the BPF program).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { before, describe, test } from 'node:test';
import { type ArgCondition, SECCOMP_RULES, renderRules } from '../../src/sandbox/seccomp/rules.ts';
import { nativeBin } from './harness.ts';

let HELPER: string;
before(() => {
  HELPER = nativeBin('seccomp-export');
});

function exportRules(text: string) {
  const r = spawnSync(HELPER, [], { input: text, timeout: 10_000 });
  return { status: r.status, bpf: r.stdout, stderr: r.stderr.toString() };
}

const HEAD = 'default allow\nbadarch kill\n';

describe('seccomp-export line format', () => {
  test('accepts comments, blank lines, conditions, optional names and @NR fallbacks', () => {
    const r = exportRules(`# a comment\n\n${HEAD}deny ptrace EPERM   # trailing comment\ndeny ?umount EPERM\ndeny socket EPERM if 0 masked_eq 17 0xffffffff\ndeny socket EPERM if 0 ne 16 and 1 masked_eq 3 0xf\ndeny open_tree_attr@467 EPERM\ndeny clone3 ENOSYS\ndeny kexec_load kill\n`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.bpf.length % 8, 0);
  });

  test('an optional syscall this architecture lacks changes nothing', () => {
    const a = exportRules(`${HEAD}deny ptrace EPERM\n`);
    const b = exportRules(`${HEAD}deny ptrace EPERM\ndeny ?umount EPERM\ndeny ?no_such_syscall EPERM\n`);
    assert.equal(b.status, 0, b.stderr);
    assert.deepEqual(b.bpf, a.bpf);
  });

  const errors: [string, string, RegExp][] = [
    ['unknown syscall', `${HEAD}deny ptrace EPERM\ndeny umount EPERM\n`, /^seccomp-export: line 4: unknown syscall 'umount' on this architecture \(prefix it with '\?' if it is optional\)\n$/],
    ['@NR of an old syscall', `${HEAD}deny frobnicate@100 EPERM\n`, /line 3: 'frobnicate@100': @NR must be a syscall number >= 424/],
    ['@NR that contradicts libseccomp', `${HEAD}deny clone3@436 ENOSYS\n`, /line 3: 'clone3': libseccomp numbers it 435, the rule says 436/],
    ['unknown errno', `${HEAD}deny ptrace EWHATEVER\n`, /line 3: unknown action 'EWHATEVER'/],
    ['a deny that allows', `${HEAD}deny ptrace allow\n`, /line 3: a deny rule cannot allow/],
    ['masked_eq without mask', `${HEAD}deny socket EPERM if 0 masked_eq 17\n`, /line 3: masked_eq needs VALUE MASK/],
    ['value outside mask', `${HEAD}deny socket EPERM if 1 masked_eq 0x13 0xf\n`, /line 3: masked_eq VALUE has bits outside MASK/],
    ['same argument twice', `${HEAD}deny personality EPERM if 0 ne 0 and 0 ne 8\n`, /line 3: argument 0 compared twice in one rule/],
    ['argument index', `${HEAD}deny socket EPERM if 6 eq 1\n`, /line 3: argument index must be 0\.\.5/],
    ['octal-looking number', `${HEAD}deny socket EPERM if 0 eq 017\n`, /line 3: bad value '017'/],
    ['number too large', `${HEAD}deny socket EPERM if 0 eq 0x10000000000000000\n`, /line 3: bad value/],
    ['unknown operator', `${HEAD}deny socket EPERM if 0 like 1\n`, /line 3: unknown comparison 'like'/],
    ['missing if', `${HEAD}deny socket EPERM when 0 eq 1\n`, /line 3: expected 'if' after the action/],
    ['missing and', `${HEAD}deny socket EPERM if 0 eq 1 1 eq 2\n`, /line 3: expected 'and' between conditions/],
    ['unknown directive', `${HEAD}allow ptrace\n`, /line 3: unknown directive 'allow'/],
    ['no default', 'badarch kill\ndeny ptrace EPERM\n', /no 'default ACTION' line/],
    ['no badarch', 'default allow\ndeny ptrace EPERM\n', /no 'badarch ACTION' line/],
    ['default twice', `${HEAD}default kill\n`, /line 3: 'default' given twice/],
    ['rule equal to the default', 'default EPERM\nbadarch kill\ndeny ptrace EPERM\n', /line 3: the rule's action equals the default action/],
  ];
  for (const [what, text, message] of errors) {
    test(`exit 2 naming the line: ${what}`, () => {
      const r = exportRules(text);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.bpf.length, 0, 'nothing on stdout unless the whole filter was built');
      assert.match(r.stderr, message);
    });
  }
});

// -- rules.ts, evaluated ------------------------------------------------------

const U64 = (1n << 64n) - 1n;

function holds(c: ArgCondition, args: bigint[]): boolean {
  const a = args[c.arg] ?? 0n;
  const v = BigInt(c.value);
  switch (c.op) {
    case 'eq':
      return a === v;
    case 'ne':
      return a !== v;
    case 'lt':
      return a < v;
    case 'le':
      return a <= v;
    case 'gt':
      return a > v;
    case 'ge':
      return a >= v;
    case 'masked_eq':
      return (a & BigInt(c.mask ?? 0)) === v;
  }
}

/** What the policy answers for a call: the errno, or 'allow'. */
function decide(syscall: string, ...args: (number | bigint)[]): string {
  const a = args.map((x) => BigInt(x) & U64);
  for (const r of SECCOMP_RULES) {
    if (r.syscall !== syscall) continue;
    if (!r.when || r.when.some((alt) => alt.every((c) => holds(c, a)))) return r.errno;
  }
  return 'allow';
}

describe('rules.ts', () => {
  test('personality: only PER_LINUX (0) and the query (0xffffffff) pass', () => {
    for (const v of [0, 0xffffffff]) assert.equal(decide('personality', v), 'allow', v.toString(16));
    const denied = [1, 8, 0x0008, 0x20000, 0x20008, 0x40000, 0x400000, 0x80000000, 0x7fffffff, 0xfffffffe, 0x55555555, 2 ** 32, 2 ** 32 + 8];
    for (const v of denied) assert.equal(decide('personality', v), 'EPERM', v.toString(16));
    // Exhaustively for every value with one or two bits set, and their complements.
    for (let i = 0; i < 32; i++) {
      for (let j = i; j < 32; j++) {
        const v = (1n << BigInt(i)) | (1n << BigInt(j));
        assert.equal(decide('personality', v), 'EPERM');
        assert.equal(decide('personality', 0xffffffffn ^ v), 'EPERM');
      }
    }
  });

  test('clone: any CLONE_NEW* flag is refused, fork and thread flags pass, garbage above bit 31 does not help', () => {
    const SIGCHLD = 17;
    const THREAD = 0x3d0f00; // CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
    assert.equal(decide('clone', SIGCHLD), 'allow');
    assert.equal(decide('clone', THREAD), 'allow');
    for (const flag of [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000]) {
      assert.equal(decide('clone', flag | SIGCHLD), 'EPERM');
      assert.equal(decide('clone', (1n << 40n) | BigInt(flag)), 'EPERM');
    }
    assert.equal(decide('clone3'), 'ENOSYS');
  });

  test('socket: AF_PACKET, AF_VSOCK, SOCK_RAW and SOCK_PACKET refused; TCP, UDP, unix and netlink pass', () => {
    const [AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_VSOCK] = [1, 2, 10, 16, 17, 40];
    const [STREAM, DGRAM, RAW, PACKET, NONBLOCK, CLOEXEC] = [1, 2, 3, 10, 0o4000, 0o2000000];
    assert.equal(decide('socket', AF_INET, STREAM | CLOEXEC), 'allow');
    assert.equal(decide('socket', AF_INET6, DGRAM), 'allow');
    assert.equal(decide('socket', AF_UNIX, STREAM), 'allow');
    assert.equal(decide('socket', AF_NETLINK, RAW | CLOEXEC), 'allow');
    assert.equal(decide('socket', AF_PACKET, DGRAM), 'EPERM');
    assert.equal(decide('socket', (1n << 32n) | BigInt(AF_PACKET), DGRAM), 'EPERM');
    assert.equal(decide('socket', AF_VSOCK, STREAM), 'EPERM');
    assert.equal(decide('socket', AF_INET, RAW | NONBLOCK | CLOEXEC), 'EPERM');
    assert.equal(decide('socket', AF_INET, PACKET), 'EPERM');
  });

  test('ioctl: TIOCSTI, TIOCLINUX, TIOCSETD refused whatever the upper half holds; others pass', () => {
    for (const req of [0x5412, 0x541c, 0x5423]) {
      assert.equal(decide('ioctl', 0, req), 'EPERM');
      assert.equal(decide('ioctl', 0, (0xdeadn << 32n) | BigInt(req)), 'EPERM');
    }
    assert.equal(decide('ioctl', 0, 0x5401 /* TCGETS */), 'allow');
    assert.equal(decide('ioctl', 0, 0x541b /* FIONREAD */), 'allow');
  });

  test('no condition compares an int argument with a bare eq (the upper-half bypass)', () => {
    for (const r of SECCOMP_RULES) for (const alt of r.when ?? []) for (const c of alt) assert.notEqual(c.op, 'eq', `${r.syscall}: use masked_eq VALUE 0xffffffff`);
  });

  test('every rule has a one-line reason, and words for its conditions', () => {
    for (const r of SECCOMP_RULES) {
      assert.ok(r.reason.length > 10 && !r.reason.includes('\n'), r.syscall);
      if (r.when) assert.ok(r.on, `${r.syscall} needs 'on'`);
    }
  });

  test('renderRules starts with explicit default and badarch actions and compiles', () => {
    const text = renderRules();
    assert.match(text, /^# .*\ndefault allow\nbadarch kill\n/);
    const r = exportRules(text);
    assert.equal(r.status, 0, r.stderr);
  });
});
