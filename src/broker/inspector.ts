// The broker's proxy inspector: one per session. The proxy calls it only for
// requests its rules admitted (http-relay.ts: identity, then the policy, then
// inspectors), so a real value is never injected into a request the policy
// would refuse. Per request:
//
//   1. Scan the head (method, path, query, every header, values split across fields)
//      for placeholders headed outside their binding's hosts, canaries, real
//      values, and revoked/expired placeholders -> block, alert, revoke.
//   2. Credentialed host (a binding covers host:port): check every credential
//      it carries (credential-check.ts), inject the real value where bound
//      (header with its scheme; query parameter when `query`), verify and
//      re-sign SigV4 (aws-resign.ts), ask for an uncompressed response, strip
//      `stripHeaders`. One `cred.use` record per injection. Real values go
//      over TLS only: a plain-HTTP request that would get one is refused.
//   3. Body (body-transform.ts): the same scan, streaming; `body: true`
//      bindings get the placeholder replaced; AWS bodies checked against the
//      signed hash.
//   4. Responses from credentialed hosts: real values scrubbed back to the
//      placeholder (response-scrub.ts), in every head the agent sees (1xx
//      interim heads and the 101 included) and the body.
//   5. WebSocket upgrades (ws-frames.ts): the request loses
//      Sec-WebSocket-Extensions (a compressed frame cannot be scanned; a
//      frame with reserved bits ends the connection). After the 101, frames
//      from a credentialed host are scrubbed like a body, and frames from the
//      agent are scanned like a request body: a finding is recorded (and
//      revokes, as in a request) and ends the connection.
//
// wants(): true for a credentialed host always (so foreign credentials stay
// refused there, and a revoked placeholder gets a clear refusal), and for
// EVERY destination while the session has a live placeholder or a canary,
// because a leak can only be seen in content. The
// cost: every HTTPS flow is terminated (the sandbox must trust the session
// CA; certificate-pinning clients fail; TLS is done twice), and every request
// body is streamed through the scanner. A flow the proxy cannot terminate (a
// non-HTTP protocol, ECH) is not scanned: placeholders can leave through raw
// TCP that the policy allows - placeholders are worthless outside cordon, but
// canaries there go unnoticed. Requests the policy denies never reach the inspector:
// they do not leave, and raise no cred.* alert (net.request records them).
//
// Audit records (values never included; the redactor also removes them):
//   cred.use      secretName, binding, host, port, method, path, sites (header|query|body|sigv4)
//   cred.refused  reason (+ secretName, binding when known)
//   cred.leak     secretName, binding, part, destination, where, encoding, revoked (kind "real" for a real value)
//   cred.canary   canary, format, destination, where, encoding
//   cred.scrubbed secretName-free count of values replaced in a response (in: headers|body|websocket)

import type { Header, InspectedRequest, InspectedResponse, Inspector, InspectorVerdict } from '../proxy/index.ts';
import { declaresBody, needsWholeBody, verifyAndResign } from './aws-resign.ts';
import { bindingMatchesRequest } from './binding-match.ts';
import type { Classified, CredentialBook, IssuedCredential } from './book.ts';
import { RequestBodyTransform, type BodyTag } from './body-transform.ts';
import { checkCredentials } from './credential-check.ts';
import { scanHead } from './head-scan.ts';
import { Matcher, StreamRewriter, type Pattern } from './matcher.ts';
import { compressedEncoding, ResponseScrubTransform, scrubHeaders, type ScrubTag } from './response-scrub.ts';
import { WsFrameRewriter, WsProtocolError } from '../proxy/ws-frames.ts';
import { uriEncode } from './sigv4.ts';

export interface InspectorContext {
  sessionId: string;
  book: CredentialBook;
  audit: (type: string, data: Record<string, unknown>) => void;
  now: () => number;
  /** Largest body read whole to sign an AWS request that does not state its hash. */
  maxSignedBodyBytes: number;
}

interface RequestPlan {
  credentialed: boolean;
  body: Array<Pattern<BodyTag>>;
  sha256: string | null;
  denied: boolean;
}

/** What the agent is told when a credential was headed somewhere it may not go (the same for all kinds: a canary must not give itself away). */
const LEAK_REASON = 'a credential was headed to a host it is not bound to; cordon blocked the request and revoked the credential';

const pathOnly = (target: string) => (target.includes('?') ? target.slice(0, target.indexOf('?')) : target);

