// Egress budgets (src/proxy/budget.ts): the accounting on its own, then
// through a real proxy - a drip of small allowed requests trips the request
// and byte budgets, a raw TCP tunnel is cut when it overspends, a new
// destination past the limit is refused - each trip audited once, the agent
// told why, usage kept across a policy reload.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { EgressBudget, type BudgetLimits } from '../../src/proxy/budget.ts';
import { exchange, fakeServer, openFlow, readResponses, rule, startProxy, syntheticFor, type FakeServer } from './helpers.ts';

const limits = (l: Partial<BudgetLimits>): BudgetLimits => ({ bytesUp: null, requests: null, destinations: null, ...l });

describe('egress budget accounting', () => {
  it('admits until a budget is spent, then refuses with the budget named; one audit record per budget', () => {
    const audit: Array<Record<string, unknown>> = [];
    const b = new EgressBudget((d) => audit.push(d));
    const l = limits({ requests: 3 });
    for (let i = 0; i < 3; i++) assert.equal(b.admit(l, 'a.test', 443), null);
    assert.match(b.admit(l, 'a.test', 443) ?? '', /network\.budget\.requests: 3 requests/);
    assert.match(b.admit(l, 'b.test', 443) ?? '', /egress budget is spent/);
    assert.deepEqual(audit, [{ budget: 'requests', limit: 3, used: 3 }]);
    assert.equal(b.used.requests, 3, 'refused requests are not counted');
  });

  it('bytes: charge reports the overspend; spent() refuses admission afterwards; the meter throws', () => {
    const audit: Array<Record<string, unknown>> = [];
    const b = new EgressBudget((d) => audit.push(d));
    const l = limits({ bytesUp: 100 });
    assert.equal(b.charge(l, 60), null);
    assert.equal(b.charge(l, 40), null, 'exactly the budget is allowed');
    assert.match(b.admit(l, 'a.test', 80) ?? '', /bytesUp: 100 bytes sent/, 'nothing left for another request');
    const b2 = new EgressBudget(() => {});
    const meter = b2.meter(l)!;
    assert.equal(meter.push(Buffer.alloc(99)).length, 99);
    assert.throws(() => meter.push(Buffer.alloc(2)), /egress budget is spent/);
    assert.equal(new EgressBudget(() => {}).meter(limits({})), null, 'no byte budget, no meter');
    assert.equal(audit.length, 1);
  });

  it('destinations: a known destination stays reachable; a new one past the limit is refused', () => {
    const b = new EgressBudget(() => {});
    const l = limits({ destinations: 2 });
    assert.equal(b.admit(l, 'a.test', 443), null);
    assert.equal(b.admit(l, 'B.test', 443), null);
    assert.equal(b.admit(l, 'b.test', 443), null, 'names compare case-insensitively');
    assert.match(b.admit(l, 'c.test', 443) ?? '', /destinations: 2 destinations/);
    assert.match(b.admit(l, 'a.test', 8443) ?? '', /destinations/, 'another port is another destination');
    assert.equal(b.admit(l, 'a.test', 443), null);
  });

  it('a budget raised by a reload and spent again is audited again', () => {
    const audit: Array<Record<string, unknown>> = [];
    const b = new EgressBudget((d) => audit.push(d));
    b.admit(limits({ requests: 1 }), 'a.test', 1);
    b.admit(limits({ requests: 1 }), 'a.test', 1);
    b.admit(limits({ requests: 1 }), 'a.test', 1);
    b.admit(limits({ requests: 2 }), 'a.test', 1);
    b.admit(limits({ requests: 2 }), 'a.test', 1);
    assert.deepEqual(audit.map((d) => d.limit), [1, 2]);
  });

  it('check() answers like admit() without counting', () => {
    const b = new EgressBudget(() => {});
    const l = limits({ destinations: 1 });
    assert.equal(b.check(l, 'a.test', 1), null);
    assert.equal(b.check(l, 'b.test', 1), null, 'nothing was counted');
    assert.equal(b.admit(l, 'a.test', 1), null);
    assert.match(b.check(l, 'b.test', 1) ?? '', /destinations/);
    assert.equal(b.used.requests, 1);
  });

  it('no limits: nothing is ever refused', () => {
    const b = new EgressBudget(() => {});
    for (let i = 0; i < 1000; i++) assert.equal(b.admit(limits({}), `h${i}.test`, 443), null);
    assert.equal(b.charge(limits({}), 1e12), null);
  });
});

