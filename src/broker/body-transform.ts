// The request body as it streams upstream: scanned for credential values
// (leaks, canaries, real values, dead placeholders), with this request's
// bound placeholder replaced by the real value when its binding has
// `body: true`, and (AWS) hashed against the signed x-amz-content-sha256.
//
// THE GUARANTEE (see matcher.ts StreamRewriter): the transform holds back the
// last max(1, longest pattern - 1) bytes it has read. When it finds a value
// that must not leave, it fails: no byte of that value, and nothing after it,
// was released; the proxy cuts the upstream connection, which has then
// received a body without its end (no final chunk, or fewer bytes than the
// Content-Length) - an incomplete request that HTTP servers discard. Bytes
// before the match (at most everything up to the held-back window) did reach
// the server's socket. The same holds for a body whose hash does not verify:
// its last byte is held until the hash is checked at the end.
//
// Cost: the held-back window delays at most ~window bytes until more data or
// the end arrives, so a request body that waits for the response mid-stream
// (rare in HTTP/1.1) stalls.

import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { Classified, IssuedCredential } from './book.ts';
import { StreamRewriter, type Matcher } from './matcher.ts';

export type BodyTag = { type: 'finding'; found: Classified } | { type: 'inject'; credential: IssuedCredential };

export interface BodyPlan {
  matcher: Matcher<BodyTag>;
  /** Hex sha256 the body must have (AWS), or null. */
  sha256: string | null;
  /** A finding: record it (alert, revoke) and return the reason the agent sees. */
  onFinding(found: Classified): string;
  /** The body failed a check other than a finding (hash). */
  onRefused(reason: string): void;
  /** The real value was injected `count` times (at the end of the body). */
  onInjected(credential: IssuedCredential, count: number): void;
}

/** An error the proxy relays as a refusal (Inspector.requestBody contract). */
export function denial(reason: string): Error & { deny: string } {
  return Object.assign(new Error(reason), { deny: reason });
}

export class RequestBodyTransform extends Transform {
  /** No injection: as many bytes out as in (the proxy keeps Content-Length). */
  readonly preservesLength: boolean;
  readonly #plan: BodyPlan;
  readonly #rewriter: StreamRewriter<BodyTag>;
  readonly #hash: Hash | null;
  readonly #injected = new Map<IssuedCredential, number>();

  constructor(plan: BodyPlan) {
    super();
    this.#plan = plan;
    this.preservesLength = !plan.matcher.patterns.some((p) => p.tag.type === 'inject');
    this.#hash = plan.sha256 === null ? null : createHash('sha256');
    this.#rewriter = new StreamRewriter(
      plan.matcher,
      (hit) => {
        if (hit.tag.type === 'finding') throw denial(plan.onFinding(hit.tag.found));
        const c = hit.tag.credential;
        this.#injected.set(c, (this.#injected.get(c) ?? 0) + 1);
        return c.real!;
      },
      1,
    );
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.#hash?.update(chunk);
      const out = this.#rewriter.push(chunk);
      if (out.length > 0) this.push(out);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (this.#hash && this.#hash.digest('hex') !== this.#plan.sha256) {
        const reason = 'the request body does not match its signed x-amz-content-sha256';
        this.#plan.onRefused(reason);
        throw denial(reason);
      }
      const out = this.#rewriter.end();
      for (const [c, n] of this.#injected) this.#plan.onInjected(c, n);
      if (out.length > 0) this.push(out);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }
}
