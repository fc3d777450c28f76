// Real clients inside a real `cordon run` sandbox (network.mode proxy)
// against real servers on the host's loopback: curl (proxy-aware and with
// --noproxy '*'), Node 24's fetch (which ignores proxy variables, so it is
// captured transparently), git over smart HTTP, npm against a registry,
// Node's WebSocket. HTTPS is spliced (a plain allow rule) or terminated (a
// rule with methods/paths); plain HTTP is always relayed. Every transfer is
// checked byte for byte, every refusal is checked at the server (it never
// saw the request), and every flow must have its net.flow audit record.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuditRecord } from '../../src/audit/index.ts';
import { assertFreshBuild, isolated, type Isolated, type Result } from '../helpers/cordon.ts';
import {
  auditAfter,
  auditHead,
  Content,
  type CurlResult,
  describeRun,
  inSandboxAsync,
  makeBareRepo,
  makeNpmPackage,
  MiB,
  NODE_DIR,
  type NpmPackage,
  npmCli,
  npmDir,
  policyFile,
  prelude,
  repoRef,
  requireTool,
  results,
  type Results,
  type RuleSpec,
  startServers,
  type TestServers,
  writeClient,
  writeTestCa,
} from './servers.ts';

const BIG = 20 * MiB;
const UP = 5 * MiB;

let t: Isolated;
let stateDir: string;
let content: Content;
let servers: TestServers;
let caFile: string;
let gitRoot: string;
let pkg: NpmPackage;
let npm: string;
let initialCommit: string;

const NAMES = ['splice.cordon.test', 'term.cordon.test', 'denied.cordon.test', 'git.cordon.test', 'registry.cordon.test', 'echo.ws.cordon.test', 'blocked.ws.cordon.test'];

/** The policy every test starts from; `extra` rules are added after it. */
function policy(name: string, extra: RuleSpec[] = []): string {
  const { httpsPort: S, httpPort: P } = servers;
  return policyFile(t.root, name, {
    upstreamCa: caFile,
    read: [NODE_DIR, npmDir()],
    hosts: Object.fromEntries(NAMES.map((n) => [n, ['127.0.0.1']])),
    rules: [
      // The proxy dials 127.0.0.1 only because a rule names it exactly.
      { allow: '127.0.0.1', ports: [S, P] },
      // A plain allow: TLS is spliced, plain HTTP relayed.
      { allow: 'splice.cordon.test', ports: [S, P] },
      // Methods and paths: TLS is terminated so each request can be judged.
      { allow: 'term.cordon.test', ports: [S, P], methods: ['GET', 'HEAD', 'POST'], paths: ['/blob/', '/hello', '/echo', '/ws'] },
      // deny rules name their ports too (the default is [80, 443])
      { deny: 'denied.cordon.test', ports: [S, P] },
      { allow: '*.ws.cordon.test', ports: [S, P] },
      { deny: 'blocked.ws.cordon.test', ports: [S, P] },
      ...extra,
    ],
  });
}

async function session(policyPath: string, script: string, timeout = 180_000): Promise<{ r: Result; out: Results; audit: AuditRecord[] }> {
  const mark = auditHead(stateDir);
  const r = await inSandboxAsync(t.env, t.workspace, policyPath, prelude() + script, timeout);
  return { r, out: results(r.stdout), audit: auditAfter(stateDir, mark) };
}

function curlOf(out: Results, label: string, r: Result): CurlResult {
  const v = out.curl.get(label);
  assert.ok(v, `no curl result "${label}"\n${describeRun(r)}`);
  return v;
}

function jsonOf(out: Results, label: string, r: Result): Record<string, unknown> {
  const v = out.json.get(label);
  assert.ok(v, `no client result "${label}"\n${describeRun(r)}`);
  return v;
}

