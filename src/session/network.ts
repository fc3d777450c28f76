// The network side of a session with `network.mode: proxy`: the session's
// proxy on a Unix socket in the session directory, the capture plan that makes
// it the sandbox's only way out, and the trust the sandbox needs for the
// proxy's per-session CA (a bundle bound over the system one, and the
// variables tools read). With `network.mode: none` the sandbox has loopback
// only and none of this exists.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CordonError } from '../errors.ts';
import { capturePlan, proxyEnv, SYNTHETIC } from '../netcap/capture.ts';
import { expandHostPath, type HostPaths } from '../paths.ts';
import type { EffectivePolicy } from '../policy/types.ts';
import { createSessionCa, createSessionProxy, type Inspector, type ProxyPolicy, type SessionProxy } from '../proxy/index.ts';
import type { MountSpec, NetworkPlan } from '../sandbox/backend.ts';

/** Where Debian/Ubuntu, Fedora/RHEL, Arch, Alpine and openSUSE keep the system bundle. */
const SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/ssl/cert.pem',
];

/** Inside the sandbox: the session CA alone, and the system bundle plus the CA. */
export const CA_PATH = '/run/cordon/ca.pem';
export const BUNDLE_PATH = '/run/cordon/ca-bundle.pem';

/** The resolver address inside the sandbox (UDP/53 to anywhere is captured anyway). */
export const SANDBOX_RESOLVER = SYNTHETIC.resolver;

/** The variables a proxied sandbox gets: proxy settings and CA locations. Static. */
export function sandboxNetworkEnv(): Record<string, string> {
  return {
    ...proxyEnv(),
    // Tools that read their own variable instead of the system bundle.
    SSL_CERT_FILE: BUNDLE_PATH,
    CURL_CA_BUNDLE: BUNDLE_PATH,
    REQUESTS_CA_BUNDLE: BUNDLE_PATH,
    GIT_SSL_CAINFO: BUNDLE_PATH,
    CARGO_HTTP_CAINFO: BUNDLE_PATH,
    AWS_CA_BUNDLE: BUNDLE_PATH,
    PIP_CERT: BUNDLE_PATH,
    DENO_CERT: CA_PATH,
    NODE_EXTRA_CA_CERTS: CA_PATH,
    NPM_CONFIG_CAFILE: BUNDLE_PATH,
  };
}

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
  return { rules: policy.network.rules, hosts: policy.network.hosts };
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
