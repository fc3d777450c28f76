// The upstream connection of one flow: at most one at a time, reused for the
// next request when it is still open and goes to the same place, replaced
// otherwise. A connection dialled early (for a CONNECT answer) seeds it.

import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { dial, upstreamTls } from './dial.ts';
import type { Flow } from './flow.ts';
import { StreamReader } from './stream-reader.ts';

export interface Upstream {
  key: string;
  socket: Duplex;
  reader: StreamReader;
  address: string;
}

export interface Seed {
  host: string;
  port: number;
  socket: net.Socket;
  address: string;
}

/** A checked TCP connection for the flow (no reader attached: the socket stays paused). */
export async function dialUpstream(flow: Flow, host: string, port: number): Promise<{ socket: net.Socket; address: string }> {
  const ctx = flow.ctx;
  const d = await dial({
    host,
    port,
    view: flow.view,
    resolve: ctx.resolve,
    resolveMs: ctx.timeouts.resolveMs,
    connectMs: ctx.timeouts.connectMs,
    track: (s) => flow.track(s),
  });
  d.socket.pause();
  flow.set({ dialed: d.address });
  return d;
}

export class UpstreamSlot {
  readonly #flow: Flow;
  #current: Upstream | null = null;
  #seed: Seed | null;

  constructor(flow: Flow, seed: Seed | null = null) {
    this.#flow = flow;
    this.#seed = seed;
  }

  /** An open connection to host:port (TLS when `secure`), dialled and checked if needed. */
  async get(host: string, port: number, secure: boolean): Promise<Upstream> {
    const key = `${secure ? 'tls' : 'tcp'} ${host} ${port}`;
    const cur = this.#current;
    if (cur && cur.key === key && !cur.socket.destroyed && !cur.reader.done && cur.socket.writable) return cur;
    this.discard();
    const flow = this.#flow;
    const ctx = flow.ctx;
    let raw: net.Socket;
    let address: string;
    const seed = this.#seed;
    this.#seed = null;
    if (seed && seed.host === host && seed.port === port && !seed.socket.destroyed) {
      raw = seed.socket;
      address = seed.address;
    } else {
      seed?.socket.destroy();
      const d = await dialUpstream(flow, host, port);
      raw = d.socket;
      address = d.address;
    }
    flow.set({ dialed: address });
    const socket: Duplex = secure ? flow.track(await upstreamTls(raw, host, ctx.upstreamContext, ctx.timeouts.handshakeMs)) : raw;
    this.#current = { key, socket, reader: new StreamReader(socket), address };
    return this.#current;
  }

  /** Close the current connection (not reusable, or going elsewhere). */
  discard(): void {
    this.#current?.socket.destroy();
    this.#current = null;
  }

  /** Hand the current connection over (WebSocket upgrade); the slot forgets it. */
  take(): Upstream | null {
    const c = this.#current;
    this.#current = null;
    return c;
  }

  close(): void {
    this.discard();
    this.#seed?.socket.destroy();
    this.#seed = null;
  }
}
