import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as dnsPacket from 'dns-packet';
import { dnsChannelQuery, dnsChannelRaw, exchange, fakeServer, openFlow, readResponses, rule, startProxy, type FakeServer, type TestProxy } from './helpers.ts';

describe('DNS: the sandbox resolver', () => {
  let tp: TestProxy;
  let web: FakeServer;
  before(async () => {
    web = await fakeServer((req, res) => res.end(`plain ${req.url}`), { tls: false });
    tp = await startProxy({
      rules: [
        rule('allow', 'api.test', [web.port]),
        rule('ask', 'ask.test', [443]),
        rule('allow', '*.wild.test', [443]),
        rule('deny', 'denied.test', [443]),
        rule('allow', '127.0.0.1', []),
      ],
      hosts: { 'api.test': ['127.0.0.1'] },
    });
  });
  after(async () => {
    await tp.close();
    await web.close();
  });

  it('answers an allowed name with a stable synthetic address in 198.19.0.0/16', async () => {
    const a = await dnsChannelQuery(tp.socketPath, 'api.test');
    const b = await dnsChannelQuery(tp.socketPath, 'API.test');
    const addr = (a.answers![0] as dnsPacket.StringAnswer).data;
    assert.match(addr, /^198\.19\.\d+\.\d+$/);
    assert.equal((b.answers![0] as dnsPacket.StringAnswer).data, addr);
    assert.equal(a.id, 7);
  });

  it('gives names under an allowed wildcard their own addresses', async () => {
    const a = await dnsChannelQuery(tp.socketPath, 'a.wild.test');
    const b = await dnsChannelQuery(tp.socketPath, 'b.wild.test');
    assert.notEqual((a.answers![0] as dnsPacket.StringAnswer).data, (b.answers![0] as dnsPacket.StringAnswer).data);
  });

  it('answers names behind an ask rule (the flow then gets the approval answer)', async () => {
    const a = await dnsChannelQuery(tp.socketPath, 'ask.test');
    assert.equal(a.answers!.length, 1);
  });

  it('NXDOMAIN for denied and unknown names', async () => {
    for (const name of ['denied.test', 'unknown.test', 'wild.test']) {
      const r = await dnsChannelQuery(tp.socketPath, name);
      assert.equal(r.rcode, 'NXDOMAIN', name);
      assert.equal(r.answers!.length, 0);
    }
  });

  it('AAAA and TXT for an allowed name: no records', async () => {
    for (const type of ['AAAA', 'TXT'] as const) {
      const r = await dnsChannelQuery(tp.socketPath, 'api.test', type);
      assert.equal(r.rcode, 'NOERROR');
      assert.equal(r.answers!.length, 0);
    }
  });

  it('long labels (a tunnel) end in the audit log, not on the network', async () => {
    const label = 'a'.repeat(63);
    const name = `${label}.${label}.${label}.exfil.test`;
    const r = await dnsChannelQuery(tp.socketPath, name, 'TXT');
    assert.equal(r.rcode, 'NXDOMAIN');
    const rec = tp.records.find((x) => x.type === 'dns.query' && x.data.name === name);
    assert.ok(rec);
    assert.equal(rec.data.decision, 'deny');
    assert.equal(rec.data.type, 'TXT');
  });

  it('a 64-byte label is malformed (FORMERR), and audited', async () => {
    const label = Buffer.alloc(64, 0x61);
    const q = Buffer.concat([Buffer.from([0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 64]), label, Buffer.from([0, 0, 1, 0, 1])]);
    const r = dnsPacket.decode(await dnsChannelRaw(tp.socketPath, q)) as dnsPacket.DecodedPacket & { rcode?: string };
    assert.equal(r.rcode, 'FORMERR');
    assert.ok(tp.records.some((x) => x.type === 'dns.query' && x.data.decision === 'malformed' && x.data.id === 9));
  });

  it('audits every query with name, type and decision', async () => {
    await dnsChannelQuery(tp.socketPath, 'denied.test', 'A', 321);
    const rec = tp.records.find((x) => x.type === 'dns.query' && x.data.id === 321)!;
    assert.equal(rec.data.name, 'denied.test');
    assert.equal(rec.data.type, 'A');
    assert.equal(rec.data.decision, 'deny');
    assert.equal(rec.data.client, '10.0.0.2:5353');
  });

  it('a transparent flow to a synthetic address is mapped back to its name', async () => {
    const addr = (await dnsChannelQuery(tp.socketPath, 'api.test')).answers![0] as dnsPacket.StringAnswer;
    const s = await openFlow(tp.socketPath, addr.data, web.port);
    const got = readResponses(s, 1);
    s.write(`GET /mapped HTTP/1.1\r\nHost: api.test:${web.port}\r\nConnection: close\r\n\r\n`);
    const [res] = await got;
    assert.equal(res!.status, 200);
    assert.equal(res!.body.toString(), 'plain /mapped');
    const flow = await tp.flowRecord((d) => d.original === `${addr.data}:${web.port}`);
    assert.equal(flow.host, 'api.test');
    assert.equal(flow.dialed, `127.0.0.1:${web.port}`);
  });

  it('a flow to a synthetic address never handed out is refused', async () => {
    const s = await openFlow(tp.socketPath, '198.19.250.250', 443);
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const closed = await exchange(s, '');
    assert.equal(closed.length, 0);
    const flow = await tp.flowRecord((d) => d.original === '198.19.250.250:443');
    assert.equal(flow.decision, 'refused');
    assert.match(String(flow.reason), /never handed out/);
  });

  it('answers DNS over TCP at the resolver address', async () => {
    const s = await openFlow(tp.socketPath, '198.18.0.53', 53);
    const q = dnsPacket.streamEncode({ type: 'query', id: 99, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: 'api.test', type: 'A', class: 'IN' }] });
    const answer = await new Promise<Buffer>((resolve) => {
      let buf = Buffer.alloc(0);
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) resolve(buf);
      });
      s.write(q);
    });
    const p = dnsPacket.streamDecode(answer) as dnsPacket.DecodedPacket;
    assert.equal(p.id, 99);
    assert.match((p.answers![0] as dnsPacket.StringAnswer).data, /^198\.19\./);
    s.end();
    const flow = await tp.flowRecord((d) => d.original === '198.18.0.53:53');
    assert.equal(flow.protocol, 'dns-tcp');
    assert.ok(tp.records.some((r) => r.type === 'dns.query' && r.data.transport === 'tcp' && r.data.id === 99));
  });

  it('DNS to any other server is just a TCP flow, denied without a tcp rule', async () => {
    const s = await openFlow(tp.socketPath, '8.8.8.8', 53);
    s.write(dnsPacket.streamEncode({ type: 'query', id: 5, questions: [{ name: 'x.test', type: 'A' }] }));
    await exchange(s, '');
    const flow = await tp.flowRecord((d) => d.original === '8.8.8.8:53');
    assert.equal(flow.protocol, 'tcp');
    assert.equal(flow.decision, 'deny');
    assert.equal(flow.dialed, null);
  });
});

