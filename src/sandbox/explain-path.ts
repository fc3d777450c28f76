// `cordon policy explain PATH`: what the sandbox sees at a host path, and which
// rule decided it. Computed from the same mount plan `cordon run` executes, so
// the explanation cannot drift from the behaviour.

import { existsSync } from 'node:fs';
import type { MountSpec } from './backend.ts';
import type { MountPlan, PlanEvent } from './mount-plan.ts';

export interface PathExplanation {
  path: string;
  access: 'read-write' | 'read-only' | 'hidden' | 'not mounted' | 'empty (private tmpfs)' | 'kernel (private)';
  /** Field or invariant that decided: "filesystem.read[0]", "never mounted (~/.ssh)", "protected workspace path"... */
  decidedBy: string;
  /** The mount that covers the path, if any. */
  mount: MountSpec | null;
}

const covers = (dest: string, p: string) => p === dest || p.startsWith(dest === '/' ? '/' : dest + '/');

export function explainPath(plan: MountPlan, path: string, emptyDir: string, emptyFile: string): PathExplanation {
  let last: MountSpec | null = null;
  for (const m of plan.mounts) if ('dest' in m && covers(m.dest, path)) last = m;
  if (last === null) return { path, access: 'not mounted', decidedBy: 'default deny: only what the policy mounts exists inside', mount: null };

  const event = (pred: (e: PlanEvent) => boolean) => plan.events.find(pred);
  switch (last.kind) {
    case 'tmpfs':
      return { path, access: 'empty (private tmpfs)', decidedBy: last.dest === plan.home ? 'home is an empty directory unless the policy binds entries into it' : 'private scratch space', mount: last };
    case 'proc':
    case 'dev':
      return { path, access: 'kernel (private)', decidedBy: `sandbox ${last.kind} (own pid namespace / minimal devices)`, mount: last };
    case 'symlink':
    case 'dir':
      return { path, access: 'read-only', decidedBy: 'sandbox skeleton', mount: last };
    case 'bind':
    case 'ro-bind': {
      const dest = last.dest;
      if (last.src !== dest && last.src !== emptyDir && last.src !== emptyFile && !existsSync(last.src + path.slice(dest.length))) {
        return { path, access: 'not mounted', decidedBy: dest === '/etc' ? 'not part of the minimal /etc' : `not present in what is mounted at ${dest}`, mount: last };
      }
      if (last.src === emptyDir || last.src === emptyFile) {
        const mask = event((e) => e.kind === 'mask' && e.path === dest);
        if (mask && 'why' in mask) return { path, access: 'hidden', decidedBy: mask.why, mount: last };
        return { path, access: 'read-only', decidedBy: 'protected workspace path (placeholder: it cannot be created)', mount: last };
      }
      if (event((e) => e.kind === 'protect' && e.path === dest)) {
        return { path, access: 'read-only', decidedBy: 'protected workspace path (host tools execute or obey it)', mount: last };
      }
      const m = event((e) => e.kind === 'mount' && e.path === dest);
      if (m && 'why' in m) return { path, access: last.kind === 'bind' ? 'read-write' : 'read-only', decidedBy: m.why, mount: last };
      return { path, access: last.kind === 'bind' ? 'read-write' : 'read-only', decidedBy: dest === '/etc' || dest.startsWith('/etc/') ? 'minimal /etc (generated, plus copies of the files programs need)' : 'system directory', mount: last };
    }
  }
}
