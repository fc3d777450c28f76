// Session identifiers: sortable by start time, unguessable, safe in paths.

import { randomBytes } from 'node:crypto';

export function newSessionId(now = Date.now()): string {
  return `s${now.toString(36)}-${randomBytes(5).toString('hex')}`;
}

export function isSessionId(s: string): boolean {
  return /^s[0-9a-z]{6,12}-[0-9a-f]{10}$/.test(s);
}
