// The sandbox environment: cleared, then rebuilt from an allowlist. Host
// variables never leak by default. Pure: no I/O.

import { envNameMatches, looksSecret } from '../policy/invariants.ts';
import type { EffectivePolicy } from '../policy/types.ts';

export interface EnvResult {
  env: Record<string, string>;
  /** Names of host variables left out (names only: values are never recorded). */
  dropped: string[];
}

export interface EnvInput {
  policy: EffectivePolicy;
  hostEnv: NodeJS.ProcessEnv;
  home: string;
  user: string;
  sessionId: string;
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function buildEnv(input: EnvInput): EnvResult {
  const { policy, hostEnv } = input;
  const env: Record<string, string> = {};
  const copy = (name: string) => {
    const v = hostEnv[name];
    if (v !== undefined && !v.includes('\0')) env[name] = v;
  };

  env.PATH = hostEnv.PATH && hostEnv.PATH.length > 0 ? hostEnv.PATH : DEFAULT_PATH;
  env.HOME = input.home;
  env.USER = input.user;
  env.LOGNAME = input.user;
  env.TERM = hostEnv.TERM ?? 'dumb';
  for (const name of ['LANG', 'LANGUAGE', 'TZ']) copy(name);
  for (const name of Object.keys(hostEnv)) if (name.startsWith('LC_')) copy(name);

  for (const name of Object.keys(hostEnv)) {
    for (const entry of policy.env.pass) {
      if (!envNameMatches(entry, name)) continue;
      // A PREFIX_* entry never sweeps in secret-looking names by accident.
      if (looksSecret(name) && !policy.env.dangerouslyPassSecrets.some((d) => envNameMatches(d, name))) continue;
      copy(name);
    }
  }
  for (const name of Object.keys(hostEnv)) {
    if (policy.env.dangerouslyPassSecrets.some((d) => envNameMatches(d, name))) copy(name);
  }
  for (const [k, v] of Object.entries(policy.env.set)) env[k] = v;
  env.CORDON_SESSION = input.sessionId;
  env.CORDON_SANDBOX = '1';

  const dropped = Object.keys(hostEnv)
    .filter((n) => !(n in env))
    .sort();
  return { env, dropped };
}
