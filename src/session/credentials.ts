// The session's credentials: real values read from the vault (and wiped from
// this module's buffers as soon as the broker has its copy), placeholders
// planted as variables and read-only files inside the sandbox.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueCredentials } from '../broker/index.ts';
import type { PlantedFile, SessionCredentials } from '../broker/types.ts';
import { openVault } from '../broker/vault/index.ts';
import { CordonError } from '../errors.ts';
import type { Binding, Canary } from '../policy/types.ts';
import type { MountSpec } from '../sandbox/backend.ts';

export async function issueSessionCredentials(opts: {
  sessionId: string;
  bindings: Binding[];
  canaries: Canary[];
  stateDir: string;
  home: string;
  audit: (type: string, data: Record<string, unknown>) => void;
}): Promise<SessionCredentials> {
  const secrets = new Map<string, Buffer>();
  try {
    if (opts.bindings.length > 0) {
      const vault = await openVault({ stateDir: opts.stateDir, prefer: 'auto' });
      try {
        for (const b of opts.bindings) {
          if (secrets.has(b.secret)) continue;
          const value = await vault.get(b.secret);
          if (value === null) {
            throw new CordonError('CORDON_SECRET', `credentials.bindings[${b.index}]: the secret "${b.secret}" is not in the vault`, {
              hint: `add it on the host: cordon secret add ${b.secret}`,
              detail: { field: `credentials.bindings[${b.index}]`, secretName: b.secret },
            });
          }
          secrets.set(b.secret, value);
        }
      } finally {
        vault.close();
      }
    }
    return issueCredentials({ sessionId: opts.sessionId, bindings: opts.bindings, canaries: opts.canaries, secrets, home: opts.home, audit: opts.audit });
  } finally {
    for (const v of secrets.values()) v.fill(0);
  }
}

/** Write placeholder files into the session directory; mounts put them in place, read-only. */
export function plantFiles(sessionDir: string, files: PlantedFile[]): MountSpec[] {
  if (files.length === 0) return [];
  const dir = join(sessionDir, 'planted');
  mkdirSync(dir, { mode: 0o700 });
  return files.map((f, i) => {
    const src = join(dir, String(i));
    writeFileSync(src, f.content, { mode: 0o444 });
    return { kind: 'ro-bind', src, dest: f.path };
  });
}
