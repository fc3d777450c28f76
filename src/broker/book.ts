// One session's credentials: what was issued for each binding (placeholder
// and real value), the canaries, and the byte patterns that find any of them
// in traffic. Everything the inspector and the rest of the session consult.
// One instance per session; nothing here is shared between sessions.

import { CordonError } from '../errors.ts';
import type { Binding, Canary } from '../policy/types.ts';
import { parseAwsSecret, type AwsKeyPair } from './aws-keys.ts';
import { bindingCovers } from './binding-match.ts';
import { MIN_SCANNED_LENGTH, spellings, type Form } from './encodings.ts';
import type { Pattern } from './matcher.ts';
import { awsPlaceholder, canaryValues, tokenPlaceholder, type AwsPlaceholder, type CanaryValues } from './placeholders.ts';

export interface IssuedCredential {
  binding: Binding;
  /** Kind token: the placeholder and the real value. */
  placeholder: string | null;
  real: Buffer | null;
  /** Kind aws: the placeholder pair and the real pair. */
  awsPlaceholder: AwsPlaceholder | null;
  awsReal: AwsKeyPair | null;
  expiresAt: number | null;
  revoked: boolean;
}

export interface IssuedCanary {
  index: number;
  canary: Canary;
  values: CanaryValues;
}

export type CredentialState = 'live' | 'revoked' | 'expired';

/** Whose value a pattern spells. */
export interface Needle {
  kind: 'placeholder' | 'canary' | 'real';
  credential: IssuedCredential | null;
  canary: IssuedCanary | null;
  /** "token", "access key id", "secret access key", "session token". */
  part: string;
  /** Real needles: the placeholder counterpart (what a scrubbed response shows instead). */
  standIn: Buffer | null;
}

export interface Found {
  needle: Needle;
  form: Form;
}

/** How a request treats a needle found in it. */
export type Verdict = 'leak' | 'canary' | 'real' | 'dead';

export interface Classified extends Found {
  verdict: Verdict;
}

const SESSION_TOKEN_STAND_IN = 'cordonph-session-token-not-shown-in-the-sandbox';

function realToken(secret: string, value: Buffer): Buffer {
  const text = value.toString('latin1').trim();
  if (!/^[\x21-\x7e]+$/.test(text)) {
    throw new CordonError('CORDON_SECRET', `secret "${secret}" has characters that cannot go in an HTTP header`, { detail: { secretName: secret } });
  }
  if (text.length < MIN_SCANNED_LENGTH) {
    throw new CordonError('CORDON_SECRET', `secret "${secret}" is shorter than ${MIN_SCANNED_LENGTH} characters: too short to be found and scrubbed reliably`, {
      detail: { secretName: secret },
    });
  }
  return Buffer.from(text, 'latin1');
}

export interface BookOptions {
  bindings: readonly Binding[];
  canaries: readonly Canary[];
  secrets: ReadonlyMap<string, Buffer>;
  issuedAt: number;
}

export class CredentialBook {
  readonly credentials: IssuedCredential[] = [];
  readonly canaries: IssuedCanary[] = [];
  #needles: Array<{ needle: Needle; value: Buffer }> = [];
  #patterns: Array<Pattern<Found>> = [];
  #closed = false;

  constructor(o: BookOptions) {
    for (const b of o.bindings) {
      const value = o.secrets.get(b.secret);
      if (!value) {
        throw new CordonError('CORDON_SECRET', `secret "${b.secret}" (credentials.bindings[${b.index}]) is not in the vault`, {
          hint: `add it with: cordon secret add ${b.secret}`,
          detail: { secretName: b.secret, binding: b.index },
        });
      }
      const expiresAt = b.ttlMs === null ? null : o.issuedAt + b.ttlMs;
      if (b.kind === 'aws') {
        const real = parseAwsSecret(b.secret, value);
        const ph = awsPlaceholder(real.sessionToken !== null);
        const c: IssuedCredential = { binding: b, placeholder: null, real: null, awsPlaceholder: ph, awsReal: real, expiresAt, revoked: false };
        this.credentials.push(c);
        this.#add('placeholder', c, null, 'access key id', Buffer.from(ph.accessKeyId, 'latin1'), null);
        this.#add('placeholder', c, null, 'secret access key', Buffer.from(ph.secretAccessKey, 'latin1'), null);
        this.#add('real', c, null, 'access key id', real.accessKeyId, Buffer.from(ph.accessKeyId, 'latin1'));
        this.#add('real', c, null, 'secret access key', real.secretAccessKey, Buffer.from(ph.secretAccessKey, 'latin1'));
        if (real.sessionToken) this.#add('real', c, null, 'session token', real.sessionToken, Buffer.from(SESSION_TOKEN_STAND_IN, 'latin1'));
      } else {
        const real = realToken(b.secret, value);
        const ph = tokenPlaceholder(b.placeholderPrefix, real);
        const c: IssuedCredential = { binding: b, placeholder: ph, real, awsPlaceholder: null, awsReal: null, expiresAt, revoked: false };
        this.credentials.push(c);
        this.#add('placeholder', c, null, 'token', Buffer.from(ph, 'latin1'), null);
        this.#add('real', c, null, 'token', real, Buffer.from(ph, 'latin1'));
      }
    }
    o.canaries.forEach((canary, index) => {
      const ic: IssuedCanary = { index, canary, values: canaryValues(canary.format) };
      this.canaries.push(ic);
      for (const v of ic.values.values) this.#add('canary', null, ic, 'canary', Buffer.from(v, 'latin1'), null);
    });
  }

