// The proxy's public types: what a session hands in (policy, audit callback,
// CA, resolver, inspectors) and what it gets back. No logic here.

import type { Transform } from 'node:stream';
import type { NetworkRule } from '../policy/types.ts';
import type { SessionCa } from './ca.ts';
import type { Header } from './http-head.ts';
import type { BudgetLimits } from './budget.ts';
import type { ByteFilter } from './ws-frames.ts';

export type { Header } from './http-head.ts';

/** The network part of a session's policy, as the proxy consumes it. */
export interface ProxyPolicy {
  rules: NetworkRule[];
  /**
   * Static name -> addresses, consulted before the resolver (like /etc/hosts
   * on the proxy host). Names are matched lower-case without a trailing dot.
   * The addresses are still checked at dial time like any resolver answer.
   */
  hosts: Record<string, string[]>;
  /** Session egress budgets (budget.ts); absent: none. */
  budget?: BudgetLimits;
}

/** Where a flow or request is going, after identity checks. */
export interface FlowTarget {
  /** Normalised host name or canonical IP literal. */
  host: string;
  port: number;
}

/** What an inspector sees of a request. `headers` may be edited in place. */
export interface InspectedRequest {
  readonly flowId: string;
  readonly identity: FlowTarget;
  /** "https" when the request goes upstream over TLS, else "http". */
  readonly scheme: 'http' | 'https';
  readonly method: string;
  /**
   * The request target in origin form, as sent (query included). An inspector
   * may change the query; the part before "?" must stay as it was (the policy
   * decided on it), else the request is refused.
   */
  path: string;
  headers: Header[];
  /** The whole request body, when an inspector asked for it (`bufferBody`); absent otherwise. */
  body?: Buffer;
}

/** What an inspector sees of a response. `reason` and `headers` may be edited in place. */
export interface InspectedResponse {
  readonly request: InspectedRequest;
  readonly status: number;
  /** The status line's reason phrase, as received (a server can put anything there). */
  reason: string;
  headers: Header[];
}

export type InspectorVerdict = void | { deny: string };

/**
 * A content hook (the credential broker is the first user). Inspectors run in
 * order on every HTTP request the proxy relays (plain HTTP always; TLS only
 * when the flow is terminated, which `wants` can force). A throw or a deny is
 * a deny: the agent sees the reason, the upstream sees nothing of the request.
 * Header edits are re-validated (names must be tokens, values free of CR, LF
 * and NUL, framing fields and Host untouched), else the request is refused.
 */
export interface Inspector {
  /** A short name for audit records. */
  readonly name: string;
  /** True: terminate TLS for this destination even when the rules would splice it. */
  wants(identity: FlowTarget): boolean;
  /**
   * Called before onRequest: the largest body (bytes) this inspector needs to
   * see whole in onRequest (as `req.body`), or null. The relay then reads the
   * body before anything goes upstream, and refuses a larger one.
   */
  bufferBody?(req: InspectedRequest): number | null;
  onRequest?(req: InspectedRequest): InspectorVerdict | Promise<InspectorVerdict>;
  /**
   * A transform over the decoded request body; the body then goes upstream
   * chunked, or under its Content-Length when every transform has
   * `preservesLength === true` (the relay checks the promise and cuts the
   * connection if it is broken). A transform that fails with an Error carrying
   * a string `deny` refuses the request with that reason (if no response has
   * started); the upstream never gets the end of the body.
   */
  requestBody?(req: InspectedRequest): Transform | null;
  /**
   * Every response head the agent will see: interim (1xx) heads, the 101 of
   * an upgrade, and the final head. A deny on an interim head or a 101 fails
   * the request like a deny on the final one.
   */
  onResponse?(res: InspectedResponse): InspectorVerdict | Promise<InspectorVerdict>;
  /** A transform over the decoded response body; the body then goes to the agent chunked (or close-delimited). */
  responseBody?(res: InspectedResponse): Transform | null;
  /**
   * After a 101 (a WebSocket): filters over the bytes each way (ws-frames.ts
   * WsFrameRewriter), or null to leave the connection spliced as it is.
   */
  upgraded?(res: InspectedResponse): UpgradeFilters | null;
}

export interface UpgradeFilters {
  /** Server to agent. */
  fromServer?: ByteFilter;
  /** Agent to server. */
  fromClient?: ByteFilter;
}

export interface ProxyTimeouts {
  /** Reading the forwarder's header line. */
  headerMs: number;
  /**
   * How long a captured flow may stay silent before it is judged as raw TCP
   * (server-speaks-first protocols: SSH banners, SMTP, databases).
   */
  firstByteMs: number;
  /** Whole ClientHello, request heads, TLS handshakes on either side. */
  handshakeMs: number;
  resolveMs: number;
  connectMs: number;
  /** A keep-alive connection with no request, or an upstream silent before its response head. */
  idleMs: number;
}

export const DEFAULT_TIMEOUTS: ProxyTimeouts = {
  headerMs: 5_000,
  firstByteMs: 1_000,
  handshakeMs: 10_000,
  resolveMs: 5_000,
  connectMs: 10_000,
  idleMs: 300_000,
};

export interface ProxyOptions {
  sessionId: string;
  policy: ProxyPolicy;
  /** One call per audit record; bound to the session's AuditStore by the caller. */
  audit: (type: string, data: Record<string, unknown>) => void;
  ca: SessionCa;
  /** Name -> addresses. Default: the host resolver (node:dns lookup, all addresses). */
  resolve?: (name: string) => Promise<string[]>;
  inspectors?: Inspector[];
  /** Extra CA certificate(s), PEM, trusted for upstream servers besides the host's store (tests). */
  upstreamCa?: string | Buffer;
  timeouts?: Partial<ProxyTimeouts>;
}

export interface ProxyStats {
  /** Increments on every reload. */
  generation: number;
  flowsActive: number;
  flowsTotal: number;
  flowsAllowed: number;
  flowsDenied: number;
  requests: number;
  requestsDenied: number;
  dnsQueries: number;
  bytesUp: number;
  bytesDown: number;
  /** Audit callbacks that threw (the record is lost; the flow is unaffected). */
  auditErrors: number;
  /** Flows that ended on an internal error (each closed on its own). */
  flowErrors: number;
}

export interface SessionProxy {
  /** Listen on a Unix socket for the forwarder's connections. */
  listen(socketPath: string): Promise<void>;
  /** Swap the policy; every open flow is closed (see index.ts). */
  reload(policy: ProxyPolicy): void;
  close(): Promise<void>;
  stats(): ProxyStats;
}

export type FlowMode = 'transparent' | 'explicit';
export type FlowProtocol = 'tls-splice' | 'tls-terminate' | 'http' | 'tcp' | 'websocket' | 'dns-tcp' | 'unknown';
