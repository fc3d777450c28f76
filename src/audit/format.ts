// One record as one terminal line, for `cordon audit tail`:
//
//   2026-05-25T10:00:00.123Z #42 s-7f3a proxy.flow host=api.example.com method=GET status=200
//
// Record data often comes from the agent (hostnames, paths, commands), so
// nothing reaches the terminal raw: control characters, C1 codes and
// bidirectional overrides are escaped, and long values are cut.

import { canonicalJson } from './chain.ts';
import type { AuditRecord } from './chain.ts';

const MAX_VALUE_CHARS = 120;
const PLAIN = /^[\w.,:/@+%-]+$/;
// C0, DEL, C1, and the invisible direction marks/overrides/isolates.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function escapeUnsafe(s: string): string {
  return s.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function shorten(s: string): string {
  return s.length > MAX_VALUE_CHARS ? `${s.slice(0, MAX_VALUE_CHARS - 1)}…` : s;
}

function show(v: unknown): string {
  if (typeof v === 'string') return escapeUnsafe(shorten(PLAIN.test(v) ? v : JSON.stringify(v)));
  let text: string;
  try {
    text = canonicalJson(v);
  } catch {
    text = '?';
  }
  return escapeUnsafe(shorten(text));
}

export function formatRecord(r: AuditRecord): string {
  const head = [show(r.ts), `#${r.seq}`, show(r.session), show(r.type)].join(' ');
  const fields = Object.keys(r.data)
    .sort()
    .map((k) => `${PLAIN.test(k) ? k : show(k)}=${show(r.data[k])}`);
  return fields.length === 0 ? head : `${head} ${fields.join(' ')}`;
}
