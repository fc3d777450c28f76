// Synthetic DNS answers: each allowed name gets a stable address in
// 198.19.0.0/16 for the life of the session, and a flow to that address is
// mapped back to the name. Per proxy instance (per session); a reload keeps
// the map, so names the agent already resolved keep their addresses.

import { CordonError } from '../errors.ts';

export const SYNTHETIC_PREFIX = [198, 19] as const;
const FIRST = 1; // 198.19.0.1
const LAST = 0xfffe; // 198.19.255.254

export function isSyntheticAddress(bytes: Uint8Array): boolean {
  return bytes.length === 4 && bytes[0] === SYNTHETIC_PREFIX[0] && bytes[1] === SYNTHETIC_PREFIX[1];
}

export class SyntheticAddresses {
  readonly #byName = new Map<string, string>();
  readonly #byAddress = new Map<string, string>();
  #next = FIRST;

  /** The name's address, allocating one on first use. Throws when the range is exhausted. */
  addressFor(name: string): string {
    const known = this.#byName.get(name);
    if (known) return known;
    if (this.#next > LAST) {
      throw new CordonError('CORDON_INTERNAL', 'the session used up its synthetic DNS addresses');
    }
    const n = this.#next++;
    const addr = `${SYNTHETIC_PREFIX[0]}.${SYNTHETIC_PREFIX[1]}.${n >> 8}.${n & 0xff}`;
    this.#byName.set(name, addr);
    this.#byAddress.set(addr, name);
    return addr;
  }

  /** The name an address was handed out for, or undefined. */
  nameFor(address: string): string | undefined {
    return this.#byAddress.get(address);
  }

  get size(): number {
    return this.#byName.size;
  }
}
