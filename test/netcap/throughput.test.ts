// Throughput sanity through capture: 200 concurrent connections all complete
// with the right bytes (each echoes distinct data, checked by hash, half-close
// included), and 1 GB each way is compared with plain loopback in the same
// sandbox. The floor is deliberately low: this catches a broken relay, not a
// slow machine. The measured rates go to the test's diagnostics.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ensureTestUser, FakeProxy, probe, removeDir, requireNetcap, tempDir, WHO } from './helpers.ts';

const GB = 1_000_000_000;
const FLOOR_MB_S = 100;

for (const who of WHO) {
  describe(`capture throughput as ${who}`, () => {
    let dir: string;
    let proxy: FakeProxy;

    before(async () => {
      requireNetcap();
      ensureTestUser();
      dir = tempDir(`netcap-tp-${who}-`);
      proxy = await FakeProxy.start(dir);
    });
    after(async () => {
      await proxy.close();
      removeDir(dir);
    });

    test('200 concurrent connections all complete with the right bytes', async () => {
      const seen = proxy.flows.length;
      const bytes = 64 * 1024;
      const [r] = await probe({ who, socket: proxy.path }, [{ op: 'concurrent', n: 200, bytes }]);
      assert.deepEqual({ ok: r!.ok, failed: r!.failed }, { ok: 200, failed: [] });
      const flows = proxy.flows.slice(seen);
      assert.equal(flows.length, 200);
      assert.ok(flows.every((f) => f.bytes === bytes));
      const want = new Set(Array.from({ length: 200 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.${1 + (i % 200)}:${1000 + i}`));
      assert.deepEqual(new Set(flows.map((f) => `${f.ip}:${f.port}`)), want);
    });

    test('1 GB each way through capture, compared with loopback', async (t) => {
      const [up, down, local] = await probe({ who, socket: proxy.path, timeoutMs: 180_000 }, [
        { op: 'bulkUp', host: '1.2.3.4', port: 9, bytes: GB },
        { op: 'bulkDown', host: '1.2.3.4', port: 19, bytes: GB },
        { op: 'localBulk', bytes: GB },
      ]);
      assert.equal(up!.reply, `${GB}\n`, 'every uploaded byte reached the proxy');
      assert.equal(down!.got, GB, 'every byte the proxy sent arrived');
      assert.equal(local!.up.reply, `${GB}\n`);
      assert.equal(local!.down.got, GB);
      const rate = (ms: number) => Math.round(GB / 1e6 / (ms / 1000));
      const m = { capturedUp: rate(up!.ms), capturedDown: rate(down!.ms), loopbackUp: rate(local!.up.ms), loopbackDown: rate(local!.down.ms) };
      t.diagnostic(`MB/s ${JSON.stringify(m)}`);
      assert.ok(m.capturedUp >= FLOOR_MB_S && m.capturedDown >= FLOOR_MB_S, `captured throughput below ${FLOOR_MB_S} MB/s: ${JSON.stringify(m)}`);
    });
  });
}
