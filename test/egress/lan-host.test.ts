// The selftest's LAN host (src/selftest/lan-host.ts): a listener on a private
// address in a network namespace this test creates (root). It must leave
// nothing behind - on close, on SIGTERM, and after a run that died - and must
// never take a subnet the host already routes.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import { describe, it } from 'node:test';
import { overlaps, startLanHost } from '../../src/selftest/lan-host.ts';
import type { Hit } from '../../src/selftest/attacker.ts';

const ip = (...a: string[]) => execFileSync('ip', a).toString();
const hostState = () => `${ip('netns', 'list')}\n${ip('-o', 'link', 'show')}\n${ip('-4', 'route', 'show', 'table', 'all')}`;

/** A pid that is not running (the highest free one below pid_max). */
function deadPid(): number {
  for (let p = 4_000_000; p > 300_000; p--) {
    try {
      process.kill(p, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return p;
    }
  }
  throw new Error('no free pid');
}

describe('selftest LAN host', () => {
  it('is reachable from the host on its ports, records what it gets, and leaves nothing behind on close', async () => {
    assert.equal(process.getuid?.(), 0, 'the LAN host needs root (CI runs as root)');
    const hits: Hit[] = [];
    const lan = await startLanHost((h) => hits.push(h));
    assert.ok('ip' in lan, 'unavailable' in lan ? lan.unavailable : '');
    try {
      assert.match(ip('netns', 'list'), new RegExp(lan.namespace));
      // Other runs (a concurrent battery) have LAN hosts of their own: look at this process's link only.
      const routes = ip('-4', 'route', 'show', 'table', 'all').split('\n').filter((l) => l.includes(`dev cs${process.pid.toString(36)}-`));
      assert.deepEqual(
        routes.filter((l) => !/^(local|broadcast) /.test(l)).map((l) => l.split(' ')[0]),
        [`${lan.ip.replace(/\.2$/, '.0')}/30`],
        'one connected /30, nothing else',
      );
      const got = await new Promise<string>((resolve, reject) => {
        const s = net.connect(8080, lan.ip, () => s.write('hello lan\n'));
        let out = '';
        s.on('data', (d) => {
          out += d;
          if (out.includes('lan-host')) s.destroy();
        });
        s.on('close', () => resolve(out));
        s.on('error', reject);
      });
      assert.match(got, /lan-host/);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(hits.length, 1);
      assert.match(hits[0]!.endpoint, new RegExp(`LAN host ${lan.ip.replace(/\./g, '\\.')} tcp/8080`));
      assert.equal(hits[0]!.bytes.toString(), 'hello lan\n');
    } finally {
      await lan.close();
    }
    assert.doesNotMatch(hostState(), new RegExp(`${lan.namespace}|cs${process.pid.toString(36)}-|${lan.ip.replace(/\.2$/, '.')}`), 'namespace, links and route are gone');
  });

  it('a run killed by SIGTERM cleans up; a run that died anyway is swept by the next', async () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', `import { startLanHost } from ${JSON.stringify(new URL('../../src/selftest/lan-host.ts', import.meta.url).pathname)}; const l = await startLanHost(() => {}); console.log(l.namespace); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const ns = await new Promise<string>((r) => child.stdout.once('data', (d) => r(String(d).trim())));
    assert.match(ip('netns', 'list'), new RegExp(ns));
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    assert.doesNotMatch(hostState(), new RegExp(`${ns}|cs${child.pid!.toString(36)}-`), 'SIGTERM left nothing');

    // What a SIGKILLed run leaves: a namespace and a veth pair still in the host namespace, named after its pid.
    const dead = deadPid();
    const staleNs = `cordon-st-${dead}-abc`;
    const stale = `cs${dead.toString(36)}-abc`;
    ip('netns', 'add', staleNs);
    ip('link', 'add', `${stale}h`, 'type', 'veth', 'peer', 'name', `${stale}n`);
    const lan = await startLanHost(() => {});
    try {
      assert.ok('ip' in lan);
      assert.doesNotMatch(hostState(), new RegExp(`${staleNs}|${stale}`), 'the dead run\'s namespace and links were swept');
    } finally {
      if ('close' in lan) await lan.close();
    }
  });

  it('never picks a subnet the host already has a route or address in', () => {
    assert.equal(overlaps(5, '10.213.0.0/16 dev tun0 scope link'), true);
    assert.equal(overlaps(5, '10.0.0.0/8 dev eth0 proto kernel'), true);
    assert.equal(overlaps(5, '10.213.5.64/26 dev x'), false, 'another part of 10.213.5.0/24');
    assert.equal(overlaps(5, '10.213.5.2 dev x scope link'), true, 'a host route inside the /30');
    assert.equal(overlaps(5, '2: eth0    inet 10.213.5.1/24 brd 10.213.5.255 scope global eth0'), true);
    assert.equal(overlaps(5, 'default via 10.0.0.1 dev eth0'), false);
    assert.equal(overlaps(5, '172.16.0.0/12 dev br0'), false);
  });
});
