// A policy reload under load. A client inside the sandbox streams downloads
// continuously to two allowed hosts over keep-alive connections: a.reload.test
// (plain allow: spliced) and b.reload.test (methods: terminated, so every
// request is judged and audited). The test then edits the --policy file on
// the host to deny b and checks, from the client's log and the audit log:
//   - within a second, new requests to b get a 403 from cordon;
//   - the reload closed every connection opened under the old rules, and no
//     request completed under them afterwards (per-request audit records,
//     and the client's own view of its sockets);
//   - a keeps working, and no transfer to it was truncated or corrupted (a
//     connection cut by the reload is an error the client sees, never a
//     short or altered body that looks complete);
// then makes an invalid edit, which must leave the session running with the
// rules it had and write policy.reload-failed.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuditRecord } from '../../src/audit/index.ts';
import { assertFreshBuild, isolated, type Isolated } from '../helpers/cordon.ts';
import { auditAfter, Content, describeRun, inSandboxAsync, MiB, NODE_DIR, policyYaml, prelude, type PolicySpec, startServers, type TestServers, writeClient, writeTestCa } from './servers.ts';

const SIZE = 512 * 1024;
const CONTENT = 4 * MiB;
const LOOPS_PER_HOST = 2;

/** The load client: LOOPS_PER_HOST keep-alive loops per host, one JSON line per request. */
const LOAD_MJS = String.raw`
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync } from 'node:fs';
import https from 'node:https';
const [log, stop, size, maxOff, loops, ...targets] = process.argv.slice(2);
let sockets = 0;
const deadline = Date.now() + 90_000;
function once(target, agent, i) {
  const off = (i * 4096 * 37) % (Number(maxOff) - Number(size));
  const url = 'https://' + target + '/blob/' + size + '?off=' + off;
  const start = Date.now();
  return new Promise((resolve) => {
    const rec = { host: target.split(':')[0], i, off, start };
    let settled = false;
    const done = (extra) => {
      if (settled) return;
      settled = true;
      resolve({ ...rec, end: Date.now(), ...extra });
    };
    const req = https.get(url, { agent }, (res) => {
      const h = createHash('sha256');
      let n = 0;
      let text = '';
      res.on('data', (c) => {
        h.update(c);
        n += c.length;
        if (res.statusCode !== 200 && text.length < 600) text += c.toString('utf8');
      });
      res.on('error', () => {});
      res.on('close', () => done({ status: res.statusCode, bytes: n, sha: h.digest('hex'), complete: res.complete, socket: req.socket?.__id, born: req.socket?.__born, reused: req.reusedSocket, blocked: res.headers['x-cordon-blocked'] ?? null, text: text.slice(0, 300) }));
    });
    req.on('socket', (s) => {
      if (s.__id === undefined) {
        s.__id = ++sockets;
        s.__born = Date.now();
      }
    });
    req.setTimeout(15_000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => done({ error: String(e.code ?? e.message), socket: req.socket?.__id, born: req.socket?.__born }));
  });
}
async function loop(target, n) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = n * 100000; !existsSync(stop) && Date.now() < deadline; i++) {
    const r = await once(target, agent, i);
    appendFileSync(log, JSON.stringify({ loop: target + '#' + n, ...r }) + '\n');
    if (r.error) await new Promise((res) => setTimeout(res, 20));
  }
  agent.destroy();
}
await Promise.all(targets.flatMap((t) => Array.from({ length: Number(loops) }, (_, n) => loop(t, n))));
console.log('@@ load {"done":true}');
`;

interface LoadRecord {
  loop: string;
  host: string;
  i: number;
  off: number;
  start: number;
  end: number;
  status?: number;
  bytes?: number;
  sha?: string;
  complete?: boolean;
  socket?: number;
  born?: number;
  reused?: boolean;
  blocked?: string | null;
  text?: string;
  error?: string;
}

let t: Isolated;
let servers: TestServers;
let content: Content;
let caFile: string;

before(async () => {
  assertFreshBuild();
  t = isolated();
  content = new Content(CONTENT);
  servers = await startServers({ content });
  caFile = await writeTestCa(t.root);
  await writeClient(t.workspace);
  writeFileSync(join(t.workspace, 'load.mjs'), LOAD_MJS);
});

