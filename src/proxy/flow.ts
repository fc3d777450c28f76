// One captured connection and what the proxy shares among its flows. A Flow
// owns every socket opened on its behalf (so a reload or close can tear all
// of them down), and ends in exactly one `net.flow` audit record.

import type net from 'node:net';
import type tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { PolicyView } from './policy-view.ts';
import type { SyntheticAddresses } from './synthetic.ts';
import { hardClose } from './splice.ts';
import type { FlowMode, FlowProtocol, Inspector, ProxyStats, ProxyTimeouts } from './types.ts';
import type { EgressBudget } from './budget.ts';

/** What every flow of one proxy instance (one session) shares. */
export interface ProxyContext {
  readonly sessionId: string;
  /** The current policy generation. A flow keeps the one it started under. */
  view(): PolicyView;
  readonly synthetic: SyntheticAddresses;
  readonly inspectors: readonly Inspector[];
  readonly resolve: (name: string) => Promise<string[]>;
  readonly timeouts: ProxyTimeouts;
  readonly upstreamContext: tls.SecureContext;
  /** The TLS context presenting the session CA's leaf for a host. */
  leafContext(host: string): Promise<tls.SecureContext>;
  /** Never throws. */
  audit(type: string, data: Record<string, unknown>): void;
  readonly stats: ProxyStats;
  /** Egress usage of the session, against the current view's budget. */
  readonly budget: EgressBudget;
}

/** The connection-level outcome recorded for a flow. */
export type FlowDecision = 'allow' | 'deny' | 'ask' | 'per-request' | 'refused' | 'none';

/** Where a refusal or failure happened. */
export type FlowStage = 'header' | 'identity' | 'policy' | 'dial' | 'protocol' | 'relay' | 'reload' | 'close' | 'internal';

export interface FlowRecord {
  mode: FlowMode;
  /** The captured destination, as the forwarder reported it. */
  original: string;
  clientPort: number;
  host: string | null;
  port: number | null;
  sni: string | null;
  dialed: string | null;
  protocol: FlowProtocol;
  decision: FlowDecision;
  rule: number | null;
  reason: string;
  stage: FlowStage | null;
  requests: number;
  requestsDenied: number;
}

export class Flow {
  readonly id: string;
  readonly ctx: ProxyContext;
  readonly view: PolicyView;
  readonly client: net.Socket;
  readonly started = performance.now();
  readonly record: FlowRecord;
  /** The stream the agent's bytes are read from and written to (the TLS layer once terminated). */
  clientTop: Duplex;
  #sockets = new Set<Duplex>();
  #aborted: string | null = null;
  #finished = false;
  #extraUp = 0;
  #extraDown = 0;

  constructor(id: string, ctx: ProxyContext, client: net.Socket, mode: FlowMode, original: string, clientPort: number) {
    this.id = id;
    this.ctx = ctx;
    this.view = ctx.view();
    this.client = client;
    this.clientTop = client;
    this.record = {
      mode,
      original,
      clientPort,
      host: null,
      port: null,
      sni: null,
      dialed: null,
      protocol: 'unknown',
      decision: 'none',
      rule: null,
      reason: '',
      stage: null,
      requests: 0,
      requestsDenied: 0,
    };
    this.track(client);
  }

  /** Why the flow was torn down from outside (reload, close), or null. */
  get aborted(): string | null {
    return this.#aborted;
  }

  /** Own a socket: it gets an error listener at once and is destroyed with the flow. */
  track<T extends Duplex>(s: T): T {
    if (!this.#sockets.has(s)) {
      this.#sockets.add(s);
      s.on('error', () => {});
      s.once('close', () => this.#sockets.delete(s));
    }
    if (this.#aborted) s.destroy();
    return s;
  }

  /** Tear everything down now (reload, proxy close). */
  abort(reason: string, stage: FlowStage): void {
    if (this.#aborted || this.#finished) return;
    this.#aborted = reason;
    this.record.stage = stage;
    this.record.reason = this.record.reason ? `${this.record.reason}; ${reason}` : reason;
    for (const s of [...this.#sockets]) hardClose(s);
  }

  /** Record a refusal or outcome (the last call wins for decision/reason). */
  set(fields: Partial<FlowRecord>): void {
    if (this.#aborted) {
      // An outside teardown (reload, close) is the flow's story from then on.
      const { stage: _s, reason: _r, ...rest } = fields;
      Object.assign(this.record, rest);
      return;
    }
    Object.assign(this.record, fields);
  }

  refuse(stage: FlowStage, reason: string): void {
    if (this.#aborted) return;
    this.set({ decision: this.record.decision === 'none' ? 'refused' : this.record.decision, stage, reason });
  }

  /** Adjust the byte counts read from the client socket (the forwarder's header line is subtracted). */
  addBytes(up: number, down: number): void {
    this.#extraUp += up;
    this.#extraDown += down;
  }

  /**
   * End the agent's side gracefully (everything written is flushed first, up
   * to `graceMs`), close what is left, and write the one net.flow record.
   */
  async finish(graceMs = 5_000): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    for (const s of [...this.#sockets]) if (s !== this.client && s !== this.clientTop) s.destroy();
    const top = this.clientTop;
    if (!this.#aborted && !top.destroyed && !top.writableFinished) {
      if (!top.writableEnded) top.end();
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          top.off('finish', done);
          top.off('close', done);
          resolve();
        };
        const timer = setTimeout(done, graceMs);
        top.once('finish', done);
        top.once('close', done);
      });
    }
    for (const s of [...this.#sockets]) if (s !== this.client) s.destroy();
    const bytesUp = this.client.bytesRead + this.#extraUp;
    const bytesDown = this.client.bytesWritten + this.#extraDown;
    if (!this.client.destroyed) this.client.destroy();
    const r = this.record;
    const st = this.ctx.stats;
    st.flowsActive--;
    st.bytesUp += bytesUp;
    st.bytesDown += bytesDown;
    if (r.decision === 'allow' || r.decision === 'per-request') st.flowsAllowed++;
    else st.flowsDenied++;
    this.ctx.audit('net.flow', {
      session: this.ctx.sessionId,
      flow: this.id,
      generation: this.view.generation,
      mode: r.mode,
      original: r.original,
      clientPort: r.clientPort,
      host: r.host,
      port: r.port,
      sni: r.sni,
      dialed: r.dialed,
      protocol: r.protocol,
      decision: r.decision,
      rule: r.rule,
      reason: r.reason,
      stage: r.stage,
      requests: r.requests,
      requestsDenied: r.requestsDenied,
      bytesUp,
      bytesDown,
      durationMs: Math.round(performance.now() - this.started),
    });
  }
}
