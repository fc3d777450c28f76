// Backends by name. Each entry says what it needs and how to build it; the
// table is constant, instances are per session.

import { CordonError } from '../errors.ts';
import type { SandboxBackend } from './backend.ts';
import { BwrapBackend, type BwrapOptions } from './bwrap/backend.ts';

export type BackendName = 'bwrap' | 'gvisor' | 'vm' | 'k8s';

export interface BackendContext extends BwrapOptions {}

interface Entry {
  description: string;
  available: boolean;
  create: (ctx: BackendContext) => SandboxBackend;
}

const notYet = (name: string, what: string): Entry => ({
  description: what,
  available: false,
  create: () => {
    throw new CordonError('CORDON_PREREQ_MISSING', `the ${name} backend is not available in this version of cordon`, {
      hint: 'use sandbox.backend: bwrap (the default)',
    });
  },
});

export const BACKENDS: Readonly<Record<BackendName, Entry>> = {
  bwrap: { description: 'bubblewrap: user namespaces, seccomp, Landlock; no root needed', available: true, create: (ctx) => new BwrapBackend(ctx) },
  gvisor: notYet('gvisor', 'gVisor (runsc): a user-space kernel between the agent and the host'),
  vm: notYet('vm', 'a KVM microVM with its own guest kernel'),
  k8s: notYet('k8s', 'Kubernetes agent-sandbox, for teams'),
};

export function createBackend(name: BackendName, ctx: BackendContext): SandboxBackend {
  const entry = BACKENDS[name];
  if (!entry) throw new CordonError('CORDON_USAGE', `unknown backend "${name}"`, { hint: `backends: ${Object.keys(BACKENDS).join(', ')}` });
  return entry.create(ctx);
}
