// bwrap's command line for a SandboxSpec. Pure: no I/O. This function owns
// the security model of the bwrap backend: every namespace, the capability
// drop, the seccomp filter and every mount come from here.

import type { SandboxSpec } from '../backend.ts';
import { INIT_PATH } from '../mount-plan.ts';

export interface BwrapFds {
  /** fd number (in bwrap) carrying the compiled seccomp BPF program. */
  seccomp: number;
  /** fd number bwrap writes JSON status lines to (child pid, exit code). */
  status: number;
  /** fd number cordon-init writes one byte to once the sandbox is set up. */
  started: number;
}

export function bwrapArgs(spec: SandboxSpec, fds: BwrapFds, opts: { requireLandlock: boolean }): string[] {
  const a: string[] = [
    // Namespaces: user, pid, mount (implicit), ipc, uts, cgroup, and net unless
    // the network plan prepared a captured namespace for us to run in.
    '--unshare-user',
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup',
  ];
  if (spec.network.kind === 'loopback') a.push('--unshare-net');
  a.push(
    // No way to create further user namespaces inside (the seccomp filter also refuses unshare/clone flags).
    '--disable-userns',
    '--assert-userns-disabled',
    '--uid', String(spec.uid),
    '--gid', String(spec.gid),
    '--hostname', spec.hostname,
    '--die-with-parent',
    '--cap-drop', 'ALL',
    '--seccomp', String(fds.seccomp),
    '--json-status-fd', String(fds.status),
  );
  // A new session detaches the sandbox from the caller's terminal (no TIOCSTI
  // into the user's shell). With a tty, cordon-launch already made a new
  // session around a fresh pty, and a second setsid would drop that terminal.
  if (!spec.tty) a.push('--new-session');

  for (const m of spec.mounts) {
    switch (m.kind) {
      case 'ro-bind':
        a.push('--ro-bind', m.src, m.dest);
        break;
      case 'bind':
        a.push('--bind', m.src, m.dest);
        break;
      case 'tmpfs':
        if (m.mode !== undefined) a.push('--perms', octal(m.mode));
        a.push('--tmpfs', m.dest);
        break;
      case 'dir':
        if (m.mode !== undefined) a.push('--perms', octal(m.mode));
        a.push('--dir', m.dest);
        break;
      case 'symlink':
        a.push('--symlink', m.target, m.dest);
        break;
      case 'proc':
        a.push('--proc', m.dest);
        break;
      case 'dev':
        a.push('--dev', m.dest);
        break;
    }
  }
  a.push('--chdir', spec.cwd);
  a.push('--', INIT_PATH);
  for (const p of spec.landlock.ro) a.push('--ro', p);
  for (const p of spec.landlock.rw) a.push('--rw', p);
  if (opts.requireLandlock) a.push('--require-landlock');
  a.push('--started-fd', String(fds.started));
  if (spec.tty) a.push('--take-terminal');
  a.push('--', ...spec.argv);
  return a;
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}