type Flow = Record<string, unknown>;
const flows = (audit: AuditRecord[]): Flow[] => audit.filter((a) => a.type === 'net.flow').map((a) => a.data);
const requests = (audit: AuditRecord[]): Flow[] => audit.filter((a) => a.type === 'net.request').map((a) => a.data);

/** The one net.flow record matching `pred`, with bytes both ways (at least `minDown` down). */
function flowWith(audit: AuditRecord[], what: string, pred: (f: Flow) => boolean, minDown = 1): Flow {
  const all = flows(audit);
  const found = all.filter(pred);
  assert.ok(found.length >= 1, `no net.flow record for ${what}; flows: ${JSON.stringify(all, null, 1)}`);
  const f = found.find((x) => Number(x.bytesDown) >= minDown && Number(x.bytesUp) > 0);
  assert.ok(f, `net.flow for ${what} lacks bytes each way (want >= ${minDown} down): ${JSON.stringify(found)}`);
  return f;
}

/** Every net.flow record of a session counts bytes both ways; every flow that carried anything has both. */
function everyFlowCounted(audit: AuditRecord[]): void {
  const all = flows(audit);
  assert.ok(all.length > 0, 'the session wrote no net.flow record');
  for (const f of all) {
    assert.ok(Number.isSafeInteger(f.bytesUp) && Number.isSafeInteger(f.bytesDown), `net.flow without byte counts: ${JSON.stringify(f)}`);
    if (Number(f.requests) > 0 || String(f.protocol).startsWith('tls') || f.protocol === 'websocket') {
      assert.ok(Number(f.bytesUp) > 0 && Number(f.bytesDown) > 0, `net.flow of a used connection lacks bytes one way: ${JSON.stringify(f)}`);
    }
  }
}

before(async () => {
  assertFreshBuild();
  requireTool('curl', 'curl');
  requireTool('git', 'git');
  requireTool('git-http-backend', 'git');
  requireTool('sha256sum', 'coreutils');
  npm = npmCli();
  t = isolated();
  stateDir = join(t.root, 'state');
  content = new Content(BIG + MiB);
  gitRoot = join(t.root, 'git');
  mkdirSync(gitRoot);
  initialCommit = makeBareRepo(gitRoot, 'repo');
  pkg = makeNpmPackage(t.root);
  servers = await startServers({ content, gitRoot, npm: pkg });
  caFile = await writeTestCa(t.root);
  await writeClient(t.workspace);
});

after(async () => {
  await servers?.close();
  if (t) rmSync(t.root, { recursive: true, force: true });
});

