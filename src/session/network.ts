// The network side of a session with `network.mode: proxy`: the session's
// proxy on a Unix socket in the session directory, the capture plan that makes
// it the sandbox's only way out, and the trust the sandbox needs for the
// proxy's per-session CA (a bundle bound over the system one, and the
// variables tools read). With `network.mode: none` the sandbox has loopback
// only and none of this exists.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CordonError } from '../errors.ts';
import { capturePlan } from '../netcap/capture.ts';
import { BUNDLE_PATH, CA_PATH, sandboxNetworkEnv, SYSTEM_BUNDLES } from './network-env.ts';
import { expandHostPath, type HostPaths } from '../paths.ts';
import type { EffectivePolicy } from '../policy/types.ts';
import { createSessionCa, createSessionProxy, type Inspector, type ProxyPolicy, type SessionProxy } from '../proxy/index.ts';
import type { MountSpec, NetworkPlan } from '../sandbox/backend.ts';

export interface SessionNetwork {
  plan: NetworkPlan;
  /** resolv.conf nameserver inside. */
  nameserver: string;
  /** Extra mounts (CA files). */
  mounts: MountSpec[];
  /** Extra environment (proxy and CA variables). */
  env: Record<string, string>;
  proxy: SessionProxy;
  reload(policy: EffectivePolicy): void;
  close(): Promise<void>;
}

export function proxyPolicyOf(policy: EffectivePolicy): ProxyPolicy {
  return { rules: policy.network.rules, hosts: policy.network.hosts, budget: policy.network.budget };
}

export async function startSessionNetwork(opts: {
  sessionId: string;
  sessionDir: string;
  policy: EffectivePolicy;
  paths: HostPaths;
  audit: (type: string, data: Record<string, unknown>) => void;
  inspectors?: Inspector[];
}): Promise<SessionNetwork> {
  const { sessionDir, policy, paths } = opts;
  const systemBundle = SYSTEM_BUNDLES.find((p) => {
    try {
      readFileSync(p, { flag: 'r' }).subarray(0, 1);
      return true;
    } catch {
      return false;
    }
  });
  if (!systemBundle) {
    throw new CordonError('CORDON_NETWORK_SETUP', 'no system CA bundle found', { hint: 'install the ca-certificates package' });
  }
  let upstreamCa: Buffer | undefined;
  if (policy.network.upstreamCa) {
    const file = expandHostPath(policy.network.upstreamCa, paths) ?? policy.network.upstreamCa;
    try {
      upstreamCa = readFileSync(file);
    } catch (e) {
      throw new CordonError('CORDON_POLICY_INVALID', `network.upstreamCa: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`, { detail: { field: 'network.upstreamCa' } });
    }
  }

  const ca = await createSessionCa({ label: opts.sessionId });
  const caFile = join(sessionDir, 'ca.pem');
  const bundleFile = join(sessionDir, 'ca-bundle.pem');
  writeFileSync(caFile, ca.caPem, { mode: 0o444 });
  writeFileSync(bundleFile, ca.caBundle(systemBundle), { mode: 0o444 });

  const socket = join(sessionDir, 'proxy.sock');
  const proxy = createSessionProxy({
    sessionId: opts.sessionId,
    policy: proxyPolicyOf(policy),
    audit: opts.audit,
    ca,
    ...(upstreamCa ? { upstreamCa } : {}),
    ...(opts.inspectors ? { inspectors: opts.inspectors } : {}),
  });
  await proxy.listen(socket);
  const capture = capturePlan({ installDir: paths.install, proxySocket: socket });

  const env = { ...capture.env, ...sandboxNetworkEnv() };
  const mounts: MountSpec[] = [
    { kind: 'ro-bind', src: caFile, dest: CA_PATH },
    { kind: 'ro-bind', src: bundleFile, dest: BUNDLE_PATH },
    // Programs that only know the system location see the bundle there too.
    { kind: 'ro-bind', src: bundleFile, dest: systemBundle },
  ];
  return {
    plan: { kind: 'captured', wrap: capture.wrap, env: capture.env },
    nameserver: capture.resolver,
    mounts,
    env,
    proxy,
    reload: (next) => proxy.reload(proxyPolicyOf(next)),
    close: () => proxy.close(),
  };
}
