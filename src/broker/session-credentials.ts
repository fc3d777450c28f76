// issueCredentials: one session's placeholders, canaries, inspector and
// redactor (see types.ts SessionCredentials). Everything lives in the closure:
// two sessions in one process share nothing, so a placeholder of session A is
// just a foreign credential to session B.

import { CredentialBook } from './book.ts';
import { createInspector } from './inspector.ts';
import { PLACEHOLDER_MARKER } from './placeholders.ts';
import { plan } from './planted.ts';
import type { IssuedPlaceholder, IssueOptions, SessionCredentials } from './types.ts';
import { REDACTED_TEXT } from './types.ts';

/** Default bound on a body read whole to sign an AWS request that does not state its hash. */
export const MAX_SIGNED_BODY_BYTES = 16 * 1024 * 1024;

export function issueCredentials(opts: IssueOptions): SessionCredentials {
  const now = opts.now ?? Date.now;
  // The book copies what it keeps (trimmed tokens, parsed key pairs): the
  // caller may wipe its own buffers as soon as this returns.
  const book = new CredentialBook({ bindings: opts.bindings, canaries: opts.canaries, secrets: opts.secrets, issuedAt: now() });
  const planted = plan(book, opts.home);
  const inspector = createInspector({
    sessionId: opts.sessionId,
    book,
    audit: opts.audit,
    now,
    maxSignedBodyBytes: opts.maxSignedBodyBytes ?? MAX_SIGNED_BODY_BYTES,
  });
  let redactions: string[] | null = null;
  opts.audit('cred.issue', {
    session: opts.sessionId,
    bindings: book.credentials.map((c) => ({ secretName: c.binding.secret, binding: c.binding.index, kind: c.binding.kind, expiresAt: c.expiresAt })),
    canaries: book.canaries.length,
  });

  return {
    env: () => ({ ...planted.env }),
    files: () => planted.files.map((f) => ({ ...f })),
    inspector: () => inspector,
    issued(): IssuedPlaceholder[] {
      return book.credentials.map((c) => ({
        binding: c.binding,
        ...(c.placeholder !== null ? { placeholder: c.placeholder } : {}),
        ...(c.awsPlaceholder !== null ? { aws: { ...c.awsPlaceholder } } : {}),
        expiresAt: c.expiresAt,
        revoked: c.revoked,
      }));
    },
    revoke(secrets?: string[], _reason?: string): string[] {
      return book.revoke(secrets);
    },
    list() {
      return book.credentials.map((c) => ({
        secret: c.binding.secret,
        binding: c.binding.index,
        prefix:
          c.placeholder !== null
            ? c.placeholder.slice(0, c.binding.placeholderPrefix.length + PLACEHOLDER_MARKER.length + 4)
            : c.awsPlaceholder!.accessKeyId.slice(0, 14),
        expiresAt: c.expiresAt,
        revoked: c.revoked,
        state: book.state(c, now()),
      }));
    },
    redactor() {
      return (s: string) => {
        redactions ??= book.redactionStrings();
        let out = s;
        for (const r of redactions) if (out.includes(r)) out = out.split(r).join(REDACTED_TEXT);
        return out;
      };
    },
    close() {
      book.close();
      redactions = null;
    },
  };
}
