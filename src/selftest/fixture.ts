// Prepares a throwaway world for the battery: a fake home full of planted fake
// secrets (each a unique canary), a workspace that looks like a real project
// (git repository, a nested repository, CI files, agent configuration), a
// directory outside the workspace, and private cordon directories. Nothing
// here is a real credential; every value is random and recognisable.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { openVault } from '../broker/vault/index.ts';
import type { Fixture, SelftestCredentials } from './types.ts';

export const CANARY_PREFIX = 'cordon-canary-';

export function canary(name: string): string {
  return `${CANARY_PREFIX}${name}-${randomBytes(12).toString('hex')}`;
}

/** Secret files planted in the fake home: relative path -> canary name. */
export const PLANTED: Readonly<Record<string, string>> = {
  '.ssh/id_ed25519': 'ssh',
  '.aws/credentials': 'aws',
  '.gnupg/private-keys-v1.d/key.key': 'gnupg',
  '.config/gcloud/application_default_credentials.json': 'gcloud',
  '.kube/config': 'kube',
  '.docker/config.json': 'docker',
  '.config/gh/hosts.yml': 'gh',
  '.netrc': 'netrc',
  '.git-credentials': 'gitcred',
  '.npmrc': 'npmrc',
  '.local/share/keyrings/login.keyring': 'keyring',
  '.mozilla/firefox/profile/cookies.sqlite': 'browser',
};

export interface FixtureOptions {
  /** Parent directory (default: the system temp dir). */
  under?: string;
  /** A user policy copied into the fixture's config directory. */
  policyText?: string;
  /** Uid/gid that must be able to use the fixture (tests running as another user). */
  owner?: { uid: number; gid: number };
}

export function createFixture(opts: FixtureOptions = {}): Fixture {
  const root = mkdtempSync(join(opts.under ?? tmpdir(), 'cordon-battery-'));
  chmodSync(root, 0o755);
  const home = join(root, 'home');
  const workspace = join(root, 'workspace');
  const outside = join(root, 'outside');
  const stateDir = join(root, 'state');
  const configDir = join(root, 'config');
  const runtimeDir = join(root, 'run');
  for (const d of [home, workspace, outside, configDir]) mkdirSync(d, { recursive: true });
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });

  const canaries: Record<string, string> = {};
  const put = (file: string, content: string, mode = 0o600) => {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, content, { mode });
  };
  for (const [rel, name] of Object.entries(PLANTED)) {
    canaries[name] = canary(name);
    put(join(home, rel), `fake credential planted by cordon selftest\n${canaries[name]}\n`);
  }
  canaries.env = canary('env');
  canaries.outside = canary('outside');
  put(join(outside, 'secret.txt'), `${canaries.outside}\n`, 0o644);
  writeFileSync(join(home, '.bashrc'), '# the user\'s own start-up file\n');
  if (opts.policyText !== undefined) writeFileSync(join(configDir, 'policy.yaml'), opts.policyText);

  // The workspace: a repository with hooks, a nested repository, CI and agent config.
  const git = (args: string[], cwd: string) =>
    execFileSync('git', args, { cwd, stdio: 'ignore', env: { ...process.env, HOME: home, GIT_CONFIG_NOSYSTEM: '1' } });
  git(['init', '-q', '.'], workspace);
  writeFileSync(join(workspace, 'README.md'), '# project\n');
  mkdirSync(join(workspace, '.github', 'workflows'), { recursive: true });
  writeFileSync(join(workspace, '.github', 'workflows', 'ci.yml'), 'on: push\njobs: {}\n');
  mkdirSync(join(workspace, '.vscode'));
  writeFileSync(join(workspace, '.vscode', 'settings.json'), '{}\n');
  mkdirSync(join(workspace, '.cordon'));
  writeFileSync(join(workspace, '.cordon', 'policy.yaml'), 'version: 1\n');
  const nested = join(workspace, 'vendor', 'lib');
  mkdirSync(nested, { recursive: true });
  git(['init', '-q', '.'], nested);
  // A nested repository whose hooks directory points at the user's SSH keys:
  // planted by an earlier session, it must not become a mount of ~/.ssh.
  const trap = join(workspace, 'vendor', 'trap');
  mkdirSync(join(trap, '.git'), { recursive: true });
  symlinkSync(join(home, '.ssh'), join(trap, '.git', 'hooks'));
  symlinkSync(join(home, '.ssh', 'id_ed25519'), join(workspace, 'link-to-key'));

  // Probe programs, readable from inside.
  const probeBin = join(root, 'probe-bin');
  mkdirSync(probeBin);

  if (opts.owner) chownTree(root, opts.owner.uid, opts.owner.gid);

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    CORDON_STATE_DIR: stateDir,
    CORDON_CONFIG_DIR: configDir,
    CORDON_RUNTIME_DIR: runtimeDir,
    CORDON_SYSTEM_DIR: join(root, 'system'),
    CORDON_CANARY_TOKEN: canaries.env,
    AWS_SECRET_ACCESS_KEY: canaries.env,
  };
  delete env.XDG_RUNTIME_DIR;
  delete env.XDG_STATE_HOME;
  return { root, home, workspace, outside, stateDir, configDir, runtimeDir, canaries, env, probeBin };
}

/**
 * Put the battery's test credential in the fixture's vault (an encrypted-file
 * vault whose key is a file next to it: never the user's keyring) and record
 * it in `f.credentials`. The value is random and canary-shaped, and it joins
 * `f.canaries`: it must never reach a sandbox's output, an endpoint other
 * than the bound legit host, or the audit log. Sessions of this fixture (its
 * CORDON_STATE_DIR) then find it when the credentials overlay binds it.
 */
export async function addTestCredential(f: Fixture): Promise<SelftestCredentials> {
  const creds: SelftestCredentials = {
    secret: 'selftest-api',
    env: 'SELFTEST_API_KEY',
    placeholderPrefix: 'sk-selftest-',
    header: 'authorization',
    scheme: 'Bearer',
    canaryFile: '~/.config/selftest/token',
    realCanary: 'vault',
  };
  const real = canary(creds.realCanary);
  // An empty environment: no session bus, so the file backend keeps its key in a file.
  const vault = await openVault({ stateDir: f.stateDir, prefer: 'file', env: {} });
  const value = Buffer.from(real, 'latin1');
  try {
    await vault.set(creds.secret, value, { description: 'cordon selftest: a random test value, not a credential' });
  } finally {
    value.fill(0);
    vault.close();
  }
  // A fixture made for another user (FixtureOptions.owner): the vault goes with it.
  const st = statSync(f.stateDir);
  if (process.getuid?.() === 0 && st.uid !== 0) chownTree(join(f.stateDir, 'vault'), st.uid, st.gid);
  f.canaries[creds.realCanary] = real;
  f.credentials = creds;
  return creds;
}

/** Copy a probe program into the fixture so the sandbox can run it. */
export function addProbeProgram(f: Fixture, src: string, name: string): string {
  const dest = join(f.probeBin, name);
  copyFileSync(src, dest);
  chmodSync(dest, 0o755);
  return dest;
}

function chownTree(root: string, uid: number, gid: number): void {
  execFileSync('chown', ['-R', '-h', `${uid}:${gid}`, root]);
}
