// The policy file schema. Every field carries a description and its stance:
//   closed - absent means nothing is granted; entries widen what the agent can do
//   open   - absent means the default below applies; entries narrow or tune it
// docs/policy-reference.md is generated from this file (npm run docs).
// Fields whose name starts with `dangerously` weaken a built-in invariant.

import { z } from 'zod';
import { parseDuration, parseSize } from './units.ts';

export const POLICY_VERSION = 1;

type Stance = 'closed' | 'open';
const doc = <T extends z.ZodType>(schema: T, stance: Stance, description: string, dflt?: string): T =>
  schema.meta({ description, stance, ...(dflt === undefined ? {} : { defaultText: dflt }) }) as T;

const size = z
  .union([z.number().int().nonnegative(), z.string()])
  .refine((v) => parseSize(v) !== undefined, { message: 'expected a size such as 4096, "512MiB" or "2GB"' });

const durationOrUnlimited = z
  .union([z.number().nonnegative(), z.string()])
  .refine((v) => v === 'unlimited' || parseDuration(v) !== undefined, {
    message: 'expected a duration such as "90s", "30m", "1h30m" or "unlimited"',
  });

const sizeOrUnlimited = z
  .union([z.number().int().nonnegative(), z.string()])
  .refine((v) => v === 'unlimited' || parseSize(v) !== undefined, {
    message: 'expected a size such as "512MiB" or "unlimited"',
  });

const countOrUnlimited = z.union([z.number().int().positive(), z.literal('unlimited')]);

const hostPath = z
  .string()
  .min(1)
  .refine((p) => p.startsWith('/') || p === '~' || p.startsWith('~/'), {
    message: 'expected an absolute path or one starting with ~/',
  })
  .refine((p) => !p.split('/').includes('..'), { message: '".." is not allowed in policy paths' })
  .refine((p) => !/[\0\n]/.test(p), { message: 'control characters are not allowed in paths' });

const workspacePath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), {
    message: 'expected a path relative to the workspace, without ".."',
  });

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*\*?$/, 'expected an environment variable name (NAME or PREFIX_*)');

export const FilesystemSchema = z
  .object({
    read: doc(z.array(hostPath), 'closed', 'Host paths mounted read-only at the same path inside the sandbox. Missing paths are skipped.', '[]').optional(),
    write: doc(z.array(hostPath), 'closed', 'Host paths mounted read-write at the same path inside the sandbox. Missing paths are skipped.', '[]').optional(),
    hide: doc(
      z.array(hostPath),
      'open',
      'Host paths masked (empty) inside the sandbox even when a mounted directory contains them.',
      '[]',
    ).optional(),
    protect: doc(
      z.array(workspacePath),
      'open',
      'Workspace-relative paths kept read-only, in addition to the built-in protected list (applied in nested repositories too).',
      '[]',
    ).optional(),
    dangerouslyAllowSecretPaths: doc(
      z.array(hostPath),
      'closed',
      'DANGEROUS. Paths from the never-mount list (e.g. ~/.ssh) that read/write may mount anyway. Each must be named exactly.',
      '[]',
    ).optional(),
    dangerouslyUnprotect: doc(
      z.array(workspacePath),
      'closed',
      'DANGEROUS. Workspace-relative paths from the built-in protected list that the agent may write (e.g. .vscode).',
      '[]',
    ).optional(),
  })
  .strict();

export const EnvSchema = z
  .object({
    pass: doc(
      z.array(envName),
      'closed',
      'Host environment variables passed into the sandbox (NAME or PREFIX_*). Names that look like secrets are refused; bind credentials instead.',
      '[]',
    ).optional(),
    set: doc(
      z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string().refine((v) => !v.includes('\0'))),
      'closed',
      'Variables set to literal values inside the sandbox. Do not put secrets here: the value is visible to the agent.',
      '{}',
    ).optional(),
    dangerouslyPassSecrets: doc(
      z.array(envName),
      'closed',
      'DANGEROUS. Secret-looking host variables passed through anyway. The agent can read and exfiltrate them.',
      '[]',
    ).optional(),
  })
  .strict();

export const LimitsSchema = z
  .object({
    processes: doc(countOrUnlimited, 'open', 'Maximum number of processes and threads in the sandbox.', '1024').optional(),
    memory: doc(sizeOrUnlimited, 'open', 'Maximum memory of the sandbox (cgroup) or address space per process (rlimit).', '8GiB').optional(),
    cpuTime: doc(durationOrUnlimited, 'open', 'Maximum CPU time (per process under rlimits).', 'unlimited').optional(),
    fileSize: doc(sizeOrUnlimited, 'open', 'Largest file a process in the sandbox may write.', '16GiB').optional(),
    openFiles: doc(countOrUnlimited, 'open', 'Maximum open file descriptors per process.', '4096').optional(),
    timeout: doc(durationOrUnlimited, 'open', 'Wall-clock limit for the whole session; the sandbox is killed when it expires.', 'unlimited').optional(),
  })
  .strict();