after(async () => {
  await servers?.close();
  if (t) rmSync(t.root, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, ms: number, probe: () => T | undefined | null | false): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

function readLog(file: string): LoadRecord[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as LoadRecord);
}

/** Replace the policy file the way editors save: write a sibling, rename over. */
function saveAs(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

const ms = (r: AuditRecord) => Date.parse(r.ts);

describe('policy reload under load', () => {
  it('denies b within a second, closes old connections, keeps a intact, and survives an invalid edit', async () => {
    const { httpsPort: S } = servers;
    const stateDir = join(t.root, 'state');
    const policyPath = join(t.root, 'reload.yaml');
    const spec = (denyB: boolean): PolicySpec => ({
      upstreamCa: caFile,
      read: [NODE_DIR],
      hosts: { 'a.reload.test': ['127.0.0.1'], 'b.reload.test': ['127.0.0.1'] },
      rules: [
        { allow: '127.0.0.1', ports: [S] },
        { allow: 'a.reload.test', ports: [S] },
        { allow: 'b.reload.test', ports: [S], methods: ['GET'] },
        ...(denyB ? [{ deny: 'b.reload.test', ports: [S] }] : []),
      ],
    });
    writeFileSync(policyPath, policyYaml(spec(false)));
    const log = join(t.workspace, 'load.log');
    const stop = join(t.workspace, 'stop');
    const run = inSandboxAsync(
      t.env,
      t.workspace,
      policyPath,
      prelude() + `export NODE_EXTRA_CA_CERTS="$TRUST"\nnode24 load.mjs "${log}" "${stop}" ${SIZE} ${CONTENT} ${LOOPS_PER_HOST} a.reload.test:${S} b.reload.test:${S}`,
      120_000,
    );
    let finished = false;
    void run.then(() => (finished = true));
    try {
      // 1. Steady load on both hosts.
      await waitFor('steady load on both hosts', 30_000, () => {
        if (finished) throw new Error('the session ended early');
        const recs = readLog(log);
        return ['a.reload.test', 'b.reload.test'].every((h) => recs.filter((r) => r.host === h && r.status === 200).length >= 8);
      });

      // 2. Deny b.
      const editAt = Date.now();
      saveAs(policyPath, policyYaml(spec(true)));
      await waitFor('a 403 for b', 5_000, () => readLog(log).some((r) => r.host === 'b.reload.test' && r.status === 403 && r.start > editAt));
      await sleep(1_500);

      // 3. An invalid edit: the session keeps its rules.
      const invalidAt = Date.now();
      saveAs(policyPath, policyYaml(spec(true)).replace(`ports:\n        - ${S}`, 'ports:\n        - 99999'));
      assert.match(readFileSync(policyPath, 'utf8'), /99999/, 'the invalid edit was written');
      await waitFor('policy.reload-failed', 5_000, () => auditAfter(stateDir, 0, 'policy.reload-failed').length > 0);
      await sleep(1_200);
      writeFileSync(stop, '');
      const r = await run;
      assert.equal(r.status, 0, describeRun(r));
      assert.match(r.stdout, /@@ load \{"done":true\}/, describeRun(r));
      assert.match(r.stderr, /policy reloaded/, describeRun(r));
      assert.match(r.stderr, /policy not reloaded/, describeRun(r));

      // ---- the audit log
      const audit = auditAfter(stateDir, 0);
      const of = (type: string) => audit.filter((a) => a.type === type);
      assert.equal(of('policy.reload').length, 1, 'exactly one reload (the invalid edit did not reload)');
      assert.equal(of('net.reload').length, 1, 'the proxy reloaded once');
      assert.equal(of('policy.reload-failed').length, 1);
      const netReload = of('net.reload')[0]!;
      const reloadAt = ms(netReload);
      const failed = of('policy.reload-failed')[0]!;
      assert.ok(reloadAt - editAt < 1_000, `the reload took effect ${reloadAt - editAt} ms after the edit`);
      assert.ok(ms(failed) >= invalidAt, 'the failure is for the invalid edit');
      assert.match(String(failed.data.message), /99999|port|65535/i, `the failure says why: ${failed.data.message}`);
      assert.equal(netReload.data.generation, 2);
      assert.ok(Number(netReload.data.closedFlows) >= 2, `the reload closed the open keep-alive connections: ${JSON.stringify(netReload.data)}`);

      const flowGen = new Map<string, number>();
      for (const f of of('net.flow')) flowGen.set(String(f.data.flow), Number(f.data.generation));
      const closedByReload = of('net.flow').filter((f) => f.data.generation === 1 && f.data.stage === 'reload');
      assert.ok(closedByReload.length >= 2, 'flows of the old generation were closed by the reload');
      assert.ok(closedByReload.every((f) => f.seq > netReload.seq), 'and recorded after it');
      // No request was served under the old rules after the reload.
      const afterReload = of('net.request').filter((q) => q.seq > netReload.seq);
      // (A request cut by the reload is recorded after it, with no status: it never completed.)
      const underOld = afterReload.filter((q) => flowGen.get(String(q.data.flow)) === 1 && q.data.status !== null);
      assert.deepEqual(underOld.map((q) => q.data), [], 'requests completed on old-generation flows after the reload');
      const bAfter = afterReload.filter((q) => q.data.host === 'b.reload.test' && flowGen.get(String(q.data.flow))! >= 2);
      assert.ok(bAfter.length >= 5, `b kept being asked: ${bAfter.length}`);
      assert.deepEqual(
        bAfter.filter((q) => !(q.data.decision === 'deny' && q.data.status === 403)).map((q) => q.data),
        [],
        'every request to b after the reload was denied',
      );
      for (const f of of('net.flow')) {
        assert.ok(Number(f.data.bytesUp) > 0 && typeof f.data.bytesDown === 'number', `net.flow counts bytes: ${JSON.stringify(f.data)}`);
      }

      // ---- the client's view
      const recs = readLog(log);
      const a = recs.filter((x) => x.host === 'a.reload.test');
      const b = recs.filter((x) => x.host === 'b.reload.test');
      const ok = (x: LoadRecord) => x.status === 200 && x.complete === true;
      // Nothing truncated or corrupted: every complete 200 is exactly the slice served.
      for (const x of recs.filter(ok)) {
        assert.equal(x.bytes, SIZE, `short body reported complete: ${JSON.stringify(x)}`);
        assert.equal(x.sha, content.sha(x.off, SIZE), `corrupted body: ${JSON.stringify(x)}`);
      }
      // A 200 that was not complete is a cut the client noticed; anything else is an error.
      const cutA = a.filter((x) => !ok(x));
      for (const x of cutA) {
        assert.ok(x.start <= reloadAt + 50 && x.end >= reloadAt - 50, `a failed outside the reload: ${JSON.stringify(x)}`);
      }
      assert.ok(a.filter((x) => ok(x) && x.start > reloadAt).length >= 10, 'a kept working after the reload');
      assert.ok(a.filter((x) => ok(x) && x.start > ms(failed)).length >= 4, 'a kept working after the invalid edit');
      // b: new requests get a 403 within a second of the edit, and keep getting it.
      const bLate = b.filter((x) => x.start > editAt + 1_000);
      assert.ok(bLate.length >= 5, `b requests after the edit: ${bLate.length}`);
      assert.deepEqual(
        bLate.filter((x) => !(x.status === 403 && x.blocked === 'denied' && /cordon blocked this request/.test(x.text ?? ''))),
        [],
        'b after the edit',
      );
      const firstDenied = b.filter((x) => x.status === 403).sort((p, q) => p.end - q.end)[0]!;
      assert.ok(firstDenied.end - editAt < 1_000, `first 403 for b ${firstDenied.end - editAt} ms after the edit`);
      // Nothing completed on an old connection after the reload (allowing for bytes already in
      // flight). "Old" as the client sees it: opened well before the reload. A socket the client
      // opened just before it may reach the proxy just after it, under the new rules (the audit
      // check above, by flow generation, is the exact one).
      const old = (x: LoadRecord) => (x.born ?? Infinity) < reloadAt - 100;
      assert.ok(recs.some((x) => ok(x) && old(x) && x.end < reloadAt), 'connections from before the reload were in use');
      const lateOnOld = recs.filter((x) => ok(x) && x.end > reloadAt + 250 && old(x));
      assert.deepEqual(lateOnOld, [], 'requests completed after the reload on connections opened before it');
      assert.deepEqual(b.filter((x) => ok(x) && x.end > reloadAt + 250), [], 'b served after the reload');
      console.log(
        `# reload: ${reloadAt - editAt} ms after the edit, first 403 for b after ${firstDenied.end - editAt} ms; ` +
          `a: ${a.filter(ok).length} ok, ${cutA.length} cut by the reload; b: ${b.filter(ok).length} ok, ${b.filter((x) => x.status === 403).length} denied; ` +
          `${closedByReload.length} flows closed`,
      );
    } finally {
      writeFileSync(stop, '');
      await run;
    }
  });
});
