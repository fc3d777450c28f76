// The effective policy: every layer merged, every default applied, every unit
// converted. Pure data: this is what the rest of cordon consumes, and what the
// policy cache stores. `origins` says where each value came from.

export type LayerRole = 'default' | 'profile' | 'system' | 'user' | 'cli' | 'workspace';

export interface Origin {
  role: LayerRole;
  /** File path for file layers, profile name for profiles. */
  source: string;
  line?: number;
  col?: number;
}

export type Decision = 'allow' | 'deny' | 'ask';

export interface NetworkRule {
  decision: Decision;
  /** Normalised host pattern: lower-case, no trailing dot; "*." prefix for wildcards. */
  host: string;
  /** Empty: every port. */
  ports: number[];
  methods: string[] | null;
  paths: string[] | null;
  maxBodyBytes: number | null;
  protocol: 'http' | 'tcp';
  /** Index in `network.rules`, stable for explain and audit. */
  index: number;
}

/** A credential binding (see schema.ts BindingSchema for the meaning of each field). */
export interface Binding {
  secret: string;
  kind: 'token' | 'aws';
  env: string | null;
  /** Path inside the sandbox ("~" expanded at session start). */
  file: string | null;
  placeholderPrefix: string;
  /** Exact, normalised host names or canonical IPs. */
  hosts: string[];
  ports: number[];
  methods: string[] | null;
  paths: string[] | null;
  header: string;
  scheme: string;
  query: string | null;
  body: boolean;
  ttlMs: number | null;
  allowForeign: boolean;
  stripHeaders: string[];
  index: number;
}

export interface Canary {
  file: string | null;
  env: string | null;
  format: 'aws-credentials' | 'token' | 'netrc';
}

export interface EffectivePolicy {
  version: 1;
  sandbox: { backend: 'bwrap' | 'gvisor' | 'vm' | 'k8s'; hostname: string };
  filesystem: {
    read: string[];
    write: string[];
    hide: string[];
    protect: string[];
    dangerouslyAllowSecretPaths: string[];
    dangerouslyUnprotect: string[];
  };
  env: { pass: string[]; set: Record<string, string>; dangerouslyPassSecrets: string[] };
  limits: {
    processes: number | null;
    memoryBytes: number | null;
    cpuTimeMs: number | null;
    fileSizeBytes: number | null;
    openFiles: number | null;
    timeoutMs: number | null;
  };
  network: {
    mode: 'none' | 'proxy';
    rules: NetworkRule[];
    /** Static name -> addresses for the proxy's resolver. */
    hosts: Record<string, string[]>;
    /** Extra CA bundle for upstream TLS (host path, "~" expanded at use). */
    upstreamCa: string | null;
    /** Session egress budgets (null: unlimited). */
    budget: { bytesUp: number | null; requests: number | null; destinations: number | null };
  };
  credentials: { bindings: Binding[]; canaries: Canary[] };
}

export interface LayerInfo {
  role: LayerRole;
  source: string;
  /** sha256 of the file content (files only). */
  sha256?: string;
  /** Workspace layers: whether the content was trusted and applied. */
  applied: boolean;
  note?: string;
}

export interface LoadedPolicy {
  policy: EffectivePolicy;
  /** Dotted path ("limits.memoryBytes", "filesystem.read[1]") -> origin. */
  origins: Record<string, Origin>;
  layers: LayerInfo[];
  /** sha256 over the canonical JSON of `policy`. */
  hash: string;
  /** Things the user should know (untrusted workspace policy ignored...). */
  warnings: string[];
}
