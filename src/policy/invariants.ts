// Invariants no policy can override, except through a field whose name starts
// with `dangerously`. This file is the single source of truth; docs/invariants.md
// is generated from it. Pure data and pure functions: no I/O.

/**
 * Host paths that are never mounted into a sandbox. `~` is the user's home;
 * `$STATE`, `$CONFIG`, `$RUNTIME` are cordon's own directories. A mount that
 * contains one of these gets it masked; a mount inside one is refused.
 */
export const NEVER_MOUNT: readonly string[] = [
  // cordon's own control plane: policy, audit store, vault, CA keys, sockets
  '$CONFIG',
  '$STATE',
  '$RUNTIME',
  '/etc/cordon',
  // credentials and keys
  '~/.ssh',
  '~/.aws',
  '~/.gnupg',
  '~/.config/gcloud',
  '~/.azure',
  '~/.kube',
  '~/.docker',
  '~/.config/gh',
  '~/.config/hub',
  '~/.netrc',
  '~/.git-credentials',
  '~/.npmrc',
  '~/.pypirc',
  '~/.cargo/credentials',
  '~/.cargo/credentials.toml',
  '~/.gem/credentials',
  '~/.vault-token',
  '~/.terraform.d/credentials.tfrc.json',
  '~/.password-store',
  // keyrings and browser profiles
  '~/.local/share/keyrings',
  '~/.pki',
  '~/.mozilla',
  '~/.config/google-chrome',
  '~/.config/chromium',
  '~/.config/BraveSoftware',
  '~/.config/microsoft-edge',
  '~/snap/firefox',
  '~/snap/chromium',
  // container engines: a socket is root on the host
  '/var/run/docker.sock',
  '/run/docker.sock',
  '/run/podman',
  '/run/containerd',
  '$XDG_RUNTIME_DIR/docker.sock',
  '$XDG_RUNTIME_DIR/podman',
  '$XDG_RUNTIME_DIR/keyring',
  '$XDG_RUNTIME_DIR/bus',
  '$XDG_RUNTIME_DIR/gnupg',
];

/**
 * Paths inside the workspace (and in every nested repository) that stay
 * read-only by default, because something on the host executes or obeys them.
 * A trailing `/` marks a directory. `*` matches within one path segment.
 */
export const PROTECTED_IN_WORKSPACE: readonly string[] = [
  // git runs these on the host
  '.git/hooks/',
  '.git/config',
  '.git/info/attributes',
  '.gitmodules',
  // cordon's own workspace policy
  '.cordon/',
  // agent configuration that executes or redirects agents
  '.claude/settings.json',
  '.claude/settings.local.json',
  '.claude/hooks/',
  '.claude/commands/',
  '.mcp.json',
  '.cursor/',
  '.gemini/settings.json',
  '.codex/',
  '.vscode/',
  '.idea/',
  '.devcontainer/',
  // CI definitions
  '.github/workflows/',
  '.github/actions/',
  '.gitlab-ci.yml',
  '.circleci/',
  '.buildkite/',
  'azure-pipelines.yml',
  '.travis.yml',
  // shell and tool start-up files
  '.envrc',
  '.bashrc',
  '.bash_profile',
  '.bash_login',
  '.profile',
  '.zshrc',
  '.zshenv',
  '.zprofile',
  '.zlogin',
  '.config/fish/',
];

/**
 * Protected entries that host tools may act on at any moment, even while the
 * session runs (an editor opening the folder, direnv, an agent started on the
 * host). When missing at the workspace root they get an empty read-only
 * placeholder so the agent cannot create them. The others (CI files, hooks of
 * repositories created during the session) are caught by the sweep after the
 * session. Shell start-up files join this set when the workspace is the home
 * directory.
 */
export const LIVE_PROTECTED: readonly string[] = [
  '.cordon/',
  '.claude/settings.json',
  '.claude/settings.local.json',
  '.mcp.json',
  '.cursor/',
  '.gemini/settings.json',
  '.codex/',
  '.vscode/',
  '.idea/',
  '.devcontainer/',
  '.envrc',
];

export const SHELL_STARTUP: readonly string[] = ['.bashrc', '.bash_profile', '.bash_login', '.profile', '.zshrc', '.zshenv', '.zprofile', '.zlogin', '.config/fish/'];

/** Names of directories whose presence marks a (nested) repository root. */
export const REPO_MARKERS: readonly string[] = ['.git'];

/** Variables always set inside the sandbox (values computed by cordon or copied from the host). */
export const ENV_ALWAYS: readonly string[] = ['PATH', 'HOME', 'TERM', 'LANG', 'LC_*', 'TZ', 'USER', 'LOGNAME'];

/** Host variable names that look like they hold a secret. */
const SECRET_NAME = /(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?|SESSION_KEY|AUTH|COOKIE)S?($|_)/i;

export function looksSecret(name: string): boolean {
  return SECRET_NAME.test(name.replace(/\*$/, ''));
}

/** Does `name` match an allowlist entry (exact, or PREFIX_* prefix)? */
export function envNameMatches(entry: string, name: string): boolean {
  if (entry.endsWith('*')) return name.startsWith(entry.slice(0, -1));
  return entry === name;
}

/** Matches one PROTECTED_IN_WORKSPACE entry (without trailing slash) against a relative path. */
export function protectedPatternMatches(pattern: string, rel: string): boolean {
  const p = pattern.replace(/\/$/, '').split('/');
  const r = rel.split('/');
  if (p.length !== r.length) return false;
  return p.every((seg, i) => segmentMatches(seg, r[i]!));
}

function segmentMatches(pattern: string, seg: string): boolean {
  if (!pattern.includes('*')) return pattern === seg;
  const re = new RegExp('^' + pattern.split('*').map(escapeRe).join('[^/]*') + '$');
  return re.test(seg);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