  #add(kind: Needle['kind'], credential: IssuedCredential | null, canary: IssuedCanary | null, part: string, value: Buffer, standIn: Buffer | null): void {
    const needle: Needle = { kind, credential, canary, part, standIn };
    this.#needles.push({ needle, value });
    for (const s of spellings(value)) this.#patterns.push({ bytes: s.bytes, tag: { needle, form: s.form } });
  }

  get closed(): boolean {
    return this.#closed;
  }

  state(c: IssuedCredential, now: number): CredentialState {
    if (c.revoked) return 'revoked';
    if (c.expiresAt !== null && now >= c.expiresAt) return 'expired';
    return 'live';
  }

  /** Credentials whose binding covers host:port (the host is credentialed). */
  covering(host: string, port: number): IssuedCredential[] {
    return this.credentials.filter((c) => bindingCovers(c.binding, host, port));
  }

  /** Whether anything is worth looking for (wants()). */
  watching(now: number): boolean {
    return this.canaries.length > 0 || this.credentials.some((c) => this.state(c, now) === 'live');
  }

  /**
   * The patterns a request to host:port is scanned for, with what a find
   * means. A live placeholder going to a host its binding covers is expected
   * (not scanned); a revoked or expired one there is 'dead'; elsewhere it is a
   * 'leak'. Canaries and real values are never expected from the sandbox.
   */
  requestPatterns(host: string, port: number, now: number): Array<Pattern<Classified>> {
    const out: Array<Pattern<Classified>> = [];
    for (const p of this.#patterns) {
      const n = p.tag.needle;
      let verdict: Verdict;
      if (n.kind === 'canary') verdict = 'canary';
      else if (n.kind === 'real') verdict = 'real';
      else if (!bindingCovers(n.credential!.binding, host, port)) verdict = 'leak';
      else if (this.state(n.credential!, now) === 'live') continue;
      else verdict = 'dead';
      out.push({ bytes: p.bytes, tag: { ...p.tag, verdict } });
    }
    return out;
  }

  /** Real values (every spelling) and what replaces each in responses: the placeholder, spelled the same way. */
  scrubPatterns(): Array<Pattern<Found & { replacement: Buffer }>> {
    const out: Array<Pattern<Found & { replacement: Buffer }>> = [];
    for (const p of this.#patterns) {
      const n = p.tag.needle;
      if (n.kind !== 'real' || !n.standIn) continue;
      const replacement = p.tag.form.encode(n.standIn) ?? n.standIn;
      out.push({ bytes: p.bytes, tag: { ...p.tag, replacement } });
    }
    return out;
  }

  /** Every value the redactor hides: placeholders, canaries and real values, all spellings (longest first). */
  redactionStrings(): string[] {
    const all = this.#patterns.map((p) => p.bytes.toString('latin1'));
    for (const { value } of this.#needles) all.push(value.toString('utf8'));
    return [...new Set(all)].filter((s) => s.length >= MIN_SCANNED_LENGTH).sort((a, b) => b.length - a.length);
  }

  /** Revoke every credential of these secrets (all when omitted); the names newly revoked. */
  revoke(secrets?: readonly string[]): string[] {
    const names = new Set<string>();
    for (const c of this.credentials) {
      if (secrets && !secrets.includes(c.binding.secret)) continue;
      if (!c.revoked) names.add(c.binding.secret);
      c.revoked = true;
    }
    return [...names];
  }

  /** Wipe every real value and everything derived from it; revoke all. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.credentials) c.revoked = true;
    const realNeedles = new Set(this.#needles.filter((x) => x.needle.kind === 'real').map((x) => x.needle));
    for (const p of this.#patterns) if (realNeedles.has(p.tag.needle)) p.bytes.fill(0);
    this.#patterns = this.#patterns.filter((p) => !realNeedles.has(p.tag.needle));
    for (const x of this.#needles) if (x.needle.kind === 'real') x.value.fill(0);
    this.#needles = this.#needles.filter((x) => x.needle.kind !== 'real');
    for (const c of this.credentials) {
      c.real?.fill(0);
      if (c.awsReal) {
        c.awsReal.accessKeyId.fill(0);
        c.awsReal.secretAccessKey.fill(0);
        c.awsReal.sessionToken?.fill(0);
      }
    }
  }
}