describe('egress budgets through the proxy', () => {
  let web: FakeServer;
  let echo: net.Server;
  let echoPort: number;
  const received: string[] = [];
  /** Body bytes that reached the server, finished requests or not. */
  let bodyBytes = 0;
  before(async () => {
    web = await fakeServer(
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on('error', () => {});
        req.on('data', (c: Buffer) => {
          chunks.push(c);
          bodyBytes += c.length;
        });
        req.on('end', () => {
          received.push(`${req.url} ${Buffer.concat(chunks).toString()}`);
          res.end('ok');
        });
      },
      { tls: false },
    );
    echo = net.createServer((s) => {
      s.on('error', () => {});
      s.on('data', (d: Buffer) => s.write(d));
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    echoPort = (echo.address() as net.AddressInfo).port;
  });
  after(async () => {
    await web.close();
    echo.close();
  });

  const policy = (budget: Partial<BudgetLimits>) => ({
    rules: [rule('allow', 'api.test', [web.port]), rule('allow', 'db.test', [echoPort], { protocol: 'tcp' }), rule('allow', '127.0.0.1', [])],
    hosts: { 'api.test': ['127.0.0.1'], 'db.test': ['127.0.0.1'] },
    budget: limits(budget),
  });

  /** One plain-HTTP POST to api.test over its own connection. */
  async function post(tp: Awaited<ReturnType<typeof startProxy>>, i: number, body: string) {
    const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'api.test'), web.port);
    const p = readResponses(s, 1);
    s.write(`POST /drip?i=${i} HTTP/1.1\r\nHost: api.test:${web.port}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    try {
      return (await p)[0]!;
    } finally {
      s.destroy();
    }
  }

  it('a slow drip of small requests trips the byte budget: later requests get a 403 naming the budget and never leave', async () => {
    received.length = 0;
    const tp = await startProxy(policy({ bytesUp: 2000 }));
    try {
      const statuses: number[] = [];
      let denial = '';
      for (let i = 0; i < 30; i++) {
        const r = await post(tp, i, 'x'.repeat(100));
        statuses.push(r.status);
        if (r.status !== 200 && !denial) denial = `${r.headers['x-cordon-blocked']} ${r.body.toString()}`;
      }
      const ok = statuses.filter((s) => s === 200).length;
      assert.ok(ok >= 5 && ok < 30, `some requests passed, then the budget tripped: ${statuses.join(',')}`);
      assert.deepEqual(statuses.slice(ok), statuses.slice(ok).map(() => 403), 'every request after the trip is refused');
      assert.equal(received.length, ok, 'refused requests never reached the server');
      assert.match(denial, /^budget /);
      assert.match(denial, /egress budget is spent/);
      const trips = tp.records.filter((r) => r.type === 'net.budget');
      assert.equal(trips.length, 1, 'one record for the trip');
      assert.equal(trips[0]!.data.budget, 'bytesUp');
      assert.equal(trips[0]!.data.session, 'sess-test');
      assert.ok(Number(trips[0]!.data.used) >= 2000);
      // Every byte that left is within the budget plus at most one request.
      const sent = tp.records.filter((r) => r.type === 'net.request' && r.data.decision === 'allow').length;
      assert.equal(sent, ok);
    } finally {
      await tp.close();
    }
  });

  it('a request body is charged as it streams: an upload past the budget is cut, even one that never finishes', async () => {
    received.length = 0;
    bodyBytes = 0;
    const tp = await startProxy(policy({ bytesUp: 2000 }));
    try {
      let sawBytes = 0;
      const piece = 'y'.repeat(300);
      for (let i = 0; i < 5; i++) {
        const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'api.test'), web.port);
        s.on('error', () => {});
        const got: Buffer[] = [];
        s.on('data', (d: Buffer) => got.push(d));
        s.write(`POST /upload?i=${i} HTTP/1.1\r\nHost: api.test:${web.port}\r\nContent-Length: 100000\r\n\r\n`);
        for (let k = 0; k < 20 && !s.destroyed; k++) {
          s.write(piece);
          await new Promise((r) => setTimeout(r, 10));
        }
        s.destroy();
        sawBytes += Buffer.concat(got).length;
      }
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(bodyBytes <= 2000, `the server got ${bodyBytes} body bytes (budget 2000, head included)`);
      assert.ok(bodyBytes > 0, 'the first upload did start (the rules allow it: only the budget stops it)');
      const trips = tp.records.filter((r) => r.type === 'net.budget');
      assert.equal(trips.length, 1, 'the byte budget tripped while the first upload streamed');
      const denied = tp.records.filter((r) => r.type === 'net.request' && r.data.decision === 'deny');
      assert.ok(denied.length >= 4, `the cut upload and every later one are recorded as denied: ${denied.length}`);
      assert.ok(sawBytes > 0, 'the agent got an answer (the 403) for at least one');
    } finally {
      await tp.close();
    }
  });

  it('an explicit CONNECT after the budget is spent is refused before any lookup or dial', async () => {
    let lookups = 0;
    const tp = await startProxy(
      { ...policy({ requests: 1 }), rules: [...policy({}).rules, rule('allow', '*.drip.test', [443])] },
      {
        resolve: async () => {
          lookups++;
          return ['127.0.0.1'];
        },
      },
    );
    try {
      assert.equal((await post(tp, 1, 'a')).status, 200);
      const { openExplicit, connectThrough } = await import('./helpers.ts');
      const a = await openExplicit(tp.socketPath);
      const r = await connectThrough(a, 'c2VjcmV0.drip.test:443');
      a.destroy();
      assert.equal(r.status, 403);
      assert.equal(lookups, 0, 'the name (which can carry data) was never looked up');
      assert.ok(tp.records.some((x) => x.type === 'net.flow' && /egress budget is spent/.test(String(x.data.reason))));
    } finally {
      await tp.close();
    }
  });

  it('a request head that would overspend is not sent', async () => {
    received.length = 0;
    const tp = await startProxy(policy({ bytesUp: 40 }));
    try {
      const r = await post(tp, 1, 'a');
      assert.equal(r.status, 403);
      assert.equal(r.headers['x-cordon-blocked'], 'budget');
      assert.equal(received.length, 0, 'the server got nothing');
    } finally {
      await tp.close();
    }
  });

  it('the request budget counts requests; a policy reload keeps the usage and applies the new limit', async () => {
    const tp = await startProxy(policy({ requests: 3 }));
    try {
      const s1 = [];
      for (let i = 0; i < 5; i++) s1.push((await post(tp, i, 'a')).status);
      assert.deepEqual(s1, [200, 200, 200, 403, 403]);
      tp.proxy.reload(policy({ requests: 5 }));
      const s2 = [];
      for (let i = 0; i < 3; i++) s2.push((await post(tp, i, 'a')).status);
      assert.deepEqual(s2, [200, 200, 403], 'three used before the reload count against the new five');
    } finally {
      await tp.close();
    }
  });

  it('a raw TCP tunnel is cut once it sends more than the byte budget', async () => {
    const tp = await startProxy(policy({ bytesUp: 10_000 }));
    try {
      const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'db.test'), echoPort);
      let back = 0;
      s.on('data', (d: Buffer) => (back += d.length));
      s.on('error', () => {});
      for (let i = 0; i < 40 && !s.destroyed && !s.readableEnded; i++) {
        s.write(Buffer.alloc(1000, 0x61));
        await new Promise((r) => setTimeout(r, 10));
      }
      await new Promise<void>((r) => (s.readableEnded || s.destroyed ? r() : (s.once('end', () => r()), s.once('close', () => r()))));
      assert.ok(back <= 10_000, `the server echoed at most the budget: ${back}`);
      const rec = await tp.flowRecord((d) => d.host === 'db.test');
      assert.match(String(rec.reason), /egress budget is spent/);
      assert.equal(tp.records.filter((r) => r.type === 'net.budget').length, 1);
      // A new flow is refused outright.
      const s2 = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'db.test'), echoPort);
      assert.equal((await exchange(s2, 'more', 3000, true)).length, 0);
      const rec2 = await tp.flowRecord((d) => d.host === 'db.test' && d.decision === 'deny');
      assert.match(String(rec2.reason), /egress budget is spent/);
    } finally {
      await tp.close();
    }
  });

  it('the destination budget refuses a new host:port, not one already reached', async () => {
    const tp = await startProxy(policy({ destinations: 1 }));
    try {
      assert.equal((await post(tp, 1, 'a')).status, 200);
      const s = await openFlow(tp.socketPath, await syntheticFor(tp.socketPath, 'db.test'), echoPort);
      assert.equal((await exchange(s, 'hello', 3000, true)).length, 0, 'a second destination is refused');
      assert.equal((await post(tp, 2, 'a')).status, 200, 'the first destination still works');
      assert.equal(tp.records.filter((r) => r.type === 'net.budget' && r.data.budget === 'destinations').length, 1);
    } finally {
      await tp.close();
    }
  });
});
