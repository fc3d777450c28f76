// Built-in profiles: starting points for common agents that a user policy
// extends (`extends: claude-code`). They are ordinary policy layers, shown by
// `cordon policy show` with origin "profile:<name>". They never name secret
// paths: agent credentials reach the sandbox only as broker placeholders.

import type { PolicyFile } from './schema.ts';

/** The layer every effective policy starts from. */
export const DEFAULTS: Required<Omit<PolicyFile, 'extends'>> = {
  version: 1,
  sandbox: { backend: 'bwrap', hostname: 'cordon' },
  filesystem: { read: [], write: [], hide: [], protect: [], dangerouslyAllowSecretPaths: [], dangerouslyUnprotect: [] },
  env: { pass: [], set: {}, dangerouslyPassSecrets: [] },
  limits: { processes: 1024, memory: '8GiB', cpuTime: 'unlimited', fileSize: '16GiB', openFiles: 4096, timeout: 'unlimited' },
  network: { mode: 'none', rules: [], hosts: {} },
  credentials: { bindings: [], canaries: [] },
};

/** Installing packages from the registry the user's npm is configured for (read-only methods). */
const NPM_REGISTRY = { allow: '${npm.registry}', ports: [443, 80], methods: ['GET', 'HEAD'] };

const generic: PolicyFile = {
  version: 1,
  filesystem: {
    // Identity and aliases for git; no credentials live here.
    read: ['~/.gitconfig', '~/.config/git/config', '~/.config/git/ignore'],
  },
  env: { pass: ['COLORTERM', 'TERM_PROGRAM', 'NO_COLOR', 'FORCE_COLOR', 'EDITOR', 'VISUAL'] },
};

const claudeCode: PolicyFile = {
  version: 1,
  extends: 'generic',
  network: {
    mode: 'proxy',
    rules: [{ allow: 'api.anthropic.com', ports: [443] }, NPM_REGISTRY],
  },
  filesystem: {
    // Claude Code keeps sessions, todos and project memory here.
    write: ['~/.claude', '~/.claude.json'],
    // Its settings run hooks on the host: readable, never writable.
    read: ['~/.claude/settings.json', '~/.claude/settings.local.json'],
    // OAuth tokens: the agent gets a broker placeholder instead.
    hide: ['~/.claude/.credentials.json'],
  },
  env: { pass: ['CLAUDE_CODE_USE_BEDROCK', 'CLAUDE_CODE_USE_VERTEX', 'DISABLE_TELEMETRY', 'DISABLE_AUTOUPDATER'] },
};

const codex: PolicyFile = {
  version: 1,
  extends: 'generic',
  network: {
    mode: 'proxy',
    rules: [{ allow: 'api.openai.com', ports: [443] }, NPM_REGISTRY],
  },
  filesystem: {
    write: ['~/.codex'],
    read: ['~/.codex/config.toml'],
    hide: ['~/.codex/auth.json'],
  },
  env: { pass: ['CODEX_HOME'] },
};

const geminiCli: PolicyFile = {
  version: 1,
  extends: 'generic',
  network: {
    mode: 'proxy',
    rules: [{ allow: 'generativelanguage.googleapis.com', ports: [443] }, NPM_REGISTRY],
  },
  filesystem: {
    write: ['~/.gemini'],
    read: ['~/.gemini/settings.json'],
    hide: ['~/.gemini/oauth_creds.json', '~/.gemini/google_accounts.json'],
  },
};

export const PROFILES: Readonly<Record<string, PolicyFile>> = {
  generic,
  'claude-code': claudeCode,
  codex,
  'gemini-cli': geminiCli,
};

/** The profile used when no policy file names one: the README's embedded default. */
export const DEFAULT_PROFILE = 'generic';
