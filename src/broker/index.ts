// The credential broker's face. Secrets stay on the host: a session gets
// placeholders (env, files), and the proxy inspector swaps in the real value
// only on requests that match a binding. See types.ts for the contracts and
// inspector.ts for what happens to each request.

export { issueCredentials, MAX_SIGNED_BODY_BYTES } from './session-credentials.ts';
export { PLACEHOLDER_MARKER } from './placeholders.ts';
export { REDACTED_TEXT } from './types.ts';
export type { IssuedPlaceholder, IssueOptions, PlaceholderState, PlantedFile, SecretMeta, SessionCredentials, Vault, VaultBackend } from './types.ts';
