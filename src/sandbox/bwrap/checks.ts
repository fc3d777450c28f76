// Prerequisites of the bwrap backend, each tried for real rather than guessed.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { PrereqCheck } from '../prereq.ts';

const APT = 'sudo apt-get install -y';

function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  // No terminal on stdin: a probe must never touch the user's terminal.
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim() };
}

export async function bwrapChecks(installDir: string, bwrap: string): Promise<PrereqCheck[]> {
  const out: PrereqCheck[] = [];
  const native = (n: string) => join(installDir, 'build', 'native', n);

  const v = run(bwrap, ['--version']);
  out.push(
    v.ok
      ? { id: 'bwrap', title: 'bubblewrap', status: 'works', detail: v.out, required: true }
      : { id: 'bwrap', title: 'bubblewrap', status: 'missing', detail: v.out || 'not found', fix: `${APT} bubblewrap`, required: true },
  );

  if (v.ok) {
    const userns = run(bwrap, ['--unshare-user', '--unshare-pid', '--unshare-net', '--disable-userns', '--ro-bind', '/', '/', '--', 'true']);
    out.push(
      userns.ok
        ? { id: 'userns', title: 'user namespaces', status: 'works', detail: 'bwrap can create user, pid and net namespaces', required: true }
        : {
            id: 'userns',
            title: 'user namespaces',
            status: 'missing',
            detail: userns.out,
            fix: 'enable unprivileged user namespaces: sudo sysctl -w kernel.unprivileged_userns_clone=1 (Debian) or kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 24.04+, or add an AppArmor profile for bwrap)',
            required: true,
          },
    );
  }

  const helpers = ['cordon-launch', 'cordon-init', 'seccomp-export'];
  const missing = helpers.filter((h) => !existsSync(native(h)));
  out.push(
    missing.length === 0
      ? { id: 'helpers', title: 'cordon helpers', status: 'works', detail: `built in ${join(installDir, 'build/native')}`, required: true }
      : { id: 'helpers', title: 'cordon helpers', status: 'missing', detail: `not built: ${missing.join(', ')}`, fix: `${join(installDir, 'scripts/build-native.sh')}`, required: true },
  );

  if (existsSync(native('seccomp-export'))) {
    const s = spawnSync(native('seccomp-export'), [], { input: 'default allow\nbadarch kill\ndeny ptrace EPERM\n', timeout: 10_000 });
    out.push(
      s.status === 0 && s.stdout.length > 0
        ? { id: 'seccomp', title: 'seccomp (libseccomp)', status: 'works', detail: `filter compiles (${s.stdout.length / 8} instructions for a one-rule test)`, required: true }
        : { id: 'seccomp', title: 'seccomp (libseccomp)', status: 'missing', detail: String(s.stderr ?? s.error), fix: `${APT} libseccomp2 libseccomp-dev && scripts/build-native.sh`, required: true },
    );
  }

  if (existsSync(native('cordon-init'))) {
    const l = run(native('cordon-init'), ['--require-landlock', '--ro', '/', '--', 'true']);
    out.push(
      l.ok
        ? { id: 'landlock', title: 'Landlock', status: 'works', detail: 'second filesystem layer active', required: false }
        : {
            id: 'landlock',
            title: 'Landlock',
            status: 'degraded',
            detail: `not available (${l.out}); mounts alone enforce the filesystem policy`,
            fix: 'use a kernel >= 5.13 with CONFIG_SECURITY_LANDLOCK=y and "landlock" in the lsm= boot parameter',
            required: false,
          },
    );
  }
  return out;
}

export function landlockAvailable(installDir: string): boolean {
  const init = join(installDir, 'build', 'native', 'cordon-init');
  return existsSync(init) && run(init, ['--require-landlock', '--ro', '/', '--', 'true']).ok;
}
