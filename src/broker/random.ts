// Random strings for placeholders and canaries, from the OS CSPRNG. Rejection
// sampling keeps every character of the alphabet equally likely.

import { randomBytes } from 'node:crypto';

export const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** The alphabet of AWS access key ids after their 4-letter prefix. */
export const BASE32_UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
export const UPPER_ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** `n` characters drawn uniformly from `alphabet` (at most 256 characters long). */
export function randomString(alphabet: string, n: number): string {
  if (alphabet.length < 2 || alphabet.length > 256) throw new RangeError('alphabet size must be 2..256');
  const limit = 256 - (256 % alphabet.length);
  let out = '';
  while (out.length < n) {
    for (const b of randomBytes(Math.max(16, (n - out.length) * 2))) {
      if (b >= limit) continue;
      out += alphabet[b % alphabet.length];
      if (out.length === n) break;
    }
  }
  return out;
}
