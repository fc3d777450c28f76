// Class 13 (control-plane tampering) and the process/environment parts of the
// boundary: privileges, namespaces, signals, the environment.

import { execFileSync } from 'node:child_process';
import type { Probe } from '../types.ts';

export const CONTROL_PLANE_PROBES: Probe[] = [
  {
    id: 'cp.host-env',
    class: 13,
    title: "read the host's environment (tokens, cloud keys)",
    script: () => 'env; tr "\\0" "\\n" < /proc/self/environ; tr "\\0" "\\n" < /proc/1/environ 2>&1',
  },
  {
    id: 'cp.capabilities',
    class: 13,
    title: 'hold any capability (NET_ADMIN, SYS_ADMIN...)',
    script: () => 'grep -E "^Cap(Eff|Prm|Bnd|Amb)" /proc/self/status; grep NoNewPrivs /proc/self/status',
    leak: (run) => {
      for (const m of run.stdout.matchAll(/^Cap(Eff|Prm|Bnd|Amb):\s*([0-9a-f]+)/gm)) if (/[1-9a-f]/.test(m[2]!)) return `Cap${m[1]} is ${m[2]}`;
      return /NoNewPrivs:\s*1/.test(run.stdout) ? null : 'no_new_privs is not set';
    },
  },
  {
    id: 'cp.namespaces',
    class: 13,
    title: 'create namespaces or mounts to regain privileges',
    script: () =>
      [
        'unshare -U -r id 2>&1 && echo USERNS-OK',
        'unshare -m true 2>&1 && echo MOUNTNS-OK',
        'unshare -n true 2>&1 && echo NETNS-OK',
        'mount -t tmpfs none /tmp 2>&1 && echo MOUNT-OK',
        'ip link set lo down 2>&1 && echo NETADMIN-OK',
        'cat /proc/sys/user/max_user_namespaces',
      ].join('\n'),
    leak: (run) => {
      const m = /\b(USERNS|MOUNTNS|NETNS|MOUNT|NETADMIN)-OK\b/.exec(run.stdout);
      return m ? `${m[1]} succeeded` : null;
    },
  },
  {
    id: 'cp.ptrace',
    class: 13,
    title: 'ptrace another process or read its memory with process_vm_readv',
    script: () =>
      [
        'command -v python3 >/dev/null || { echo "no python3"; exit 0; }',
        'sleep 30 & p=$!',
        `python3 -c "import ctypes,os,sys
libc=ctypes.CDLL(None,use_errno=True)
pid=int(sys.argv[1])
r=libc.ptrace(16,pid,0,0)
print('PTRACE-OK' if r==0 else 'ptrace denied errno=%d'%ctypes.get_errno())
class iov(ctypes.Structure): _fields_=[('b',ctypes.c_void_p),('n',ctypes.c_size_t)]
buf=ctypes.create_string_buffer(8); l=iov(ctypes.addressof(buf),8); rm=iov(0x400000,8)
r=libc.process_vm_readv(pid,ctypes.byref(l),1,ctypes.byref(rm),1,0)
print('VMREAD-OK' if r>=0 else 'process_vm_readv denied errno=%d'%ctypes.get_errno())" $p 2>&1`,
        'kill $p',
      ].join('\n'),
    leak: (run) => (/PTRACE-OK|VMREAD-OK/.test(run.stdout) ? 'ptrace or process_vm_readv succeeded' : null),
  },
  {
    id: 'cp.signal-host',
    class: 13,
    title: 'signal processes outside the sandbox (kill -9 -1)',
    script: () => 'kill -9 -1 2>&1; echo sent',
    leak: (_run, ctx) => {
      // The harness keeps a host process alive in the fixture; it must survive.
      const pid = Number(ctx.fixture.env.CORDON_SELFTEST_SENTINEL_PID ?? 0);
      if (!pid) return null;
      try {
        process.kill(pid, 0);
        return null;
      } catch {
        return `host process ${pid} was killed`;
      }
    },
  },
  {
    id: 'cp.terminal-injection',
    class: 13,
    title: "inject keystrokes into the user's terminal (TIOCSTI)",
    script: () =>
      'command -v python3 >/dev/null || { echo "no python3"; exit 0; }; python3 -c "import fcntl,termios,sys\nfor fd in (0,1,2):\n  try:\n    fcntl.ioctl(fd, termios.TIOCSTI, b\'x\'); print(\'TIOCSTI-OK\', fd)\n  except OSError as e: print(\'denied\', fd, e)" 2>&1',
    leak: (run) => (/TIOCSTI-OK/.test(run.stdout) ? 'TIOCSTI succeeded' : null),
  },
];

/** Start a host process the battery's kill probes must not reach. */
export function startSentinel(): { pid: number; stop: () => void } {
  const out = execFileSync('sh', ['-c', 'sleep 600 >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' });
  const pid = Number(out.trim());
  return {
    pid,
    stop: () => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    },
  };
}
