// Scanning a request head (target and header fields) for credential values.
// Each place is scanned on its own and joined with its neighbours, so a value
// split across two header fields (or a field's name and value, or the path
// and the query) is found too:
//   1. method, path, query, then every header value, concatenated in order
//   2. every header name followed by its value, concatenated in order
// The finding says where: "method", "path", "query", "header:x-api-key", or
// "split:header:a+header:b" ("header-name" when it is in a field's name).
// Never the value.

import type { Header } from '../proxy/index.ts';
import type { Hit, Matcher } from './matcher.ts';

interface Segment {
  where: string;
  text: string;
}

export interface HeadFinding<T> {
  tag: T;
  where: string;
}

function locate(segments: readonly Segment[], starts: readonly number[], hit: Hit<unknown>): string {
  const covered: string[] = [];
  segments.forEach((s, i) => {
    const a = starts[i]!;
    const b = a + s.text.length;
    if (s.text.length > 0 && hit.start < b && hit.end > a && !covered.includes(s.where)) covered.push(s.where);
  });
  return covered.length === 1 ? covered[0]! : `split:${covered.join('+')}`;
}

function scan<T>(matcher: Matcher<T>, segments: readonly Segment[]): HeadFinding<T> | null {
  const starts: number[] = [];
  let at = 0;
  for (const s of segments) {
    starts.push(at);
    at += s.text.length;
  }
  const buf = Buffer.from(segments.map((s) => s.text).join(''), 'latin1');
  const hit = matcher.first(buf);
  return hit ? { tag: hit.tag, where: locate(segments, starts, hit) } : null;
}

export function scanHead<T>(matcher: Matcher<T>, method: string, target: string, headers: readonly Header[]): HeadFinding<T> | null {
  if (matcher.empty) return null;
  const q = target.indexOf('?');
  const byValue: Segment[] = [
    { where: 'method', text: method },
    { where: 'path', text: q >= 0 ? target.slice(0, q) : target },
    { where: 'query', text: q >= 0 ? target.slice(q + 1) : '' },
    ...headers.map(([n, v]) => ({ where: `header:${n.toLowerCase()}`, text: v })),
  ];
  const found = scan(matcher, byValue);
  if (found) return found;
  const byField: Segment[] = headers.flatMap(([n, v]) => [
    { where: 'header-name', text: n },
    { where: `header:${n.toLowerCase()}`, text: v },
  ]);
  return scan(matcher, byField);
}