export const HOST_PATTERN_HELP =
  'a host name ("api.example.com"), a label-bounded wildcard ("*.example.com"), or an IP literal';

export const NetworkRuleSchema = z
  .object({
    allow: doc(z.string().min(1), 'closed', `Allow flows to this host: ${HOST_PATTERN_HELP}.`).optional(),
    deny: doc(z.string().min(1), 'open', `Deny flows to this host: ${HOST_PATTERN_HELP}.`).optional(),
    ask: doc(z.string().min(1), 'closed', 'Ask a human (approvals; not yet available: decides as deny).').optional(),
    ports: doc(
      z.union([z.array(z.number().int().min(1).max(65535)).min(1), z.literal('all')]),
      'open',
      'Destination ports the rule covers, or "all".',
      'allow: [80, 443]; deny and ask: all',
    ).optional(),
    methods: doc(z.array(z.string().regex(/^[A-Z]+$/, 'expected an upper-case HTTP method')).min(1), 'open', 'HTTP methods the rule covers (needs TLS termination for HTTPS).', 'all').optional(),
    paths: doc(
      z.array(z.string().startsWith('/', 'paths start with "/"')).min(1),
      'open',
      'URL path prefixes ("/v1/") or globs ("/repos/*/pulls") the rule covers (needs TLS termination for HTTPS).',
      'all',
    ).optional(),
    maxBodyBytes: doc(size, 'open', 'Largest request body an allow rule admits.', 'unlimited').optional(),
    protocol: doc(z.enum(['http', 'tcp']), 'open', '"http" (HTTP and HTTPS) or "tcp" (any other TCP; needs an exact host and ports).', 'http').optional(),
  })
  .strict()
  .refine((r) => [r.allow, r.deny, r.ask].filter((v) => v !== undefined).length === 1, {
    message: 'a rule has exactly one of allow, deny or ask',
  });

export const BudgetSchema = z
  .object({
    bytesUp: doc(
      sizeOrUnlimited,
      'open',
      'Most bytes the session may send out through the proxy, all destinations together (request heads and bodies, tunnel, TCP and WebSocket bytes).',
      'unlimited',
    ).optional(),
    requests: doc(countOrUnlimited, 'open', 'Most HTTP requests (plus flows not parsed as HTTP) the session may make.', 'unlimited').optional(),
    destinations: doc(countOrUnlimited, 'open', 'Most distinct host:port destinations the session may reach.', 'unlimited').optional(),
  })
  .strict();

export const NetworkSchema = z
  .object({
    mode: doc(
      z.enum(['none', 'proxy']),
      'closed',
      '"none": loopback only, nothing leaves the sandbox. "proxy": every flow goes through cordon\'s proxy and the rules.',
      'none',
    ).optional(),
    rules: doc(
      z.array(NetworkRuleSchema),
      'closed',
      'Egress rules; see docs/policy.md for precedence. A host of "${npm.registry}" stands for the registry your npm configuration names (npm config get registry).',
      '[]',
    ).optional(),
    hosts: doc(
      z.record(z.string().min(1), z.array(z.string().min(1)).min(1)),
      'closed',
      'Static addresses the proxy uses for these names before asking the host resolver (like /etc/hosts, for the proxy only). Dialling a private address still needs a rule naming it.',
      '{}',
    ).optional(),
    upstreamCa: doc(hostPath, 'closed', 'A PEM file of extra CA certificates the proxy trusts for upstream servers (a corporate or test CA).', 'none').optional(),
    budget: BudgetSchema.optional(),
  })
  .strict();

const secretName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'expected a secret name (lower-case letters, digits, . _ -)');
const envVarName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name');
const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected an HTTP header name');

