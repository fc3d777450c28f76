// Finding many byte patterns in buffers and in streams.
//
// Matcher: every pattern is searched with Buffer#indexOf (a native
// Boyer-Moore-Horspool search; with a few dozen patterns of 20-150 bytes that
// beats a JavaScript automaton).
//
// StreamRewriter: the same over a stream cut at arbitrary places, with bounded
// memory. It holds back the longest tail of what it has seen that is a proper
// prefix of some pattern (so at most longest pattern - 1 bytes; usually none).
// THE GUARANTEE: a byte is released only when no match can contain it any
// more. A match not yet complete when the stream ends at `end` starts at some
// s where buf[s..end) is a proper prefix of its pattern, so s lies in the
// held-back tail; every match starting before the tail is complete and was
// found. A caller that stops (throws) on a match has therefore released no
// byte of that match, and nothing after it. Holding back only real prefixes
// (not a fixed window) keeps streamed responses (server-sent events) flowing.

export interface Pattern<T> {
  bytes: Buffer;
  tag: T;
}

export interface Hit<T> {
  start: number;
  end: number;
  tag: T;
}

export class Matcher<T> {
  readonly patterns: readonly Pattern<T>[];
  /** Length of the longest pattern (0 when there are none). */
  readonly maxLength: number;

  constructor(patterns: readonly Pattern<T>[]) {
    this.patterns = patterns.filter((p) => p.bytes.length > 0);
    this.maxLength = this.patterns.reduce((m, p) => Math.max(m, p.bytes.length), 0);
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /** The earliest match (the longest at that position), or null. */
  first(buf: Buffer, from = 0): Hit<T> | null {
    let best: Hit<T> | null = null;
    for (const p of this.patterns) {
      const i = buf.indexOf(p.bytes, from);
      if (i < 0) continue;
      if (!best || i < best.start || (i === best.start && p.bytes.length > best.end - best.start)) {
        best = { start: i, end: i + p.bytes.length, tag: p.tag };
      }
    }
    return best;
  }

  /** Non-overlapping matches, leftmost first (longest at a position). */
  all(buf: Buffer, from = 0): Hit<T>[] {
    const hits: Hit<T>[] = [];
    for (const p of this.patterns) {
      let i = buf.indexOf(p.bytes, from);
      while (i >= 0) {
        hits.push({ start: i, end: i + p.bytes.length, tag: p.tag });
        i = buf.indexOf(p.bytes, i + 1);
      }
    }
    hits.sort((a, b) => a.start - b.start || b.end - a.end);
    const out: Hit<T>[] = [];
    let at = from;
    for (const h of hits) {
      if (h.start < at) continue;
      out.push(h);
      at = h.end;
    }
    return out;
  }
}

/**
 * What to do with a match: bytes to put in its place, or throw to stop the
 * stream (nothing of the match, or after it, is ever released).
 */
export type OnHit<T> = (hit: Hit<T>) => Buffer;

/** Length of the longest tail of `buf` that is a proper prefix of some pattern. */
export function partialTail(buf: Buffer, patterns: readonly Pattern<unknown>[]): number {
  let best = 0;
  for (const p of patterns) {
    const first = p.bytes[0]!;
    let s = buf.indexOf(first, Math.max(0, buf.length - (p.bytes.length - 1)));
    while (s >= 0) {
      const k = buf.length - s;
      if (k <= best) break; // later starts only give shorter tails
      if (buf.compare(p.bytes, 0, k, s, buf.length) === 0) {
        best = k;
        break;
      }
      s = buf.indexOf(first, s + 1);
    }
  }
  return best;
}

export class StreamRewriter<T> {
  readonly #matcher: Matcher<T>;
  readonly #onHit: OnHit<T>;
  readonly #minHold: number;
  #pending: Buffer = Buffer.alloc(0);

  /** `minHold`: hold back at least this many bytes (1: the body's last byte waits for end()). */
  constructor(matcher: Matcher<T>, onHit: OnHit<T>, minHold = 0) {
    this.#matcher = matcher;
    this.#onHit = onHit;
    this.#minHold = minHold;
  }

  /** Feed bytes; returns the bytes now safe to release (possibly rewritten). */
  push(chunk: Buffer): Buffer {
    const buf = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const hold = Math.max(this.#minHold, partialTail(buf, this.#matcher.patterns));
    return this.#release(buf, Math.max(0, buf.length - hold));
  }

  /** The stream ended: everything left, rewritten. */
  end(): Buffer {
    const buf = this.#pending;
    return this.#release(buf, buf.length);
  }

  #release(buf: Buffer, cut: number): Buffer {
    const out: Buffer[] = [];
    let pos = 0;
    if (!this.#matcher.empty) {
      for (const h of this.#matcher.all(buf)) {
        if (h.start >= cut) break;
        if (h.start > pos) out.push(buf.subarray(pos, h.start));
        out.push(this.#onHit(h));
        pos = h.end;
      }
    }
    const until = Math.max(pos, cut);
    if (until > pos) out.push(buf.subarray(pos, until));
    // Copy: the caller may reuse the chunk's memory.
    this.#pending = Buffer.from(buf.subarray(until));
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }
}
