// Network capture, from inside a real bwrap sandbox in a real cordon-netcap
// namespace, as root and as an unprivileged user: every TCP flow and every
// UDP/53 datagram reaches the (fake) host proxy with its original
// destination; everything else fails fast; nothing inside can change that.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { capturePlan, SYNTHETIC } from '../../src/netcap/capture.ts';
import {
  decodeDnsHex,
  DNS_ANSWER,
  dnsQueryHex,
  ensureTestUser,
  etcDir,
  FakeProxy,
  probe,
  removeDir,
  requireNetcap,
  ROOT,
  run,
  tempDir,
  WHO,
} from './helpers.ts';

const PY_SOCKETS = String.raw`
import errno, json, socket, time
out = {}
def attempt(name, f):
    t = time.monotonic()
    try:
        f()
        out[name] = 'ok'
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e))
    out[name + '_ms'] = round((time.monotonic() - t) * 1000)
def connect(family, addr, v6only=None):
    s = socket.socket(family, socket.SOCK_STREAM)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    s.settimeout(3)
    s.connect(addr)
    s.sendall(b'py')
    s.shutdown(socket.SHUT_WR)
    got = s.recv(100)
    if got != b'py':
        raise OSError(0, 'echo mismatch %r' % got)
attempt('raw_icmp', lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
attempt('raw_tcp', lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP))
attempt('raw_v6', lambda: socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6))
attempt('ping_socket', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP))
attempt('packet', lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
attempt('v6_tcp', lambda: connect(socket.AF_INET6, ('2001:db8::1', 443)))
attempt('v6_udp', lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b'x', ('2001:db8::1', 53)))
attempt('v6only_mapped', lambda: connect(socket.AF_INET6, ('::ffff:1.2.3.4', 444), v6only=1))
attempt('dualstack_mapped', lambda: connect(socket.AF_INET6, ('::ffff:1.2.3.4', 445), v6only=0))
attempt('v4_direct', lambda: connect(socket.AF_INET, ('192.0.2.77', 7)))
print(json.dumps(out))
`;

