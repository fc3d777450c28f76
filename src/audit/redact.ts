// Keeping secret values out of the log. Two layers, both applied before the
// record is encoded and MACed:
//   1. Redactors: functions registered by whoever knows the secrets (the
//      credential broker). Each is applied to every string in the data, keys
//      included. Working on strings rather than on the serialized JSON means a
//      secret is found whatever characters JSON would escape in it, and a
//      redactor cannot break the record's structure.
//   2. A tripwire: a field named like a secret (password, token, apiKey...)
//      must hold "[redacted]" (or null, a boolean or ""), else the record is
//      refused. It catches a caller that forgot to redact; it is not a
//      substitute for redactors (a secret under an innocent name passes).

export type Redactor = (s: string) => string;

export const REDACTED = '[redacted]';

/** JSON values as JSON.parse returns them. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Apply every redactor, in order, to every string (keys and values) of a JSON tree. */
export function redactStrings(value: JsonValue, redactors: readonly Redactor[]): JsonValue {
  if (redactors.length === 0) return value;
  const apply = (s: string): string => {
    for (const r of redactors) {
      const out = r(s);
      if (typeof out !== 'string') throw new TypeError('a redactor returned a non-string');
      s = out;
    }
    return s;
  };
  const walk = (v: JsonValue): JsonValue => {
    if (typeof v === 'string') return apply(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') {
      const out: { [key: string]: JsonValue } = {};
      for (const [k, child] of Object.entries(v)) {
        // defineProperty: a key named "__proto__" stays an ordinary key.
        Object.defineProperty(out, apply(k), { value: walk(child), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    return v;
  };
  return walk(value);
}

// Compared against the field name lower-cased with separators removed, as a
// suffix: "accessToken", "x-api-key", "Proxy-Authorization" match; "maxTokens",
// "tokenCount", "secretName" (the name of a binding, not its value) do not.
const SECRET_NAME_SUFFIXES = [
  'password',
  'passwd',
  'passphrase',
  'secret',
  'secretkey',
  'secretaccesskey',
  'privatekey',
  'token',
  'apikey',
  'authorization',
  'cookie',
  'cookies',
  'credential',
  'credentials',
];

export function isSecretName(name: string): boolean {
  const n = name.toLowerCase().replace(/[^a-z0-9]/g, '');
  return SECRET_NAME_SUFFIXES.some((s) => n.endsWith(s));
}

function harmless(v: JsonValue): boolean {
  return v === REDACTED || v === null || v === '' || typeof v === 'boolean';
}

const MAX_REPORTED = 20;

/** Paths ("headers.authorization", "items[2].token") of secret-named fields holding a value. */
export function findSecretFields(value: JsonValue): string[] {
  const found: string[] = [];
  const walk = (v: JsonValue, path: string): void => {
    if (found.length >= MAX_REPORTED) return;
    if (Array.isArray(v)) {
      v.forEach((child, i) => walk(child, `${path}[${i}]`));
    } else if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        const p = path === '' ? k : `${path}.${k}`;
        if (isSecretName(k) && !harmless(child)) found.push(p);
        else walk(child, p);
      }
    }
  };
  walk(value, '');
  return found;
}
