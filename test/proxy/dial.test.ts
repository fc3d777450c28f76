// Dial-time address checks: the proxy resolves names itself, checks the
// address class of what it will dial, and dials exactly the address it
// checked. Only public unicast passes unless an allow rule names the address.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectThrough, fakeServer, openExplicit, openFlow, readResponses, rule, startProxy, syntheticFor, type FakeServer } from './helpers.ts';

describe('dial-time address checks', () => {
  let web: FakeServer;
  before(async () => {
    web = await fakeServer((req, res) => res.end(`web ${req.url}`), { tls: false });
  });
  after(() => web.close());

  const classes: Array<[string, RegExp]> = [
    ['169.254.169.254', /metadata/],
    ['169.254.1.1', /link-local/],
    ['10.0.0.1', /private/],
    ['192.168.1.1', /private/],
    ['172.16.0.1', /private/],
    ['127.0.0.1', /loopback/],
    ['127.1.2.3', /loopback/],
    ['0.0.0.0', /unspecified/],
    ['100.64.0.1', /cgnat/],
    ['224.0.0.1', /multicast/],
    ['255.255.255.255', /broadcast/],
    ['198.18.0.1', /benchmark/],
    ['192.0.2.1', /documentation/],
    ['::1', /loopback/],
    ['fd00:ec2::254', /metadata/],
    ['fc00::1', /unique-local/],
    ['fe80::1', /link-local/],
    ['::ffff:127.0.0.1', /ipv4-mapped.*127\.0\.0\.1/],
    ['64:ff9b::a9fe:a9fe', /nat64.*169\.254\.169\.254/],
    ['2002:7f00:1::1', /6to4/],
  ];

  it('refuses every non-public address class a name resolves to (CONNECT gets a readable 403)', async () => {
    const hosts: Record<string, string[]> = {};
    const rules = classes.map(([addr], i) => {
      hosts[`h${i}.test`] = [addr];
      return rule('allow', `h${i}.test`, [web.port]);
    });
    const tp = await startProxy({ rules, hosts });
    try {
      for (const [i, [addr, why]] of classes.entries()) {
        const s = await openExplicit(tp.socketPath);
        const c = await connectThrough(s, `h${i}.test:${web.port}`);
        assert.equal(c.status, 403, addr);
        assert.match(c.head, /resolves only to addresses cordon does not connect to/);
        assert.doesNotMatch(c.head, new RegExp(addr.replace(/[.:]/g, '\\$&')), 'the agent is not told the address');
        const rec = await tp.flowRecord((d) => d.host === `h${i}.test`);
        assert.equal(rec.stage, 'dial', addr);
        assert.match(String(rec.reason), why, addr);
        assert.equal(rec.dialed, null);
      }
    } finally {
      await tp.close();
    }
  });

  it('loopback is dialled only with an allow rule naming the exact address', async () => {
    const base = [rule('allow', 'web.test', [web.port])];
    for (const withExact of [false, true]) {
      const rules = withExact ? [...base, rule('allow', '127.0.0.1', [])] : base;
      const tp = await startProxy({ rules, hosts: { 'web.test': ['127.0.0.1'] } });
      try {
        const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'web.test'), web.port);
        const p = readResponses(s, 1);
        s.write('GET /loop HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n');
        const res = (await p)[0]!;
        assert.equal(res.status, withExact ? 200 : 403);
        if (!withExact) assert.match(res.body.toString(), /loopback, private/);
      } finally {
        await tp.close();
      }
    }
  });

  it('an exact-address exception holds only for the ports its rule names', async () => {
    for (const [ports, want] of [[[web.port], 200], [[web.port + 1], 403]] as const) {
      const tp = await startProxy({ rules: [rule('allow', 'web.test', [web.port]), rule('allow', '127.0.0.1', [...ports])], hosts: { 'web.test': ['127.0.0.1'] } });
      try {
        const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'web.test'), web.port);
        const p = readResponses(s, 1);
        s.write('GET /loop HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n');
        assert.equal((await p)[0]!.status, want, `exception on ports ${ports}`);
      } finally {
        await tp.close();
      }
    }
  });

  it('an exact IPv4 allow does not cover its IPv4-mapped IPv6 form', async () => {
    const tp = await startProxy({ rules: [rule('allow', 'web.test', [web.port]), rule('allow', '127.0.0.1', [])], hosts: { 'web.test': ['::ffff:127.0.0.1'] } });
    try {
      const s = await openExplicit(tp.socketPath);
      assert.equal((await connectThrough(s, `web.test:${web.port}`)).status, 403);
    } finally {
      await tp.close();
    }
  });

  it('DNS rebinding: the address checked is the address dialled; nothing re-resolves', async () => {
    // First answer: a permitted address; every later answer: metadata.
    let calls = 0;
    const resolve = async (name: string) => {
      calls++;
      assert.equal(name, 'rebind.test');
      return calls === 1 ? ['127.0.0.1'] : ['169.254.169.254'];
    };
    const tp = await startProxy({ rules: [rule('allow', 'rebind.test', [web.port]), rule('allow', '127.0.0.1', [])], hosts: {} }, { resolve });
    try {
      const addr = await syntheticFor(tp.socketPath, 'rebind.test');
      const s1 = await openFlow(tp.socketPath, addr, web.port);
      const p1 = readResponses(s1, 1);
      s1.write('GET /first HTTP/1.1\r\nHost: rebind.test\r\nConnection: close\r\n\r\n');
      assert.equal((await p1)[0]!.status, 200);
      assert.equal(calls, 1, 'one resolution per dial');
      const r1 = await tp.flowRecord((d) => d.host === 'rebind.test');
      assert.equal(r1.dialed, `127.0.0.1:${web.port}`);
      // The second flow resolves again and gets the metadata address: refused, never dialled.
      const s2 = await openFlow(tp.socketPath, addr, web.port);
      const p2 = readResponses(s2, 1);
      s2.write('GET /second HTTP/1.1\r\nHost: rebind.test\r\nConnection: close\r\n\r\n');
      assert.equal((await p2)[0]!.status, 403);
      assert.equal(calls, 2);
      assert.ok(!web.seen.some((x) => x.url === '/second'));
    } finally {
      await tp.close();
    }
  });

  it('several answers: only a permitted one is dialled', async () => {
    const resolve = async () => ['169.254.169.254', '10.1.1.1', '127.0.0.1'];
    const tp = await startProxy({ rules: [rule('allow', 'multi.test', [web.port]), rule('allow', '127.0.0.1', [])], hosts: {} }, { resolve });
    try {
      const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'multi.test'), web.port);
      const p = readResponses(s, 1);
      s.write('GET /m HTTP/1.1\r\nHost: multi.test\r\nConnection: close\r\n\r\n');
      assert.equal((await p)[0]!.status, 200);
      const rec = await tp.flowRecord((d) => d.host === 'multi.test');
      assert.equal(rec.dialed, `127.0.0.1:${web.port}`);
    } finally {
      await tp.close();
    }
  });

  it('a direct IP dial to a private address is refused even when a name rule would cover it', async () => {
    const tp = await startProxy({ rules: [rule('allow', 'web.test', [web.port])], hosts: { 'web.test': ['127.0.0.1'] } });
    try {
      const s = await openFlow(tp.socketPath, '127.0.0.1', web.port);
      const p = readResponses(s, 1);
      s.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      const res = (await p)[0]!;
      assert.equal(res.status, 403);
      assert.match(res.body.toString(), /no rule/);
    } finally {
      await tp.close();
    }
  });

  it('a resolver failure is a 502 for the request, and the flow is audited', async () => {
    const resolve = async () => {
      throw new Error('SERVFAIL');
    };
    const tp = await startProxy({ rules: [rule('allow', 'nx.test', [web.port])], hosts: {} }, { resolve });
    try {
      const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'nx.test'), web.port);
      const p = readResponses(s, 1);
      s.write('GET / HTTP/1.1\r\nHost: nx.test\r\nConnection: close\r\n\r\n');
      assert.equal((await p)[0]!.status, 502);
      const rec = await tp.flowRecord((d) => d.host === 'nx.test');
      assert.equal(rec.stage, 'dial');
    } finally {
      await tp.close();
    }
  });
});