describe('downloads: 20 MB byte-exact through every path', () => {
  const want = () => content.sha(0, BIG);

  it('curl with the proxy variables (CONNECT): spliced, terminated, and plain HTTP', async () => {
    const { httpsPort: S, httpPort: P } = servers;
    const { r, out, audit } = await session(
      policy('curl-proxy.yaml'),
      [
        `get splice --cacert "$TRUST" https://splice.cordon.test:${S}/blob/${BIG}`,
        `get term https://term.cordon.test:${S}/blob/${BIG}`,
        `get http http://splice.cordon.test:${P}/blob/${BIG}`,
      ].join('\n'),
    );
    assert.equal(r.status, 0, describeRun(r));
    for (const label of ['splice', 'term', 'http']) {
      const c = curlOf(out, label, r);
      assert.deepEqual(c, { rc: 0, status: 200, bytes: BIG, sha256: want() }, `${label}\n${describeRun(r)}`);
    }
    const explicit = (f: Flow) => f.mode === 'explicit' && f.original === '198.18.0.1:3128';
    flowWith(audit, 'spliced CONNECT', (f) => explicit(f) && f.host === 'splice.cordon.test' && f.protocol === 'tls-splice', BIG);
    flowWith(audit, 'terminated CONNECT', (f) => explicit(f) && f.host === 'term.cordon.test' && f.protocol === 'tls-terminate' && f.decision === 'per-request', BIG);
    flowWith(audit, 'absolute-form HTTP', (f) => explicit(f) && f.host === 'splice.cordon.test' && f.protocol === 'http', BIG);
    everyFlowCounted(audit);
  });

  it("curl --noproxy '*' (captured transparently): spliced, terminated, and plain HTTP", async () => {
    const { httpsPort: S, httpPort: P } = servers;
    const { r, out, audit } = await session(
      policy('curl-noproxy.yaml'),
      [
        `get splice --noproxy '*' --cacert "$TRUST" https://splice.cordon.test:${S}/blob/${BIG}`,
        `get term --noproxy '*' https://term.cordon.test:${S}/blob/${BIG}`,
        `get http --noproxy '*' http://splice.cordon.test:${P}/blob/${BIG}`,
      ].join('\n'),
    );
    assert.equal(r.status, 0, describeRun(r));
    for (const label of ['splice', 'term', 'http']) {
      assert.deepEqual(curlOf(out, label, r), { rc: 0, status: 200, bytes: BIG, sha256: want() }, `${label}\n${describeRun(r)}`);
    }
    const synthetic = (f: Flow, port: number) => f.mode === 'transparent' && new RegExp(`^198\\.19\\.\\d+\\.\\d+:${port}$`).test(String(f.original));
    flowWith(audit, 'captured spliced TLS', (f) => synthetic(f, S) && f.host === 'splice.cordon.test' && f.protocol === 'tls-splice', BIG);
    flowWith(audit, 'captured terminated TLS', (f) => synthetic(f, S) && f.host === 'term.cordon.test' && f.protocol === 'tls-terminate', BIG);
    flowWith(audit, 'captured HTTP', (f) => synthetic(f, P) && f.host === 'splice.cordon.test' && f.protocol === 'http', BIG);
    everyFlowCounted(audit);
  });

  it('Node fetch, which ignores HTTP_PROXY: spliced, terminated, plain HTTP, and an upload', async () => {
    const { httpsPort: S, httpPort: P } = servers;
    const { r, out, audit } = await session(
      policy('fetch.yaml'),
      [
        'export NODE_EXTRA_CA_CERTS="$TRUST"',
        'echo "proxy variable seen by node: $HTTPS_PROXY"',
        `node24 client.mjs fetch splice https://splice.cordon.test:${S}/blob/${BIG}`,
        `node24 client.mjs fetch term https://term.cordon.test:${S}/blob/${BIG}`,
        `node24 client.mjs fetch http http://splice.cordon.test:${P}/blob/${BIG}`,
        `node24 client.mjs fetch hello https://term.cordon.test:${S}/hello`,
        `node24 client.mjs upload up-splice https://splice.cordon.test:${S}/echo ${UP}`,
        `node24 client.mjs upload up-term https://term.cordon.test:${S}/echo ${UP}`,
      ].join('\n'),
    );
    assert.equal(r.status, 0, describeRun(r));
    assert.match(r.stdout, /proxy variable seen by node: http:\/\/198\.18\.0\.1:3128/, 'the proxy variables are set; fetch ignores them');
    for (const label of ['splice', 'term', 'http']) {
      const v = jsonOf(out, label, r);
      assert.deepEqual({ status: v.status, bytes: v.bytes, sha256: v.sha256, expected: v.expected }, { status: 200, bytes: BIG, sha256: want(), expected: want() }, label);
    }
    assert.match(String(jsonOf(out, 'hello', r).text), new RegExp(`^hello GET term\\.cordon\\.test:${S} /hello`));
    for (const label of ['up-splice', 'up-term']) {
      assert.deepEqual(jsonOf(out, label, r), { status: 200, sent: UP, echoed: UP, same: true, serverSha: true }, label);
    }
    // Node's fetch never used the explicit proxy: every flow was captured.
    assert.deepEqual(flows(audit).filter((f) => f.mode === 'explicit'), []);
    flowWith(audit, 'fetch spliced', (f) => f.mode === 'transparent' && f.host === 'splice.cordon.test' && f.protocol === 'tls-splice', BIG);
    flowWith(audit, 'fetch terminated', (f) => f.mode === 'transparent' && f.host === 'term.cordon.test' && f.protocol === 'tls-terminate', BIG);
    flowWith(audit, 'fetch HTTP', (f) => f.mode === 'transparent' && f.host === 'splice.cordon.test' && f.protocol === 'http', BIG);
    for (const [host, protocol] of [
      ['splice.cordon.test', 'tls-splice'],
      ['term.cordon.test', 'tls-terminate'],
    ]) {
      const upload = flows(audit).find((f) => f.host === host && f.protocol === protocol && Number(f.bytesUp) >= UP);
      assert.ok(upload && Number(upload.bytesDown) >= UP, `the ${protocol} upload is counted both ways: ${JSON.stringify(flows(audit))}`);
    }
    const post = requests(audit).find((q) => q.method === 'POST' && q.path === '/echo');
    assert.ok(post && post.bytesUp === UP && post.decision === 'allow', `the terminated POST is audited with its body size: ${JSON.stringify(post)}`);
    everyFlowCounted(audit);
  });
});

