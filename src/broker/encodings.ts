// The spellings of one value the broker looks for: raw, URL-encoded,
// base64 and base64url (each at all three byte alignments), base64 then
// URL-encoded, hex (lower and upper case), and JSON's "\/" escaping.
//
// BASE64 AT ANY OFFSET: a value embedded in a larger text starts at offset
// 0, 1 or 2 of a 3-byte group, and each alignment encodes differently. For
// each we keep the "core": the characters that depend only on the value,
// dropping the one or two at each end that mix in neighbouring bytes. A core
// is a substring of the base64 of ANY text holding the value at that
// alignment. (Consequence for scrubbing: up to 6 bits of the value's first and
// last byte can remain in the characters around a replaced core.)
//
// What is NOT covered: partial or mixed encodings (some characters escaped,
// others not), mixed-case hex, other transforms (compression, encryption,
// reversal, character substitution). A placeholder is worthless outside
// cordon, so these are detection gaps, not secret leaks; a real value never
// enters the sandbox.

/** How a match was spelled, for alerts. */
export type Encoding = 'raw' | 'url' | 'base64' | 'base64url' | 'hex' | 'json';

export interface Form {
  /** Stable id of the spelling ("base64/1" = base64 at alignment 1). */
  id: string;
  encoding: Encoding;
  /** This spelling of a value, or null when it does not apply (or equals raw). */
  encode(v: Buffer): Buffer | null;
}

/** Values shorter than this are not scanned for (too many false matches). */
export const MIN_SCANNED_LENGTH = 8;
const MIN_CORE = 8;

function b64core(v: Buffer, k: number, url: boolean): string {
  const enc = Buffer.concat([Buffer.alloc(k), v])
    .toString(url ? 'base64url' : 'base64')
    .replace(/=+$/, '');
  const total = k + v.length;
  const start = k === 0 ? 0 : k === 1 ? 2 : 3;
  const end = enc.length - (total % 3 === 0 ? 0 : 1);
  return enc.slice(start, end);
}

const ascii = (s: string | null) => (s === null || s.length < MIN_CORE ? null : Buffer.from(s, 'latin1'));

function percentAll(v: Buffer, upper: boolean): string {
  let s = '';
  for (const b of v) {
    const h = b.toString(16).padStart(2, '0');
    s += `%${upper ? h.toUpperCase() : h}`;
  }
  return s;
}

function urlComponent(v: Buffer): string | null {
  let s = '';
  for (const b of v) {
    const c = String.fromCharCode(b);
    s += /[A-Za-z0-9\-_.~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return s === v.toString('latin1') ? null : s;
}

function b64thenUrl(core: string, upper: boolean): string | null {
  if (!/[+/]/.test(core)) return null;
  return core.replace(/\+/g, upper ? '%2B' : '%2b').replace(/\//g, upper ? '%2F' : '%2f');
}

export const FORMS: readonly Form[] = [
  { id: 'raw', encoding: 'raw', encode: (v) => v },
  { id: 'url', encoding: 'url', encode: (v) => ascii(urlComponent(v)) },
  { id: 'url/all-upper', encoding: 'url', encode: (v) => ascii(percentAll(v, true)) },
  { id: 'url/all-lower', encoding: 'url', encode: (v) => ascii(percentAll(v, false)) },
  ...[0, 1, 2].flatMap((k): Form[] => [
    { id: `base64/${k}`, encoding: 'base64', encode: (v) => ascii(b64core(v, k, false)) },
    { id: `base64url/${k}`, encoding: 'base64url', encode: (v) => ascii(b64core(v, k, true)) },
    { id: `base64+url/${k}`, encoding: 'base64', encode: (v) => ascii(b64thenUrl(b64core(v, k, false), true)) },
    { id: `base64+url-lower/${k}`, encoding: 'base64', encode: (v) => ascii(b64thenUrl(b64core(v, k, false), false)) },
  ]),
  { id: 'hex', encoding: 'hex', encode: (v) => ascii(v.toString('hex')) },
  { id: 'hex/upper', encoding: 'hex', encode: (v) => ascii(v.toString('hex').toUpperCase()) },
  { id: 'json', encoding: 'json', encode: (v) => (v.includes(0x2f) ? ascii(v.toString('latin1').replace(/\//g, '\\/')) : null) },
];

export interface Spelling {
  form: Form;
  bytes: Buffer;
}

/** Every distinct spelling of `v` (the first form wins when two spell it the same). */
export function spellings(v: Buffer): Spelling[] {
  if (v.length < MIN_SCANNED_LENGTH) return [];
  const out: Spelling[] = [];
  for (const form of FORMS) {
    const bytes = form.encode(v);
    if (bytes === null || bytes.length === 0) continue;
    if (out.some((s) => s.bytes.equals(bytes))) continue;
    out.push({ form, bytes });
  }
  return out;
}
