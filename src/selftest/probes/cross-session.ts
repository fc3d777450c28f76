// Class 15: cross-session isolation. A peer session runs at the same time with
// its own canary in its environment, its workspace, its /tmp, its /dev/shm and
// an abstract unix socket; every reach from this session must fail.
//
// With a credentials overlay the peer (A) also holds a placeholder for the
// test credential; xs.peer-placeholder hands it to this session (B), as if it
// had leaked, and B presents it to the bound host through B's own proxy. It
// is filed under class 11 (credential abuse: a foreign credential on a
// credentialed host) because it needs proxy mode and a bound secret: the
// sandbox-only runs of classes 13-15 (network.mode none) stay all-contained.

import { credentialJudge, credentialScript, credentialsApply, refused, used } from './credentials.ts';
import type { Probe } from '../types.ts';

/**
 * What the peer session runs: plant its canary everywhere, then wait. With
 * `placeholderEnv` (the peer runs under the credentials overlay) it also
 * writes its placeholder to .peer-placeholder in its workspace, for the host.
 */
export function peerScript(canary: string, placeholderEnv: string | null = null): string {
  return [
    `echo ${canary} > /tmp/peer-canary; echo ${canary} > /dev/shm/peer-canary; echo ${canary} > peer-canary.txt`,
    ...(placeholderEnv ? [`printf '%s\n' "$${placeholderEnv}" > .peer-placeholder`] : []),
    `command -v python3 >/dev/null && python3 -c "import socket,time\ns=socket.socket(socket.AF_UNIX); s.bind('\\0cordon-peer'); s.listen(1)\nwhile True:\n  c,_=s.accept(); c.send(b'${canary}'); c.close()" &`,
    'echo ready > .peer-ready',
    'sleep 120',
  ].join('\n');
}

export const CROSS_SESSION_PROBES: Probe[] = [
  {
    id: 'xs.peer-files',
    class: 15,
    title: "read the peer session's workspace, /tmp and /dev/shm",
    needsPeer: true,
    script: (c) => `cat "${c.peer!.workspace}/peer-canary.txt" /tmp/peer-canary /dev/shm/peer-canary 2>&1; ls "${c.peer!.workspace}" 2>&1`,
  },
  {
    id: 'xs.peer-processes',
    class: 15,
    title: "see, read or signal the peer session's processes",
    needsPeer: true,
    script: () => 'ps -eo pid,args 2>&1 | head -20; for p in /proc/[0-9]*; do tr "\\0" "\\n" < $p/environ 2>/dev/null; tr "\\0" " " < $p/cmdline 2>/dev/null; echo; done; pkill -9 sleep 2>&1; echo done',
    leak: (run) => (/sleep 120/.test(run.stdout) ? "the peer's processes are visible" : null),
  },
  {
    id: 'xs.peer-abstract-socket',
    class: 15,
    title: "connect to the peer session's abstract unix socket",
    needsPeer: true,
    script: () =>
      'command -v python3 >/dev/null || { echo "no python3"; exit 0; }; python3 -c "import socket\ns=socket.socket(socket.AF_UNIX)\ntry:\n  s.connect(\'\\0cordon-peer\'); print(s.recv(200))\nexcept OSError as e: print(\'refused\', e)" 2>&1',
  },
  {
    id: 'xs.peer-audit',
    class: 15,
    title: "read the peer's audit records and session directory",
    needsPeer: true,
    script: (c) => `ls -la "${c.fixture.stateDir}" "${c.fixture.runtimeDir}" 2>&1; find / -name "audit.db" -o -name "journal.json" 2>/dev/null | head`,
    leak: (run) => (/audit\.db|journal\.json/.test(run.stdout) ? 'cordon state is reachable' : null),
  },
  {
    id: 'xs.peer-placeholder',
    class: 11,
    title: "present the peer session's placeholder to the bound host through this session's proxy",
    needsPeer: true,
    credentials: true,
    applies: (c) => credentialsApply(c) ?? (c.peer?.placeholder ? null : 'not applicable: the peer session holds no placeholder (it did not run under the credentials overlay)'),
    script: (c) =>
      credentialScript(c, [
        `APH='${c.peer!.placeholder!}'`,
        `[ "$APH" != "$PH" ] || { echo "cordon selftest: the peer's placeholder is this session's" >&2; exit 125; }`,
        'req "peer placeholder in Authorization" -H "Authorization: Bearer $APH" "https://$L:$SP/v1/files"',
        'req "peer placeholder in x-api-key" -H "x-api-key: $APH" "https://$L:$SP/v1/files"',
        'req "peer placeholder over plain HTTP" -H "Authorization: Bearer $APH" "http://$L:$HP/v1/files"',
        'req "own placeholder (control)" -H "Authorization: Bearer $PH" "https://$L:$SP/v1/own"',
      ]),
    leak: credentialJudge({
      audit: [refused("the peer's placeholder, a credential from another session", 3, /another session/, '/v1/files'), used('no injection for the peer placeholder', 0, '/v1/files', 0), used('the control request', 1, '/v1/own')],
      legit: (reqs) => {
        const got = reqs.filter((q) => q.url.startsWith('/v1/files'));
        return got.length > 0 ? `the bound host received ${got.length} request(s) carrying the peer's placeholder` : null;
      },
    }),
  },
];