describe('denials', () => {
  it('a denied request gets a 403 whose body says what was blocked, and never reaches the server', async () => {
    const { httpsPort: S, httpPort: P } = servers;
    const seenBefore = servers.seen.length;
    const { r, out, audit } = await session(
      policy('deny.yaml'),
      [
        'export NODE_EXTRA_CA_CERTS="$TRUST"',
        // proxy-aware curl, plain HTTP to a denied host: the proxy answers the request
        `get http-denied http://denied.cordon.test:${P}/hello; cp .body body-http-denied`,
        // a path no rule allows, on a terminated host (proxy-aware and captured)
        `get path-denied https://term.cordon.test:${S}/secret; cp .body body-path-denied`,
        `get method-denied --noproxy '*' -X DELETE https://term.cordon.test:${S}/hello; cp .body body-method-denied`,
        `node24 client.mjs fetch fetch-denied https://term.cordon.test:${S}/secret/keys`,
        // CONNECT to a denied host: refused before any tunnel exists
        `node24 client.mjs connect connect-denied denied.cordon.test:${S}`,
        // a denied host is not even resolvable inside
        `node24 client.mjs fetch dns-denied https://denied.cordon.test:${S}/hello`,
        'for f in body-*; do echo "== $f"; cat "$f"; done',
      ].join('\n'),
    );
    assert.equal(r.status, 0, describeRun(r));
    const bodyOf = (name: string) => {
      const m = new RegExp(`== ${name}\\n([\\s\\S]*?)(?=\\n== |$)`).exec(r.stdout);
      assert.ok(m, `no ${name} in output\n${describeRun(r)}`);
      return m[1]!;
    };
    for (const [label, line] of [
      ['http-denied', `GET http://denied.cordon.test:${P}/hello`],
      ['path-denied', `GET https://term.cordon.test:${S}/secret`],
      ['method-denied', `DELETE https://term.cordon.test:${S}/hello`],
    ] as const) {
      const c = curlOf(out, label, r);
      assert.equal(c.status, 403, `${label}: ${JSON.stringify(c)}`);
      const body = bodyOf(`body-${label}`);
      assert.match(body, /^cordon blocked this request\./, `${label} body:\n${body}`);
      assert.ok(body.includes(`  ${line}\n`), `${label} body names "${line}":\n${body}`);
      assert.match(body, /Why: /);
    }
    const fetched = jsonOf(out, 'fetch-denied', r);
    assert.equal(fetched.status, 403);
    assert.equal(fetched.blocked, 'not-allowed');
    assert.match(String(fetched.text), new RegExp(`GET https://term\\.cordon\\.test:${S}/secret/keys`));
    const connect = String(jsonOf(out, 'connect-denied', r).text);
    assert.match(connect, /^HTTP\/1\.1 403 /, connect);
    assert.match(connect, /cordon blocked this request\.[\s\S]*denied\.cordon\.test/, connect);
    assert.match(String(jsonOf(out, 'dns-denied', r).error), /ENOTFOUND|EAI_AGAIN/, 'a denied name does not resolve inside');

    // The server saw none of it.
    const seen = servers.seen.slice(seenBefore);
    assert.deepEqual(seen.filter((s) => s.host.startsWith('denied.') || s.url.startsWith('/secret') || s.method === 'DELETE'), []);
    // Audited: each request refused with its status, each flow counted.
    const denied = requests(audit).filter((q) => q.decision === 'deny');
    for (const [method, path] of [
      ['GET', '/hello'],
      ['GET', '/secret'],
      ['DELETE', '/hello'],
      ['GET', '/secret/keys'],
    ]) {
      assert.ok(denied.some((q) => q.method === method && q.path === path && q.status === 403), `no denied net.request for ${method} ${path}: ${JSON.stringify(denied)}`);
    }
    flowWith(audit, 'the refused CONNECT', (f) => f.mode === 'explicit' && f.host === 'denied.cordon.test' && f.decision === 'deny' && f.stage === 'policy');
    everyFlowCounted(audit);
  });
});