export const BindingSchema = z
  .object({
    secret: doc(secretName, 'closed', 'Name of the secret in the vault (cordon secret add NAME).'),
    kind: doc(
      z.enum(['token', 'aws']),
      'open',
      '"token": one value injected into a header (or query). "aws": an access key pair; the sandbox signs with placeholder keys, the proxy checks that signature and signs again with the real keys (SigV4).',
      'token',
    ).optional(),
    env: doc(envVarName, 'closed', 'Variable holding the placeholder inside the sandbox (for kind aws: the access key id variable prefix is fixed: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).').optional(),
    file: doc(hostPath, 'closed', 'A file inside the sandbox (under ~) holding the placeholder, e.g. ~/.aws/credentials. The host file at that path is never read or mounted.').optional(),
    placeholderPrefix: doc(
      z.string().regex(/^[A-Za-z0-9_-]{0,24}$/),
      'open',
      'Prefix kept in the placeholder so client libraries accept it (e.g. "sk-ant-api03-").',
      '"cordon-"',
    ).optional(),
    hosts: doc(z.array(z.string().min(1)).min(1), 'closed', 'Exact hosts the real value may be sent to (no wildcards).'),
    ports: doc(z.array(z.number().int().min(1).max(65535)).min(1), 'open', 'Ports.', '[443]').optional(),
    methods: doc(z.array(z.string().regex(/^[A-Z]+$/)).min(1), 'open', 'HTTP methods.', 'all').optional(),
    paths: doc(z.array(z.string().startsWith('/')).min(1), 'open', 'Path prefixes or globs, as in network rules.', 'all').optional(),
    header: doc(headerName, 'open', 'Header the real value is injected in (kind token).', '"authorization"').optional(),
    scheme: doc(z.string().regex(/^[A-Za-z0-9_-]{1,32}$/), 'open', 'Scheme before the value in the header, e.g. "Bearer". Empty for none.', '"Bearer" for authorization, none otherwise').optional(),
    query: doc(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/), 'closed', 'Opt-in: also replace the placeholder in this query parameter.').optional(),
    body: doc(z.boolean(), 'closed', 'Opt-in: also replace the placeholder in request bodies.', 'false').optional(),
    ttl: doc(durationOrUnlimited, 'open', 'How long the placeholder works after the session starts.', '12h').optional(),
    dangerouslyAllowForeignCredentials: doc(
      z.boolean(),
      'closed',
      'DANGEROUS. Let requests to these hosts carry credentials other than this placeholder (the /v1/files upload case).',
      'false',
    ).optional(),
    stripHeaders: doc(z.array(headerName), 'open', 'Headers removed from requests to these hosts (e.g. ones that turn on server-side fetching).', '[]').optional(),
  })
  .strict();

export const CanarySchema = z
  .object({
    file: doc(hostPath, 'closed', 'A decoy file planted inside the sandbox (under ~), e.g. ~/.aws/credentials.').optional(),
    env: doc(envVarName, 'closed', 'A decoy variable set inside the sandbox.').optional(),
    format: doc(z.enum(['aws-credentials', 'token', 'netrc']), 'open', 'What the decoy looks like.', 'token').optional(),
  })
  .strict()
  .refine((c) => (c.file === undefined) !== (c.env === undefined), { message: 'a canary has exactly one of file or env' });

export const CredentialsSchema = z
  .object({
    bindings: doc(z.array(BindingSchema), 'closed', 'Secrets the proxy may inject; the sandbox only ever holds placeholders.', '[]').optional(),
    canaries: doc(z.array(CanarySchema), 'open', 'Decoy credentials planted in the sandbox; any egress carrying one is blocked and raised as an alert.', '[]').optional(),
  })
  .strict();

export const SandboxSchema = z
  .object({
    backend: doc(z.enum(['bwrap', 'gvisor', 'vm', 'k8s']), 'open', 'Which sandbox backend runs the agent.', 'bwrap').optional(),
    hostname: doc(z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/), 'open', 'Host name inside the sandbox.', 'cordon').optional(),
  })
  .strict();

export const PolicyFileSchema = z
  .object({
    version: doc(z.literal(POLICY_VERSION), 'open', 'Policy format version. Must be 1.'),
    extends: doc(
      z.union([z.string(), z.array(z.string())]),
      'open',
      'Built-in profiles this file builds on (generic, claude-code, codex, gemini-cli). They apply just before this file.',
      '[]',
    ).optional(),
    sandbox: SandboxSchema.optional(),
    filesystem: FilesystemSchema.optional(),
    env: EnvSchema.optional(),
    limits: LimitsSchema.optional(),
    network: NetworkSchema.optional(),
    credentials: CredentialsSchema.optional(),
  })
  .strict();

export type BindingInput = z.infer<typeof BindingSchema>;
export type CanaryInput = z.infer<typeof CanarySchema>;
export type PolicyFile = z.infer<typeof PolicyFileSchema>;
export type NetworkRuleInput = z.infer<typeof NetworkRuleSchema>;