for (const who of WHO) {
  describe(`capture as ${who}`, () => {
    let dir: string;
    let proxy: FakeProxy;
    let etc: string;
    const plan = () => capturePlan({ installDir: ROOT, proxySocket: proxy.path });
    const opts = () => ({ who, socket: proxy.path, etcDir: etc });

    before(async () => {
      requireNetcap();
      ensureTestUser();
      dir = tempDir(`netcap-${who}-`);
      proxy = await FakeProxy.start(dir);
      etc = etcDir(dir, plan().resolver);
    });
    after(async () => {
      await proxy.close();
      removeDir(dir);
    });

    test('direct TCP connects to any address arrive at the proxy with their original destination', async () => {
      const targets: Array<[string, number]> = [
        ['1.2.3.4', 80],
        ['10.0.0.1', 22],
        ['198.19.0.7', 443],
        ['169.254.169.254', 80],
        ['192.168.1.1', 8443],
        ['100.64.0.1', 65535],
        ['198.18.0.1', 3128],
      ];
      const seen = proxy.flows.length;
      const results = await probe(
        opts(),
        targets.map(([host, port]) => ({ op: 'tcp', host, port, send: `hello ${host} ${port}` })),
      );
      targets.forEach(([host, port], i) => {
        assert.deepEqual({ connected: results[i]!.connected, data: results[i]!.data, error: results[i]!.error }, { connected: true, data: `hello ${host} ${port}`, error: undefined }, `${host}:${port}`);
      });
      const flows = proxy.flows.slice(seen);
      assert.deepEqual(
        flows.map((f) => [f.ip, f.port, f.bytes]),
        targets.map(([h, p]) => [h, p, `hello ${h} ${p}`.length]),
      );
      for (const f of flows) {
        assert.match(f.header, /^CORDON\/1 TCP \d+\.\d+\.\d+\.\d+ \d+ \d+$/);
        assert.ok(f.clientPort > 0 && f.clientPort < 65536);
      }
      assert.deepEqual(proxy.bad, []);
    });

    test('clients that ignore proxy settings land at the proxy: curl --noproxy, Node fetch, Python', async () => {
      const seen = proxy.flows.length;
      const curl = await run({ ...opts(), env: plan().env, cmd: ['curl', '--noproxy', '*', '-sS', '--max-time', '5', 'http://1.2.3.4/'] });
      assert.equal(curl.code, 0, curl.stderr);
      assert.equal(curl.stdout, 'fake-proxy 1.2.3.4 80\n');

      const [f] = await probe(opts(), [{ op: 'fetch', url: 'http://203.0.113.9:8080/path?q=1' }]);
      assert.deepEqual({ status: f!.status, body: f!.body }, { status: 200, body: 'fake-proxy 203.0.113.9 8080\n' });

      const py = await run({ ...opts(), cmd: ['python3', '-c', PY_SOCKETS] });
      assert.equal(JSON.parse(py.stdout).v4_direct, 'ok', py.stdout + py.stderr);

      assert.deepEqual(
        proxy.flows.slice(seen).map((x) => `${x.ip}:${x.port}`),
        ['1.2.3.4:80', '203.0.113.9:8080', '1.2.3.4:445', '192.0.2.77:7'],
      );
    });

    test('a proxy-aware client given the plan environment arrives at the explicit-proxy address', async () => {
      const seen = proxy.flows.length;
      const r = await run({ ...opts(), env: plan().env, cmd: ['curl', '-sS', '--max-time', '5', 'http://example.test/some/path'] });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `fake-proxy ${SYNTHETIC.proxy.address} ${SYNTHETIC.proxy.port}\n`);
      assert.deepEqual(
        proxy.flows.slice(seen).map((x) => `${x.ip}:${x.port}`),
        [`${SYNTHETIC.proxy.address}:${SYNTHETIC.proxy.port}`],
      );
    });

    test('DNS to any server reaches the proxy DNS channel and gets its answer', async () => {
      const seen = proxy.dns.length;
      const g = await run({ ...opts(), cmd: ['getent', 'hosts', 'example.test'] });
      assert.equal(g.code, 0, g.stderr);
      assert.match(g.stdout, new RegExp(`^${DNS_ANSWER.replaceAll('.', '\\.')}\\s+example\\.test\\n$`));

      const servers = ['8.8.8.8', '1.1.1.1', SYNTHETIC.resolver];
      const results = await probe(
        opts(),
        servers.map((host, i) => ({ op: 'udp', host, port: 53, hex: dnsQueryHex(`q${i}.example.test`), expectReply: true })),
      );
      servers.forEach((host, i) => {
        const r = results[i]!;
        assert.equal(r.from, `${host}:53`, `the reply to ${host} comes from ${host}:53 (conntrack)`);
        const answer = decodeDnsHex(r.reply);
        assert.equal(answer.id, 0x1234);
        assert.deepEqual(
          answer.answers?.map((a) => [a.name, a.type, (a as { data: string }).data]),
          [[`q${i}.example.test`, 'A', DNS_ANSWER]],
        );
      });
      const frames = proxy.dns.slice(seen);
      for (const name of servers.map((_, i) => `q${i}.example.test`)) {
        assert.ok(frames.some((f) => f.name === name && f.type === 'A'), `${name} reached the proxy`);
      }
      assert.ok(frames.some((f) => f.name === 'example.test'), 'getent went through the proxy');
      for (const f of frames) assert.equal(f.clientIp, SYNTHETIC.sandboxAddress);
    });

    test('UDP to any other port is dropped at once; TCP to port 53 is an ordinary flow', async () => {
      const flowsBefore = proxy.flows.length;
      const dnsBefore = proxy.dns.length;
      const results = await probe(opts(), [
        { op: 'udp', host: '1.2.3.4', port: 443, hex: 'c0ffee' },
        { op: 'udp', host: '8.8.8.8', port: 123, hex: 'c0ffee' },
        { op: 'udp', host: SYNTHETIC.resolver, port: 853, hex: 'c0ffee' },
        { op: 'tcp', host: '8.8.8.8', port: 53, send: 'tcp-dns' },
      ]);
      for (const r of results.slice(0, 3)) assert.deepEqual([r.sent, r.error], [false, 'EPERM']);
      assert.equal(results[3]!.data, 'tcp-dns');
      assert.equal(proxy.dns.length, dnsBefore, 'no datagram reached the DNS channel');
      assert.deepEqual(
        proxy.flows.slice(flowsBefore).map((f) => `${f.ip}:${f.port}`),
        ['8.8.8.8:53'],
      );
    });

    test('ICMP, raw sockets and IPv6 fail fast; a v4-mapped address is IPv4 and is captured', async () => {
      const seen = proxy.flows.length;
      const py = await run({ ...opts(), cmd: ['python3', '-c', PY_SOCKETS] });
      assert.equal(py.code, 0, py.stderr);
      const out = JSON.parse(py.stdout) as Record<string, string | number>;
      // No CAP_NET_RAW over the namespace; ICMP "ping" sockets are off (net.ipv4.ping_group_range).
      assert.equal(out.raw_icmp, 'EPERM');
      assert.equal(out.raw_tcp, 'EPERM');
      assert.equal(out.raw_v6, 'EPERM');
      assert.equal(out.packet, 'EPERM');
      assert.equal(out.ping_socket, 'EACCES');
      // IPv6 to anything but ::1: no route, and the ip6 table rejects it regardless.
      assert.equal(out.v6_tcp, 'ENETUNREACH');
      assert.equal(out.v6_udp, 'ENETUNREACH');
      assert.equal(out.v6only_mapped, 'ENETUNREACH');
      for (const k of ['v6_tcp', 'v6_udp', 'v6only_mapped']) assert.ok((out[`${k}_ms`] as number) < 500, `${k} failed fast`);
      // ::ffff:1.2.3.4 on a dual-stack socket is an IPv4 packet to 1.2.3.4: captured like one.
      assert.equal(out.dualstack_mapped, 'ok');

      const node = await probe(opts(), [
        { op: 'tcp', host: '2001:db8::1', port: 80 },
        { op: 'tcp', host: '::ffff:1.2.3.4', port: 446, send: 'mapped' },
        { op: 'udp', host: '2001:db8::1', port: 53, hex: dnsQueryHex('v6.example.test'), type: 'udp6' },
      ]);
      assert.equal(node[0]!.error, 'ENETUNREACH');
      assert.ok(node[0]!.ms < 500);
      assert.equal(node[1]!.data, 'mapped');
      assert.equal(node[2]!.sent, false);
      assert.deepEqual(
        proxy.flows.slice(seen).map((f) => `${f.ip}:${f.port}`),
        ['1.2.3.4:445', '192.0.2.77:7', '1.2.3.4:446'],
      );
    });

    test('nothing inside can read or change the capture, and it still works afterwards', async () => {
      const script = [
        'nft list ruleset; echo "nft-list=$?"',
        'nft flush ruleset; echo "nft-flush=$?"',
        'ip route del default; echo "route-del=$?"',
        'ip link set lo down; echo "lo-down=$?"',
        'ip address add 1.2.3.4/32 dev lo; echo "addr-add=$?"',
        'echo 1 > /proc/sys/net/ipv4/ping_group_range; echo "sysctl=$?"',
        `exec /opt/node/bin/node /t/probe.mjs '${JSON.stringify([{ op: 'tcp', host: '1.2.3.4', port: 80, send: 'still' }])}'`,
      ].join('\n');
      const seen = proxy.flows.length;
      const r = await run({ ...opts(), cmd: ['sh', '-c', script] });
      const status = Object.fromEntries([...r.stdout.matchAll(/^([a-z-]+)=(\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
      for (const step of ['nft-list', 'nft-flush', 'route-del', 'lo-down', 'addr-add', 'sysctl']) {
        assert.ok(status[step] !== undefined && status[step] !== 0, `${step} must fail (got ${status[step]})\n${r.stdout}${r.stderr}`);
      }
      assert.doesNotMatch(r.stdout, /cordon_netcap|redirect/, 'the rules are not even readable');
      const last = JSON.parse(r.stdout.trim().split('\n').pop()!) as Array<Record<string, unknown>>;
      assert.equal(last[0]!.data, 'still');
      assert.deepEqual(
        proxy.flows.slice(seen).map((f) => `${f.ip}:${f.port}`),
        ['1.2.3.4:80'],
      );
    });

    test('the capture listeners dialled directly relay nothing', async () => {
      const before = { connections: proxy.connections, flows: proxy.flows.length, dns: proxy.dns.length };
      const [d] = await probe(opts(), [{ op: 'dialListeners', hex: dnsQueryHex('direct.example.test') }]);
      assert.equal(d!.listeners.tcp.length, 1, 'one TCP listener on 127.0.0.1');
      assert.equal(d!.listeners.udp.length, 1, 'one UDP listener on 127.0.0.1');
      const [t, u] = d!.results as Array<Record<string, unknown>>;
      // Reset right after the handshake: Node may see the reset before its connect callback.
      assert.deepEqual([t!.error, t!.data], ['ECONNRESET', ''], 'reset, nothing came back');
      assert.equal(u!.error, 'TIMEOUT', 'no DNS answer');
      assert.deepEqual({ connections: proxy.connections, flows: proxy.flows.length, dns: proxy.dns.length }, before);
    });

    test('loopback inside the sandbox works; the host loopback is out of reach', async () => {
      let hostHits = 0;
      const host = net.createServer((c) => {
        hostHits++;
        c.end('host-secret');
      });
      await new Promise<void>((r) => host.listen(0, '127.0.0.1', () => r()));
      const hostPort = (host.address() as net.AddressInfo).port;
      const seen = proxy.flows.length;
      try {
        const r = await probe(opts(), [
          { op: 'localEcho', host: '127.0.0.1' },
          { op: 'localEcho', host: '127.0.0.2' },
          { op: 'localEcho', host: '::1' },
          { op: 'tcp', host: '127.0.0.1', port: hostPort, send: 'x' },
          { op: 'tcp', host: '127.0.0.2', port: hostPort, send: 'x' },
          { op: 'tcp', host: '::1', port: hostPort, send: 'x' },
          { op: 'tcp', host: 'localhost', port: hostPort, send: 'x' },
        ]);
        for (const i of [0, 1, 2]) assert.equal(r[i]!.data, 'inside');
        for (const i of [3, 4, 5, 6]) assert.equal(r[i]!.error, 'ECONNREFUSED', `op ${i}: ${JSON.stringify(r[i])}`);
        assert.equal(hostHits, 0, 'the host server saw no connection');
        assert.equal(proxy.flows.length, seen, 'loopback is never captured');
      } finally {
        host.close();
      }
    });

    test('without the proxy socket, connections are reset and DNS goes unanswered', async () => {
      const before = proxy.connections;
      const r = await probe({ ...opts(), socket: `${dir}/absent.sock` }, [
        { op: 'tcp', host: '1.2.3.4', port: 80, send: 'x' },
        { op: 'fetch', url: 'http://1.2.3.4/' },
        { op: 'udp', host: '8.8.8.8', port: 53, hex: dnsQueryHex('nobody.example.test'), expectReply: true, timeoutMs: 1000 },
      ]);
      assert.deepEqual([r[0]!.error, r[0]!.data], ['ECONNRESET', '']);
      assert.equal(r[1]!.error, 'ECONNRESET');
      assert.equal(r[2]!.error, 'TIMEOUT');
      assert.equal(proxy.connections, before, 'the proxy socket elsewhere saw nothing');
    });
  });
}