describe('git over HTTPS (git http-backend)', () => {
  const commitAndPush = (tag: string) =>
    [
      `cd ${tag} && echo "${tag}" > ${tag}.txt && git add ${tag}.txt`,
      `git -c user.name=agent -c user.email=agent@cordon.test commit -q -m "${tag}"`,
      `git rev-parse HEAD > ../${tag}.head`,
      `git push origin main 2>../${tag}.push; echo "@@ ${tag}-push {\\"rc\\":$?}"; cat ../${tag}.push; cd ..`,
    ].join('\n');

  it('clones and pushes when the host is allowed (spliced)', async () => {
    const { httpsPort: S } = servers;
    const { r, out, audit } = await session(
      policy('git-rw.yaml', [{ allow: 'git.cordon.test', ports: [S] }]),
      [
        'export GIT_SSL_CAINFO="$TRUST"',
        `git clone -q https://git.cordon.test:${S}/repo.git rw; echo "@@ clone {\\"rc\\":$?}"`,
        'cat rw/README.md',
        commitAndPush('rw'),
      ].join('\n'),
    );
    assert.equal(jsonOf(out, 'clone', r).rc, 0, describeRun(r));
    assert.match(r.stdout, /served by git http-backend/);
    assert.equal(jsonOf(out, 'rw-push', r).rc, 0, describeRun(r));
    const pushed = readFileSync(join(t.workspace, 'rw.head'), 'utf8').trim();
    assert.equal(repoRef(gitRoot, 'repo'), pushed, 'the push reached the server');
    assert.notEqual(pushed, initialCommit);
    flowWith(audit, 'git (spliced)', (f) => f.host === 'git.cordon.test' && f.protocol === 'tls-splice');
    everyFlowCounted(audit);
  });

  it('clones, but a push is refused with a 403, when the rules allow only GET (plus the fetch RPC)', async () => {
    const { httpsPort: S } = servers;
    const before = repoRef(gitRoot, 'repo');
    const seenBefore = servers.seen.length;
    const { r, out, audit } = await session(
      policy('git-ro.yaml', [
        { allow: 'git.cordon.test', ports: [S], methods: ['GET'] },
        // smart HTTP fetches over POST to git-upload-pack; git-receive-pack (push) stays closed
        { allow: 'git.cordon.test', ports: [S], methods: ['POST'], paths: ['/repo.git/git-upload-pack'] },
      ]),
      [`git clone -q https://git.cordon.test:${S}/repo.git ro; echo "@@ clone {\\"rc\\":$?}"`, 'git -C ro log --format=%H -1', commitAndPush('ro')].join('\n'),
    );
    assert.equal(jsonOf(out, 'clone', r).rc, 0, describeRun(r));
    assert.ok(r.stdout.includes(before), 'the clone has the server head');
    assert.notEqual(jsonOf(out, 'ro-push', r).rc, 0, `the push must fail\n${describeRun(r)}`);
    assert.match(r.stdout, /HTTP 403|returned error: 403/, `git says 403\n${describeRun(r)}`);
    assert.equal(repoRef(gitRoot, 'repo'), before, 'the server repository is unchanged');
    const seen = servers.seen.slice(seenBefore);
    assert.ok(seen.some((s) => s.method === 'POST' && s.url.endsWith('/git-upload-pack')), 'the clone used the smart protocol');
    assert.deepEqual(seen.filter((s) => s.method === 'POST' && s.url.includes('receive-pack')), [], 'no push RPC reached the server');
    const refused = requests(audit).filter((q) => q.decision === 'deny');
    assert.ok(
      refused.some((q) => q.method === 'POST' && q.path === '/repo.git/git-receive-pack' && q.status === 403),
      `the push RPC is audited as denied: ${JSON.stringify(requests(audit))}`,
    );
    flowWith(audit, 'git (terminated)', (f) => f.host === 'git.cordon.test' && f.protocol === 'tls-terminate');
    everyFlowCounted(audit);
  });
});

