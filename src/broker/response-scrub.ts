// Responses from credentialed hosts: a real value (in any spelling the broker
// knows) in a header or the body is replaced by the placeholder spelled the
// same way, before the sandbox sees it (an echo endpoint, an error message
// quoting the key, an API that lists keys). Streaming with bounded memory;
// a value split across body chunks is found (matcher.ts StreamRewriter).
//
// Compressed bodies cannot be scanned, so requests to credentialed hosts ask
// for `Accept-Encoding: identity` and a response that is compressed anyway is
// refused.

import { Transform, type TransformCallback } from 'node:stream';
import type { Header } from '../proxy/index.ts';
import type { Found } from './book.ts';
import { StreamRewriter, type Matcher } from './matcher.ts';

export type ScrubTag = Found & { replacement: Buffer };

/** Scrub header values in place; returns how many values were replaced. */
export function scrubHeaders(matcher: Matcher<ScrubTag>, headers: Header[]): number {
  if (matcher.empty) return 0;
  let n = 0;
  for (let i = 0; i < headers.length; i++) {
    const [name, value] = headers[i]!;
    const buf = Buffer.from(value, 'latin1');
    const hits = matcher.all(buf);
    if (hits.length === 0) continue;
    const out: Buffer[] = [];
    let at = 0;
    for (const h of hits) {
      out.push(buf.subarray(at, h.start), h.tag.replacement);
      at = h.end;
    }
    out.push(buf.subarray(at));
    headers[i] = [name, Buffer.concat(out).toString('latin1')];
    n += hits.length;
  }
  return n;
}

/** Content-Encoding values other than identity (the body cannot be scanned). */
export function compressedEncoding(headers: readonly Header[]): string | null {
  const codings = headers
    .filter(([n]) => n.toLowerCase() === 'content-encoding')
    .flatMap(([, v]) => v.split(','))
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  return codings.length > 0 ? codings.join(', ') : null;
}

export class ResponseScrubTransform extends Transform {
  readonly #rewriter: StreamRewriter<ScrubTag>;
  readonly #onScrubbed: (count: number) => void;
  #count = 0;

  constructor(matcher: Matcher<ScrubTag>, onScrubbed: (count: number) => void) {
    super();
    this.#onScrubbed = onScrubbed;
    this.#rewriter = new StreamRewriter(matcher, (hit) => {
      this.#count++;
      return hit.tag.replacement;
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const out = this.#rewriter.push(chunk);
    if (out.length > 0) this.push(out);
    cb();
  }

  override _flush(cb: TransformCallback): void {
    const out = this.#rewriter.end();
    if (out.length > 0) this.push(out);
    if (this.#count > 0) this.#onScrubbed(this.#count);
    cb();
  }
}
