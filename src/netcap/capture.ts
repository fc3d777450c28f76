// Network capture: the sandbox runs in a network namespace whose only way out
// is the session proxy. The work is done by native/cordon-netcap (namespace,
// nftables rules, relay to the proxy's Unix socket; see docs/netcap.md). This
// module says how to run it, which addresses it reserves, and whether it works
// on this machine.
//
// The sandbox's backend prefixes `wrap` to its own command line (bwrap, run
// without --unshare-net), writes `resolver` into the sandbox's resolv.conf and
// adds `env` to the sandbox environment.

import { spawnSync } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { CordonError } from '../errors.ts';
import { canAccess } from '../fs-access.ts';
import type { PrereqCheck } from '../sandbox/prereq.ts';

/**
 * Addresses cordon reserves inside the sandbox. All of them lie in
 * 198.18.0.0/15 (RFC 2544, benchmarking): never routed on the internet, so a
 * real destination can never be confused with one of these.
 */
export const SYNTHETIC = {
  /** Fixed service addresses (the resolver, the explicit proxy, the namespace's own address). */
  services: '198.18.0.0/24',
  /** cordon's DNS answers allowed names with addresses from here; the proxy maps a flow back to its name. */
  dnsAnswers: '198.19.0.0/16',
  /** What the sandbox's resolv.conf names. Any address would do: UDP/53 to anywhere is captured. */
  resolver: '198.18.0.53',
  /** The explicit proxy proxy-aware clients are given; captured like any flow, recognised by the proxy by this destination. */
  proxy: { address: '198.18.0.1', port: 3128 },
  /** The namespace's own address (on lo, the only device): the source of every captured flow. Local, never captured. */
  sandboxAddress: '198.18.0.2',
} as const;

export interface CapturePlan {
  /** Prefix the sandbox command line (bwrap ...) with cordon-netcap. */
  wrap: (argv: string[]) => string[];
  /** Nameserver for the sandbox's /etc/resolv.conf. */
  resolver: string;
  /** Explicit-proxy URL for proxy-aware clients. */
  proxyUrl: string;
  /** Proxy variables for the sandbox environment. */
  env: Record<string, string>;
}

/** Longest Unix socket path the kernel accepts (sun_path is 108 bytes, NUL included). */
const MAX_SOCKET_PATH = 107;

const TOOL_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];
const APT = 'sudo apt-get install -y';

export function netcapBinary(installDir: string): string {
  return join(installDir, 'build', 'native', 'cordon-netcap');
}

function findTool(name: string): string | null {
  for (const dir of TOOL_DIRS) {
    const p = join(dir, name);
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

const executable = (path: string) => canAccess(path, 'exec');

interface Tools {
  netcap: string;
  ip: string;
  nft: string;
}

function tools(installDir: string): Tools {
  const netcap = netcapBinary(installDir);
  if (!executable(netcap)) {
    throw new CordonError('CORDON_NETWORK_SETUP', `cordon's network capture helper is not built (${netcap} is missing)`, {
      hint: 'run scripts/setup.sh (or scripts/build-native.sh) in the cordon checkout',
    });
  }
  const nft = findTool('nft');
  if (!nft) {
    throw new CordonError('CORDON_NETWORK_SETUP', 'network capture needs nft, which is not installed', { hint: `${APT} nftables` });
  }
  const ip = findTool('ip');
  if (!ip) {
    throw new CordonError('CORDON_NETWORK_SETUP', 'network capture needs ip, which is not installed', { hint: `${APT} iproute2` });
  }
  return { netcap, ip, nft };
}

export function capturePlan(opts: { installDir: string; proxySocket: string }): CapturePlan {
  const { proxySocket } = opts;
  if (!isAbsolute(proxySocket) || Buffer.byteLength(proxySocket) > MAX_SOCKET_PATH || proxySocket.includes('\0')) {
    throw new CordonError('CORDON_NETWORK_SETUP', `the proxy socket path must be absolute and at most ${MAX_SOCKET_PATH} bytes`, {
      hint: 'use a shorter state directory (CORDON_STATE_DIR or XDG_STATE_HOME)',
      detail: { proxySocket },
    });
  }
  const t = tools(opts.installDir);
  const prefix = [t.netcap, '--proxy-socket', proxySocket, '--ip-tool', t.ip, '--nft-tool', t.nft, '--'];
  return { wrap: (argv) => [...prefix, ...argv], resolver: SYNTHETIC.resolver, proxyUrl: PROXY_URL, env: proxyEnv() };
}

export const PROXY_URL = `http://${SYNTHETIC.proxy.address}:${SYNTHETIC.proxy.port}`;

/** The proxy variables proxy-aware clients in the sandbox get. */
export function proxyEnv(): Record<string, string> {
  const noProxy = 'localhost,127.0.0.1,::1';
  const env: Record<string, string> = { NO_PROXY: noProxy, no_proxy: noProxy };
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY']) env[name] = env[name.toLowerCase()] = PROXY_URL;
  return env;
}

/**
 * Prerequisites of network capture, tried for real: a full set-up (namespace,
 * rules, self-test) around `/bin/sh -c 'exit 0'`.
 */
export function netcapChecks(opts: { installDir: string }): PrereqCheck[] {
  const out: PrereqCheck[] = [];
  const nft = findTool('nft');
  const ip = findTool('ip');
  const netcap = netcapBinary(opts.installDir);
  out.push(
    nft
      ? { id: 'nftables', title: 'nftables', status: 'works', detail: nft, required: true }
      : { id: 'nftables', title: 'nftables', status: 'missing', detail: 'nft not found', fix: `${APT} nftables`, required: true },
    ip
      ? { id: 'iproute2', title: 'iproute2', status: 'works', detail: ip, required: true }
      : { id: 'iproute2', title: 'iproute2', status: 'missing', detail: 'ip not found', fix: `${APT} iproute2`, required: true },
  );
  if (!executable(netcap)) {
    out.push({
      id: 'netcap',
      title: 'network capture',
      status: 'missing',
      detail: `${netcap} is not built`,
      fix: join(opts.installDir, 'scripts/build-native.sh'),
      required: true,
    });
    return out;
  }
  if (!nft || !ip) {
    out.push({ id: 'netcap', title: 'network capture', status: 'missing', detail: 'needs nft and ip (above)', fix: `${APT} nftables iproute2`, required: true });
    return out;
  }
  const started = performance.now();
  const r = spawnSync(
    netcap,
    ['--proxy-socket', '/nonexistent/cordon-netcap-check.sock', '--ip-tool', ip, '--nft-tool', nft, '--', '/bin/sh', '-c', 'exit 0'],
    { encoding: 'utf8', timeout: 10_000, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } },
  );
  const ms = Math.round(performance.now() - started);
  if (r.status === 0) {
    out.push({ id: 'netcap', title: 'network capture', status: 'works', detail: `namespace, nftables rules and self-test in ${ms} ms`, required: true });
  } else {
    const detail = (r.stderr || r.error?.message || `exit ${r.status ?? r.signal}`).trim().split('\n')[0] ?? '';
    out.push({
      id: 'netcap',
      title: 'network capture',
      status: 'missing',
      detail,
      fix: /namespace/.test(detail)
        ? 'enable unprivileged user namespaces: sudo sysctl -w kernel.unprivileged_userns_clone=1 (Debian) or kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 24.04+)'
        : `the kernel needs nf_tables with nat, redirect and fib support (CONFIG_NFT_NAT, CONFIG_NFT_REDIR, CONFIG_NFT_FIB_IPV4); ${APT} nftables iproute2`,
      required: true,
    });
  }
  return out;
}