describe('npm install from a loopback registry', () => {
  it('installs a package with npm (Node 24) through the proxy, read-only rule, default trust', async () => {
    const { httpsPort: S } = servers;
    const seenBefore = servers.seen.length;
    const { r, out, audit } = await session(
      policy('npm.yaml', [{ allow: 'registry.cordon.test', ports: [S], methods: ['GET', 'HEAD'] }]),
      [
        'mkdir app && cd app',
        `printf '{"name":"app","version":"1.0.0","private":true}\\n' > package.json`,
        `node24 ${npm} install --registry https://registry.cordon.test:${S}/ --no-audit --no-fund --update-notifier=false --cache "$PWD/../.npm-cache" ${pkg.name} 2>&1; echo "@@ npm {\\"rc\\":$?}"`,
        `node24 -e 'console.log("required: " + require("${pkg.name}"))'`,
      ].join('\n'),
    );
    assert.equal(jsonOf(out, 'npm', r).rc, 0, describeRun(r));
    assert.ok(r.stdout.includes(`required: ${pkg.greeting}`), describeRun(r));
    const seen = servers.seen.slice(seenBefore).filter((s) => s.host.startsWith('registry.'));
    assert.ok(seen.some((s) => s.url === `/${pkg.name}`), `packument fetched: ${JSON.stringify(seen)}`);
    assert.ok(seen.some((s) => s.url.endsWith(`/-/${pkg.name}-${pkg.version}.tgz`)), 'tarball fetched');
    flowWith(audit, 'npm', (f) => f.host === 'registry.cordon.test' && f.protocol === 'tls-terminate' && f.mode === 'explicit', pkg.tarball.length);
    everyFlowCounted(audit);
  });
});

