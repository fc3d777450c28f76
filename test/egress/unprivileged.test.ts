// The whole proxy mode as an unprivileged user (created by the test), and as
// root: cordon, its proxy and cordon-netcap run as that user; capture still
// works (a direct dial to an IP literal lands at the proxy and is judged),
// and allowed HTTPS requests reach a server on the host's loopback, spliced
// and terminated.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertFreshBuild, CORDON, isolated } from '../helpers/cordon.ts';
import { asTestUser, ensureTestUser } from '../helpers/users.ts';
import { Content, describeRun, inSandboxAsync, NODE_DIR, policyFile, prelude, requireTool, results, startServers, type TestServers, writeClient, writeTestCa } from './servers.ts';

let servers: TestServers;
const roots: string[] = [];

/** Every audit record of a state directory, read with the CLI as the user who owns it. */
function auditOf(state: string, prefix: string[], env: NodeJS.ProcessEnv): Array<{ type: string; data: Record<string, unknown> }> {
  const argv = [...prefix, ...CORDON, 'audit', 'tail', '--json', '-n', '100000'];
  const r = spawnSync(argv[0]!, argv.slice(1), { env: prefix.length > 0 ? env : { ...env, CORDON_STATE_DIR: state }, encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `cordon audit tail: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { type: string; data: Record<string, unknown> });
}

before(async () => {
  assertFreshBuild();
  requireTool('curl', 'curl');
  requireTool('runuser', 'util-linux');
  ensureTestUser();
  servers = await startServers({ content: new Content(1024 * 1024) });
});

after(async () => {
  await servers?.close();
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

for (const who of ['unprivileged', 'root'] as const) {
  describe(`proxy mode as ${who}`, () => {
    it('captures a direct IP dial and judges it; allowed HTTPS to a loopback server works (spliced and terminated)', async () => {
      const { httpsPort: S } = servers;
      const t = isolated();
      roots.push(t.root);
      const state = join(t.root, 'state');
      let prefix: string[] = [];
      // The environment of the spawned command; as the test user, runuser's
      // `env -i` in the prefix gives cordon a clean one of its own.
      let env: NodeJS.ProcessEnv = t.env;
      let uid = 0;
      if (who === 'unprivileged') {
        const u = ensureTestUser();
        uid = u.uid;
        for (const d of [t.root, t.home, t.workspace, state, join(t.root, 'config'), join(t.root, 'run')]) chownSync(d, u.uid, u.gid);
        chmodSync(t.root, 0o755);
        const clean = {
          PATH: '/usr/bin:/bin',
          HOME: t.home,
          CORDON_STATE_DIR: state,
          CORDON_CONFIG_DIR: join(t.root, 'config'),
          CORDON_RUNTIME_DIR: join(t.root, 'run'),
          CORDON_SYSTEM_DIR: join(t.root, 'system'),
        };
        prefix = asTestUser(clean);
        env = process.env;
      }
      const caFile = await writeTestCa(t.root);
      await writeClient(t.workspace);
      if (who === 'unprivileged') {
        const u = ensureTestUser();
        for (const f of readdirSync(t.workspace)) chownSync(join(t.workspace, f), u.uid, u.gid);
      }
      const policy = policyFile(t.root, 'policy.yaml', {
        upstreamCa: caFile,
        read: [NODE_DIR],
        hosts: { 'splice.cordon.test': ['127.0.0.1'], 'term.cordon.test': ['127.0.0.1'] },
        rules: [
          { allow: '127.0.0.1', ports: [S] },
          { allow: 'splice.cordon.test', ports: [S] },
          { allow: 'term.cordon.test', ports: [S], methods: ['GET'] },
        ],
      });
      const seenBefore = servers.seen.length;
      const r = await inSandboxAsync(
        env,
        t.workspace,
        policy,
        prelude() +
          [
            // Direct dials to IP literals, no proxy variables used: captured, judged, refused.
            `get ip-http --noproxy '*' -m 10 http://203.0.113.7:8080/probe; cp .body ip-http.body`,
            `get ip-https --noproxy '*' -m 10 https://203.0.113.7/probe; cp .body ip-https.body`,
            // Allowed: spliced (captured) and terminated (through the proxy variables).
            `get spliced --noproxy '*' --cacert "$TRUST" https://splice.cordon.test:${S}/hello; cp .body spliced.body`,
            `get terminated https://term.cordon.test:${S}/hello; cp .body terminated.body`,
            'for f in *.body; do echo "== $f"; cat "$f"; done',
          ].join('\n'),
        120_000,
        prefix,
      );
      assert.equal(r.status, 0, describeRun(r));
      const out = results(r.stdout);
      const body = (name: string) => new RegExp(`== ${name}\\.body\\n([\\s\\S]*?)(?=\\n== |$)`).exec(r.stdout)?.[1]?.trimEnd() ?? '';
      assert.equal(out.curl.get('ip-http')?.status, 403, describeRun(r));
      assert.match(body('ip-http'), /cordon blocked this request\.\n\n {2}GET http:\/\/203\.0\.113\.7:8080\/probe\n/);
      assert.equal(out.curl.get('ip-https')?.status, 403, describeRun(r));
      assert.match(body('ip-https'), /cordon blocked this request\.\n\n {2}GET https:\/\/203\.0\.113\.7:443\/probe\n/);
      assert.equal(out.curl.get('spliced')?.status, 200, describeRun(r));
      assert.equal(body('spliced'), `hello GET splice.cordon.test:${S} /hello`);
      assert.equal(out.curl.get('terminated')?.status, 200, describeRun(r));
      assert.equal(body('terminated'), `hello GET term.cordon.test:${S} /hello`);
      assert.deepEqual(
        servers.seen.slice(seenBefore).map((s) => `${s.method} ${s.host} ${s.url}`).sort(),
        [`GET splice.cordon.test:${S} /hello`, `GET term.cordon.test:${S} /hello`],
        'only the allowed requests reached the server',
      );

      // The audit log was written by cordon running as that user, and has every
      // flow; it is read back the way that user would (`cordon audit tail --json`).
      assert.equal(statSync(join(state, 'audit.db')).uid, uid, 'cordon ran as the expected user');
      const audit = auditOf(state, prefix, env);
      const flows = audit.filter((a) => a.type === 'net.flow').map((a) => a.data);
      for (const original of ['203.0.113.7:8080', '203.0.113.7:443']) {
        const f = flows.find((x) => x.original === original);
        assert.ok(f, `the direct dial to ${original} reached the proxy: ${JSON.stringify(flows)}`);
        assert.equal(f.mode, 'transparent');
        assert.equal(f.dialed, null, 'the proxy never dialled it');
        assert.ok(Number(f.bytesUp) > 0 && Number(f.bytesDown) > 0, JSON.stringify(f));
      }
      const denied = audit.filter((a) => a.type === 'net.request').map((a) => a.data).filter((q) => q.host === '203.0.113.7');
      assert.equal(denied.length, 2, JSON.stringify(denied));
      assert.ok(denied.every((q) => q.decision === 'deny' && q.status === 403));
      assert.ok(flows.some((f) => f.host === 'splice.cordon.test' && f.protocol === 'tls-splice' && f.mode === 'transparent'));
      assert.ok(flows.some((f) => f.host === 'term.cordon.test' && f.protocol === 'tls-terminate' && f.mode === 'explicit'));
    });
  });
}