function decodeParam(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

function injectQuery(target: string, name: string, placeholder: string, real: string): string {
  const q = target.indexOf('?');
  const parts = target.slice(q + 1).split('&').map((part) => {
    const eq = part.indexOf('=');
    if (eq < 0 || decodeParam(part.slice(0, eq)) !== name || decodeParam(part.slice(eq + 1)) !== placeholder) return part;
    return `${part.slice(0, eq)}=${uriEncode(real)}`;
  });
  return `${target.slice(0, q + 1)}${parts.join('&')}`;
}

export function createInspector(ctx: InspectorContext): Inspector {
  const { book } = ctx;
  const plans = new WeakMap<InspectedRequest, RequestPlan>();
  let scrubMatcher: Matcher<ScrubTag> | null = null;
  const scrubber = () => (book.closed ? new Matcher<ScrubTag>([]) : (scrubMatcher ??= new Matcher(book.scrubPatterns())));

  const where = (req: InspectedRequest) => ({
    session: ctx.sessionId,
    host: req.identity.host,
    port: req.identity.port,
    method: req.method,
    path: pathOnly(req.path),
  });

  const refused = (req: InspectedRequest, reason: string, c: IssuedCredential | null): { deny: string } => {
    ctx.audit('cred.refused', { ...where(req), ...(c ? { secretName: c.binding.secret, binding: c.binding.index } : {}), reason });
    return { deny: reason };
  };

  /** A credential value found where it must not be: record it, revoke, and say why. */
  const onFinding = (req: InspectedRequest, found: Classified, at: string): string => {
    const n = found.needle;
    const { path, ...rest } = where(req);
    // The path is left out when the value was found in it.
    const base = { ...rest, ...(at.includes('path') ? {} : { path }), destination: `${req.identity.host}:${req.identity.port}`, where: at, encoding: found.form.encoding };
    if (found.verdict === 'canary') {
      ctx.audit('cred.canary', { ...base, canary: n.canary!.index, format: n.canary!.canary.format });
      return LEAK_REASON;
    }
    const c = n.credential!;
    if (found.verdict === 'dead') {
      const reason = `credential ${book.state(c, ctx.now())}`;
      ctx.audit('cred.refused', { ...base, secretName: c.binding.secret, binding: c.binding.index, reason });
      return reason;
    }
    const revoked = found.verdict === 'leak';
    if (revoked) c.revoked = true;
    ctx.audit('cred.leak', { ...base, kind: found.verdict === 'real' ? 'real' : 'placeholder', secretName: c.binding.secret, binding: c.binding.index, part: n.part, revoked });
    return LEAK_REASON;
  };

  function onRequest(req: InspectedRequest): InspectorVerdict {
    const now = ctx.now();
    const { host, port } = req.identity;
    const plan: RequestPlan = { credentialed: false, body: [], sha256: null, denied: true };
    plans.set(req, plan);

    // 1. The head.
    const leakPatterns = book.requestPatterns(host, port, now);
    const finding = scanHead(new Matcher(leakPatterns), req.method, req.path, req.headers);
    if (finding) return { deny: onFinding(req, finding.tag, finding.where) };
    plan.body = leakPatterns.map((p) => ({ bytes: p.bytes, tag: { type: 'finding', found: p.tag } }));

    // 2. A credentialed host.
    const covering = book.covering(host, port);
    if (covering.length > 0) {
      plan.credentialed = true;
      const check = checkCredentials(covering, { method: req.method, target: req.path, headers: req.headers }, (c) => book.state(c, now));
      if (!check.ok) return refused(req, check.reason, check.credential);
      const injects = check.accepted.headers.length + check.accepted.query.length > 0 || check.accepted.aws !== null;
      if (injects && req.scheme !== 'https') return refused(req, 'a credential is only sent over TLS (this request is plain HTTP)', null);
      const sites = new Map<IssuedCredential, string[]>();
      const used = (c: IssuedCredential, site: string) => sites.set(c, [...(sites.get(c) ?? []), site]);
      for (const { credential: c, index } of check.accepted.headers) {
        const [name] = req.headers[index]!;
        const real = c.real!.toString('latin1');
        req.headers[index] = [name, c.binding.scheme === '' ? real : `${c.binding.scheme} ${real}`];
        used(c, 'header');
      }
      for (const c of check.accepted.query) {
        req.path = injectQuery(req.path, c.binding.query!, c.placeholder!, c.real!.toString('latin1'));
        used(c, 'query');
      }
      const strip = new Set(['accept-encoding', ...covering.flatMap((c) => c.binding.stripHeaders)]);
      const finish = (headers: Header[]) => {
        const kept: Header[] = headers.filter(([n]) => !strip.has(n.toLowerCase()));
        kept.push(['Accept-Encoding', 'identity']);
        headers.splice(0, headers.length, ...kept);
      };
      if (check.accepted.aws) {
        // The header edits happen between checking the sandbox's signature and signing again.
        const r = verifyAndResign({ ...check.accepted.aws, method: req.method, target: req.path, headers: req.headers, body: req.body, now }, finish);
        if (!r.ok) return refused(req, r.reason, check.accepted.aws.credential);
        plan.sha256 = r.bodySha256;
        used(check.accepted.aws.credential, 'sigv4');
      } else finish(req.headers);
      for (const c of covering) {
        if (c.binding.kind !== 'token' || !c.binding.body || book.state(c, now) !== 'live' || req.scheme !== 'https') continue;
        if (!bindingMatchesRequest(c.binding, req.method, req.path)) continue;
        plan.body.push({ bytes: Buffer.from(c.placeholder!, 'latin1'), tag: { type: 'inject', credential: c } });
      }
      for (const [c, s] of sites) ctx.audit('cred.use', { ...where(req), secretName: c.binding.secret, binding: c.binding.index, sites: s });
    }
    // A WebSocket: no extension may be negotiated (permessage-deflate would hide the frames' content).
    if (req.headers.some(([n, v]) => n.toLowerCase() === 'upgrade' && /\bwebsocket\b/i.test(v))) {
      for (let i = req.headers.length - 1; i >= 0; i--) if (req.headers[i]![0].toLowerCase() === 'sec-websocket-extensions') req.headers.splice(i, 1);
    }
    plan.denied = false;
    return undefined;
  }

  /** `buf` with every hit of `m` replaced by `onHit` (a whole value at once: a control frame). */
  const rewriteAll = <T>(m: Matcher<T>, buf: Buffer, onHit: (h: { tag: T }) => Buffer): Buffer => {
    const rw = new StreamRewriter(m, onHit);
    return Buffer.concat([rw.push(buf), rw.end()]);
  };

  /**
   * Watches the payload stream across message boundaries. `begin()` marks the
   * start of a message or control frame; `see(chunk)` takes its payload in wire
   * order and calls `onSeam` for a match that starts in an earlier message or
   * frame and ends in this one (a match inside one message is the message
   * rewriter's). Keeps the longest pattern's length - 1 bytes.
   */
  function seams<T>(matcher: Matcher<T>, onSeam: (h: { tag: T }) => unknown): { begin(): void; see(chunk: Buffer): void } {
    const keep = Math.max(0, matcher.maxLength - 1);
    let tail = Buffer.alloc(0);
    /** How many bytes at the start of `tail` came before the current message or frame. */
    let earlier = 0;
    return {
      begin: () => {
        earlier = tail.length;
      },
      see: (chunk) => {
        if (keep === 0 || chunk.length === 0) return;
        const joined = tail.length === 0 ? chunk : Buffer.concat([tail, chunk]);
        if (earlier > 0) for (const h of matcher.all(joined)) if (h.start < earlier && h.end > earlier) onSeam(h);
        const cut = Math.max(0, joined.length - keep);
        tail = Buffer.from(joined.subarray(cut));
        earlier = Math.max(0, earlier - cut);
      },
    };
  }

  function upgraded(res: InspectedResponse) {
    const req = res.request;
    const plan = plans.get(req);
    if (!plan || plan.denied) return null;
    // Agent to server: the request body's scan (placeholders off their hosts, canaries, real values), per message.
    const findings = new Matcher(plan.body.filter((p) => p.tag.type === 'finding'));
    const found = (h: { tag: BodyTag }): Buffer => {
      if (h.tag.type !== 'finding') return Buffer.alloc(0);
      throw new WsProtocolError(onFinding(req, h.tag.found, 'websocket'));
    };
    // Across messages too: a value cut between two messages (or a message and a ping) is still a finding.
    const clientSeam = seams(findings, found);
    const fromClient = findings.empty
      ? undefined
      : new WsFrameRewriter({
          from: 'client',
          message: () => {
            clientSeam.begin();
            const rw = new StreamRewriter(findings, found);
            return { push: (b) => (clientSeam.see(b), rw.push(b)), end: () => rw.end() };
          },
          control: (p) => {
            if (p.length > 0) clientSeam.begin();
            clientSeam.see(p);
            return rewriteAll(findings, p, found);
          },
        });
    // Server to agent, from a credentialed host: real values back to placeholders.
    let fromServer: WsFrameRewriter | undefined;
    const m = scrubber();
    if (plan.credentialed && !m.empty) {
      const scrubbedIn = (count: number) => {
        if (count > 0) ctx.audit('cred.scrubbed', { ...where(req), status: res.status, in: 'websocket', count });
      };
      const swap = (counter: { n: number }) => (h: { tag: ScrubTag }) => {
        counter.n++;
        return h.tag.replacement;
      };
      // A value cut between two messages cannot be rewritten (the first is already
      // complete and sent): the connection is cut before the rest of it goes.
      const serverSeam = seams(m, () => {
        const reason = 'the server split a credential value across WebSocket messages; the connection was cut';
        ctx.audit('cred.refused', { ...where(req), status: res.status, reason });
        throw new WsProtocolError(reason);
      });
      fromServer = new WsFrameRewriter({
        from: 'server',
        message: () => {
          serverSeam.begin();
          const counter = { n: 0 };
          const rw = new StreamRewriter(m, swap(counter));
          return {
            push: (b) => (serverSeam.see(b), rw.push(b)),
            end: () => {
              const out = rw.end();
              scrubbedIn(counter.n);
              return out;
            },
          };
        },
        control: (p) => {
          if (p.length > 0) serverSeam.begin();
          serverSeam.see(p);
          const counter = { n: 0 };
          const out = rewriteAll(m, p, swap(counter));
          scrubbedIn(counter.n);
          return out;
        },
      });
    }
    return fromClient || fromServer ? { ...(fromClient ? { fromClient } : {}), ...(fromServer ? { fromServer } : {}) } : null;
  }

  return {
    name: 'credentials',
    // Credentialed hosts always (foreign credentials stay refused and a revoked
    // placeholder gets a clear refusal even when nothing is live any more).
    wants: (id) => book.covering(id.host, id.port).length > 0 || book.watching(ctx.now()),
    bufferBody(req) {
      const aws = book.covering(req.identity.host, req.identity.port).some((c) => c.binding.kind === 'aws');
      return aws && needsWholeBody(req.headers) ? ctx.maxSignedBodyBytes : null;
    },
    onRequest,
    requestBody(req) {
      const plan = plans.get(req);
      if (!plan || plan.denied || !declaresBody(req.headers)) return null;
      if (plan.body.length === 0 && plan.sha256 === null) return null;
      return new RequestBodyTransform({
        matcher: new Matcher(plan.body),
        sha256: plan.sha256,
        onFinding: (found) => onFinding(req, found, 'body'),
        onRefused: (reason) => void refused(req, reason, null),
        onInjected: (c, count) => ctx.audit('cred.use', { ...where(req), secretName: c.binding.secret, binding: c.binding.index, sites: ['body'], count }),
      });
    },
    onResponse(res: InspectedResponse): InspectorVerdict {
      if (!plans.get(res.request)?.credentialed) return undefined;
      // The reason phrase too: a server can quote anything in the status line.
      const status: Header[] = [['reason', res.reason]];
      const n = scrubHeaders(scrubber(), res.headers) + scrubHeaders(scrubber(), status);
      res.reason = status[0]![1];
      if (n > 0) ctx.audit('cred.scrubbed', { ...where(res.request), status: res.status, in: 'headers', count: n });
      const bodyless = res.request.method === 'HEAD' || res.status < 200 || res.status === 204 || res.status === 304;
      const coding = compressedEncoding(res.headers);
      if (coding && !bodyless) return refused(res.request, `a ${coding}-compressed response from a credentialed host cannot be checked for secrets`, null);
      if (res.status === 101 && res.headers.some(([n]) => n.toLowerCase() === 'sec-websocket-extensions')) {
        return refused(res.request, 'a WebSocket extension from a credentialed host (compressed frames cannot be checked for secrets)', null);
      }
      return undefined;
    },
    upgraded,
    responseBody(res) {
      if (!plans.get(res.request)?.credentialed) return null;
      const m = scrubber();
      if (m.empty) return null;
      return new ResponseScrubTransform(m, (count) => ctx.audit('cred.scrubbed', { ...where(res.request), status: res.status, in: 'body', count }));
    },
  };
}