describe('WebSocket (Node 24 global WebSocket)', () => {
  it('works both ways on allowed hosts (spliced, terminated, plain) and is refused at the upgrade on a denied host', async () => {
    const { httpsPort: S, httpPort: P } = servers;
    const seenBefore = servers.seen.length;
    const wsBefore = servers.ws.length;
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    const { r, out, audit } = await session(
      policy('ws.yaml'),
      [
        'export NODE_EXTRA_CA_CERTS="$TRUST"',
        `node24 client.mjs ws spliced wss://echo.ws.cordon.test:${S}/ws`,
        `node24 client.mjs ws terminated wss://term.cordon.test:${S}/ws`,
        `node24 client.mjs ws plain ws://echo.ws.cordon.test:${P}/ws`,
        `node24 client.mjs ws denied-tls wss://blocked.ws.cordon.test:${S}/ws`,
        `node24 client.mjs ws denied-plain ws://blocked.ws.cordon.test:${P}/ws`,
        // The same refused upgrade, raw, to read the answer
        `curl -sS -i --noproxy '*' -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: ${key}' https://blocked.ws.cordon.test:${S}/ws > upgrade.txt; echo "== upgrade"; cat upgrade.txt`,
      ].join('\n'),
    );
    assert.equal(r.status, 0, describeRun(r));
    const expected = (host: string) => [`hello ${host}`, 'echo:ping-1', 'bin:fa030201', 'big:reversed'];
    for (const [label, host] of [
      ['spliced', `echo.ws.cordon.test:${S}`],
      ['terminated', `term.cordon.test:${S}`],
      ['plain', `echo.ws.cordon.test:${P}`],
    ] as const) {
      const v = jsonOf(out, label, r);
      assert.deepEqual({ opened: v.opened, got: v.got, code: v.code }, { opened: true, got: expected(host), code: 1000 }, `${label}: ${JSON.stringify(v)}`);
    }
    const events = servers.ws.slice(wsBefore);
    for (const host of [`echo.ws.cordon.test:${S}`, `term.cordon.test:${S}`, `echo.ws.cordon.test:${P}`]) {
      const mine = events.filter((e) => e.host === host).map((e) => `${e.kind}${e.data ? `:${e.data.slice(0, 16)}` : ''}`);
      assert.deepEqual(mine.slice(0, 3), ['open', 'text:ping-1', 'binary:010203fa'], `server side of ${host}`);
      assert.ok(mine.includes('close:1000'), `the server saw the close from ${host}: ${mine}`);
    }
    for (const label of ['denied-tls', 'denied-plain']) {
      const v = jsonOf(out, label, r);
      assert.equal(v.opened, false, `${label} must not open: ${JSON.stringify(v)}`);
      assert.deepEqual(v.got, []);
    }
    const upgrade = /== upgrade\n([\s\S]*)$/.exec(r.stdout)?.[1] ?? '';
    assert.match(upgrade, /^HTTP\/1\.1 403 /, upgrade);
    assert.match(upgrade, /cordon blocked this request\.[\s\S]*GET https:\/\/blocked\.ws\.cordon\.test:\d+\/ws/, upgrade);
    // Nothing of the denied host reached the server, not even the upgrade request.
    assert.deepEqual(servers.seen.slice(seenBefore).filter((s) => s.host.startsWith('blocked.')), []);
    assert.deepEqual(events.filter((e) => e.host.startsWith('blocked.')), []);
    const wsRequests = requests(audit).filter((q) => q.websocket === true);
    assert.ok(wsRequests.some((q) => q.host === 'blocked.ws.cordon.test' && q.port === S && q.decision === 'deny' && q.status === 403), JSON.stringify(wsRequests));
    assert.ok(wsRequests.some((q) => q.host === 'blocked.ws.cordon.test' && q.port === P && q.decision === 'deny' && q.status === 403), JSON.stringify(wsRequests));
    assert.ok(wsRequests.some((q) => q.host === 'term.cordon.test' && q.decision === 'allow' && q.status === 101), JSON.stringify(wsRequests));
    const big = 200 * 1024;
    flowWith(audit, 'spliced wss', (f) => f.host === 'echo.ws.cordon.test' && f.port === S && f.protocol === 'tls-splice', big);
    flowWith(audit, 'terminated wss', (f) => f.host === 'term.cordon.test' && f.protocol === 'websocket', big);
    flowWith(audit, 'plain ws', (f) => f.host === 'echo.ws.cordon.test' && f.port === P && f.protocol === 'websocket', big);
    const up = flows(audit).find((f) => f.host === 'echo.ws.cordon.test' && f.port === S)!;
    assert.ok(Number(up.bytesUp) >= big, `upload counted: ${JSON.stringify(up)}`);
    everyFlowCounted(audit);
  });
});
