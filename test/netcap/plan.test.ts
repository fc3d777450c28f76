// capturePlan(): the command prefix, the addresses and the environment it
// hands the sandbox backend; netcapChecks(): a real set-up on this machine.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CordonError } from '../../src/errors.ts';
import { capturePlan, netcapBinary, netcapChecks, SYNTHETIC } from '../../src/netcap/capture.ts';
import { NETCAP, requireNetcap, ROOT } from './helpers.ts';

function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/') as [string, string];
  const n = (a: string) => a.split('.').reduce((acc, x) => acc * 256 + Number(x), 0);
  const size = 2 ** (32 - Number(bits));
  return Math.floor(n(ip) / size) === Math.floor(n(base) / size);
}

test('the plan wraps the command in cordon-netcap with absolute tool paths', () => {
  requireNetcap();
  const plan = capturePlan({ installDir: ROOT, proxySocket: '/run/cordon/s1/proxy.sock' });
  const argv = plan.wrap(['bwrap', '--unshare-user', '--', 'sh']);
  assert.equal(argv[0], NETCAP);
  assert.equal(netcapBinary(ROOT), NETCAP);
  const dash = argv.indexOf('--');
  assert.deepEqual(argv.slice(dash + 1), ['bwrap', '--unshare-user', '--', 'sh']);
  const opts = argv.slice(1, dash);
  assert.deepEqual(opts.slice(0, 2), ['--proxy-socket', '/run/cordon/s1/proxy.sock']);
  assert.match(opts[opts.indexOf('--ip-tool') + 1]!, /^\/.*\/ip$/);
  assert.match(opts[opts.indexOf('--nft-tool') + 1]!, /^\/.*\/nft$/);
});

test('the reserved addresses are where the docs say, and the plan uses them', () => {
  requireNetcap();
  const plan = capturePlan({ installDir: ROOT, proxySocket: '/tmp/p.sock' });
  assert.equal(plan.resolver, SYNTHETIC.resolver);
  assert.equal(plan.proxyUrl, `http://${SYNTHETIC.proxy.address}:${SYNTHETIC.proxy.port}`);
  for (const a of [SYNTHETIC.resolver, SYNTHETIC.proxy.address, SYNTHETIC.sandboxAddress]) assert.ok(inCidr(a, SYNTHETIC.services), a);
  assert.ok(inCidr('198.19.0.7', SYNTHETIC.dnsAnswers));
  assert.ok(!inCidr(SYNTHETIC.resolver, SYNTHETIC.dnsAnswers));
  assert.equal(new Set([SYNTHETIC.resolver, SYNTHETIC.proxy.address, SYNTHETIC.sandboxAddress]).size, 3);
});

test('the environment points every proxy variable at the explicit proxy and keeps loopback direct', () => {
  requireNetcap();
  const { env, proxyUrl } = capturePlan({ installDir: ROOT, proxySocket: '/tmp/p.sock' });
  for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy']) assert.equal(env[k], proxyUrl, k);
  assert.equal(env.NO_PROXY, 'localhost,127.0.0.1,::1');
  assert.equal(env.no_proxy, 'localhost,127.0.0.1,::1');
});

test('a bad socket path or an unbuilt helper is a CORDON_NETWORK_SETUP error with a hint', () => {
  const bad = (f: () => unknown, re: RegExp) =>
    assert.throws(f, (e: unknown) => e instanceof CordonError && e.code === 'CORDON_NETWORK_SETUP' && typeof e.hint === 'string' && re.test(e.message));
  bad(() => capturePlan({ installDir: ROOT, proxySocket: 'relative.sock' }), /absolute/);
  bad(() => capturePlan({ installDir: ROOT, proxySocket: `/${'x'.repeat(200)}` }), /at most 107 bytes/);
  bad(() => capturePlan({ installDir: '/nonexistent', proxySocket: '/tmp/p.sock' }), /not built/);
});

test('netcapChecks sets up a real capture on this machine', () => {
  requireNetcap();
  const checks = netcapChecks({ installDir: ROOT });
  assert.deepEqual(
    checks.map((c) => [c.id, c.status]),
    [
      ['nftables', 'works'],
      ['iproute2', 'works'],
      ['netcap', 'works'],
    ],
    JSON.stringify(checks),
  );
  const missing = netcapChecks({ installDir: '/nonexistent' }).find((c) => c.id === 'netcap');
  assert.equal(missing?.status, 'missing');
  assert.ok(missing?.fix);
});
