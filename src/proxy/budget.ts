// Egress budgets: how much one session may send out, all destinations
// together, whatever the rules allow. An allowed channel can carry data a
// byte at a time (the slow drip under every per-request limit); a budget puts
// a ceiling on the total and makes the moment it is reached loud.
//
//   bytesUp       bytes sent upstream: request heads and bodies as written,
//                 bytes into spliced tunnels and raw TCP, WebSocket frames
//   requests      HTTP requests, plus flows that are not parsed as HTTP
//   destinations  distinct host:port pairs
//
// Admission (a request, or a flow about to be spliced) is refused once any
// budget is spent; an explicit CONNECT is checked before its name is looked
// up. Bytes are charged as they go - request heads, each piece of a request
// body, tunnel and WebSocket bytes - and the piece that would overspend is
// not sent: the request or flow is cut there. Usage lives for the whole
// session, across policy reloads; the limits are the current policy's. The
// first time each budget (at each limit) is spent, one `net.budget` audit
// record says which, its limit and its use.

import type { ByteFilter } from './ws-frames.ts';

export interface BudgetLimits {
  bytesUp: number | null;
  requests: number | null;
  destinations: number | null;
}

export const NO_BUDGET: BudgetLimits = Object.freeze({ bytesUp: null, requests: null, destinations: null });

export class BudgetExceeded extends Error {}

export class EgressBudget {
  #bytesUp = 0;
  #requests = 0;
  readonly #destinations = new Set<string>();
  /** "budget:limit" pairs already audited (a reload that changes the limit can trip it again). */
  readonly #reported = new Set<string>();
  readonly #audit: (data: Record<string, unknown>) => void;

  /** `audit` receives the net.budget record's data (the caller adds the session). */
  constructor(audit: (data: Record<string, unknown>) => void) {
    this.#audit = audit;
  }

  get used(): { bytesUp: number; requests: number; destinations: number } {
    return { bytesUp: this.#bytesUp, requests: this.#requests, destinations: this.#destinations.size };
  }

  /** The first budget already spent, as a reason for the agent, or null. */
  spent(limits: BudgetLimits): string | null {
    if (limits.bytesUp !== null && this.#bytesUp >= limits.bytesUp) return this.#trip(limits, 'bytesUp');
    if (limits.requests !== null && this.#requests >= limits.requests) return this.#trip(limits, 'requests');
    return null;
  }

  /**
   * One request or flow to host:port: null when it fits (and is counted), else
   * the reason it does not. A new destination counts only when admitted.
   */
  admit(limits: BudgetLimits, host: string, port: number): string | null {
    const no = this.check(limits, host, port);
    if (no) return no;
    this.#destinations.add(`${host.toLowerCase()}:${port}`);
    this.#requests++;
    return null;
  }

  /** Whether a request or flow to host:port would be admitted, without counting it (before a dial that admit follows). */
  check(limits: BudgetLimits, host: string, port: number): string | null {
    const spent = this.spent(limits);
    if (spent) return spent;
    const dest = `${host.toLowerCase()}:${port}`;
    if (limits.destinations !== null && !this.#destinations.has(dest) && this.#destinations.size >= limits.destinations) {
      return this.#trip(limits, 'destinations');
    }
    return null;
  }

  /** Bytes sent upstream; the reason when this goes over the byte budget, else null. */
  charge(limits: BudgetLimits, n: number): string | null {
    this.#bytesUp += n;
    return limits.bytesUp !== null && this.#bytesUp > limits.bytesUp ? this.#trip(limits, 'bytesUp') : null;
  }

  /** A filter for the agent-to-server side of a splice: charges every byte; throws once over the byte budget. */
  meter(limits: BudgetLimits): ByteFilter | null {
    if (limits.bytesUp === null) return null;
    return {
      push: (chunk) => {
        const over = this.charge(limits, chunk.length);
        if (over) throw new BudgetExceeded(over);
        return chunk;
      },
      end: () => Buffer.alloc(0),
    };
  }

  #trip(limits: BudgetLimits, which: keyof BudgetLimits): string {
    const limit = limits[which]!;
    const used = which === 'bytesUp' ? this.#bytesUp : which === 'requests' ? this.#requests : this.#destinations.size;
    if (!this.#reported.has(`${which}:${limit}`)) {
      this.#reported.add(`${which}:${limit}`);
      this.#audit({ budget: which, limit, used });
    }
    const what = which === 'bytesUp' ? `${limit} bytes sent` : which === 'requests' ? `${limit} requests` : `${limit} destinations`;
    return `the session's egress budget is spent (network.budget.${which}: ${what})`;
  }
}
