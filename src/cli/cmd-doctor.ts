// `cordon doctor`: every prerequisite, tried for real: works / missing / how to fix.

import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { EXIT } from '../errors.ts';
import { canAccess } from '../fs-access.ts';
import { netcapChecks } from '../netcap/capture.ts';
import { hostPaths } from '../paths.ts';
import { bwrapChecks } from '../sandbox/bwrap/checks.ts';
import type { PrereqCheck } from '../sandbox/prereq.ts';
import { printJson, style } from './output.ts';

const APT = 'sudo apt-get install -y';

function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim() };
}

function nodeCheck(): PrereqCheck {
  const major = Number(process.versions.node.split('.')[0]);
  return major >= 22
    ? { id: 'node', title: 'Node.js LTS', status: 'works', detail: `v${process.versions.node}`, required: true }
    : { id: 'node', title: 'Node.js LTS', status: 'missing', detail: `v${process.versions.node} is end-of-life`, fix: 'scripts/setup.sh installs Node 24 into the checkout', required: true };
}

function cgroupCheck(): PrereqCheck {
  const lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
  const v2 = lines.find((l) => l.startsWith('0::'))?.slice(3);
  for (const mount of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    if (v2 === undefined || !existsSync(`${mount}/cgroup.controllers`)) continue;
    let sub = '';
    try {
      sub = readFileSync(`${mount}${v2}/cgroup.subtree_control`, 'utf8');
    } catch {
      // not readable
    }
    if (/memory/.test(sub) && /pids/.test(sub) && writable(`${mount}${v2}`)) {
      return { id: 'cgroups', title: 'cgroups', status: 'works', detail: `cgroup v2 delegated at ${mount}${v2}: memory and process limits cover the whole sandbox`, required: false };
    }
  }
  const mem = lines.find((l) => /:memory:/.test(l))?.split(':')[2];
  const pids = lines.find((l) => /:pids:/.test(l))?.split(':')[2];
  if (mem !== undefined && pids !== undefined && writable(`/sys/fs/cgroup/memory${mem}`) && writable(`/sys/fs/cgroup/pids${pids}`)) {
    return { id: 'cgroups', title: 'cgroups', status: 'works', detail: 'cgroup v1 memory and pids controllers are writable: limits cover the whole sandbox', required: false };
  }
  return {
    id: 'cgroups',
    title: 'cgroups',
    status: 'degraded',
    detail: 'no delegated cgroup: memory is limited per process (address space) and processes per user namespace (rlimits)',
    fix: 'run cordon inside a delegated cgroup, e.g. systemd-run --user --scope -p Delegate=yes cordon run ...',
    required: false,
  };
}

const writable = (p: string) => canAccess(p, 'write');

function kvmCheck(): PrereqCheck {
  if (!existsSync('/dev/kvm')) return { id: 'kvm', title: '/dev/kvm', status: 'missing', detail: 'no /dev/kvm (needed by the vm backend only)', fix: 'enable virtualisation in firmware, load kvm_intel/kvm_amd, add yourself to the kvm group', required: false };
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { id: 'kvm', title: '/dev/kvm', status: 'missing', detail: '/dev/kvm exists but is not accessible', fix: 'sudo usermod -aG kvm $USER (then log in again)', required: false };
  }
  return { id: 'kvm', title: '/dev/kvm', status: 'works', detail: '/dev/kvm is accessible (vm backend: not in this version)', required: false };
}

function runscCheck(): PrereqCheck {
  const r = run('runsc', ['--version']);
  return r.ok
    ? { id: 'runsc', title: 'gVisor (runsc)', status: 'works', detail: `${r.out.split('\n')[0]} (gvisor backend: not in this version)`, required: false }
    : { id: 'runsc', title: 'gVisor (runsc)', status: 'missing', detail: 'runsc not found (needed by the gvisor backend only)', fix: `${APT} runsc`, required: false };
}

export async function collectChecks(): Promise<PrereqCheck[]> {
  const paths = hostPaths();
  // Network capture is only needed with network.mode: proxy (the default is loopback only).
  const capture = netcapChecks({ installDir: paths.install }).map((c) => ({ ...c, required: false, title: c.id === 'netcap' ? 'network capture (proxy mode)' : c.title }));
  return [nodeCheck(), ...(await bwrapChecks(paths.install, 'bwrap')), cgroupCheck(), ...capture, kvmCheck(), runscCheck()];
}

export async function cmdDoctor(o: { json?: boolean }): Promise<number> {
  const checks = await collectChecks();
  const ok = checks.every((c) => !c.required || c.status === 'works');
  if (o.json) {
    printJson({ ok, checks });
    return ok ? EXIT.ok : EXIT.failed;
  }
  const w = Math.max(...checks.map((c) => c.title.length));
  for (const c of checks) {
    const mark = c.status === 'works' ? style.green('works   ') : c.status === 'degraded' ? style.yellow('degraded') : c.required ? style.red('MISSING ', process.stdout) : style.yellow('missing ');
    process.stdout.write(`${mark} ${c.title.padEnd(w)}  ${c.detail}\n`);
    if (c.fix && c.status !== 'works') process.stdout.write(`         ${''.padEnd(w)}  ${style.dim('fix:')} ${c.fix}\n`);
  }
  process.stdout.write(ok ? `\n${style.green('cordon run can contain agents on this machine.')}\n` : `\n${style.red('cordon run will refuse to start until the MISSING items are fixed.', process.stdout)}\n`);
  return ok ? EXIT.ok : EXIT.failed;
}
