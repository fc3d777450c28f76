// Joining two streams byte for byte, both ways, with TCP's half-close
// semantics: when one side finishes sending, the other side's write half is
// shut (after every byte before it is flushed) and the opposite direction
// keeps flowing. The splice is over only when both directions have ended.
// An error or an unclean close on either side destroys both (there is no way
// to forward a reset faithfully; a destroyed socket is the closest).

import type { Duplex } from 'node:stream';
import type { ByteFilter } from './ws-frames.ts';

export interface SpliceEnd {
  stream: Duplex;
  /** Bytes already read from this stream, to deliver to the other side first. */
  pending?: Buffer;
  /** The stream already ended (its 'end' event was consumed by a reader). */
  ended?: boolean;
  /**
   * Rewrite what is read from this stream before the other side gets it (in
   * order; pending bytes included). A throw tears both sides down.
   */
  filters?: readonly ByteFilter[];
}

export interface SpliceResult {
  /** Bytes read from a (for b) and from b (for a), pending bytes included, before any filter. */
  aToB: number;
  bToA: number;
  /** Both directions finished cleanly. */
  clean: boolean;
  error?: string;
}

/** Reset-like teardown: RST for TCP sockets where Node can, a plain destroy otherwise. */
export function hardClose(s: Duplex): void {
  const sock = s as Duplex & { resetAndDestroy?: () => void };
  try {
    if (typeof sock.resetAndDestroy === 'function' && !s.destroyed) sock.resetAndDestroy();
    else s.destroy();
  } catch {
    s.destroy();
  }
}

export function splice(a: SpliceEnd, b: SpliceEnd): Promise<SpliceResult> {
  return new Promise((resolve) => {
    let aToB = 0;
    let bToA = 0;
    let settled = false;
    const cleanups: Array<() => void> = [];
    // Per stream: its read half ended, its write half finished.
    const state = new Map<Duplex, { readDone: boolean; writeDone: boolean }>([
      [a.stream, { readDone: false, writeDone: false }],
      [b.stream, { readDone: false, writeDone: false }],
    ]);
    const allDone = () => [...state.values()].every((s) => s.readDone && s.writeDone);

    const settle = (clean: boolean, error?: string) => {
      if (settled) return;
      settled = true;
      for (const c of cleanups) c();
      if (!clean) {
        hardClose(a.stream);
        hardClose(b.stream);
      }
      resolve({ aToB, bToA, clean, ...(error ? { error } : {}) });
    };

    const pump = (src: SpliceEnd, dst: SpliceEnd, count: (n: number) => void) => {
      const filters = src.filters ?? [];
      /** `chunk` through the filters, or null after tearing down (a filter threw). */
      const filtered = (chunk: Buffer | null): Buffer | null => {
        try {
          let b = chunk ?? Buffer.alloc(0);
          for (const f of filters) {
            if (chunk !== null) b = f.push(b);
            else b = Buffer.concat([b.length > 0 ? f.push(b) : b, f.end()]); // the source ended: flush each filter in turn
          }
          return b;
        } catch (e) {
          settle(false, e instanceof Error ? e.message : String(e));
          return null;
        }
      };
      const send = (chunk: Buffer): boolean => {
        const out = filters.length === 0 ? chunk : filtered(chunk);
        if (out === null) return true;
        return out.length === 0 || dst.stream.write(out);
      };
      const endDst = () => {
        const st = state.get(src.stream)!;
        if (st.readDone) return;
        if (filters.length > 0) {
          const rest = filtered(null);
          if (rest === null) return;
          if (rest.length > 0) dst.stream.write(rest);
        }
        st.readDone = true;
        dst.stream.end();
      };
      const onData = (chunk: Buffer) => {
        count(chunk.length);
        if (!send(chunk)) src.stream.pause();
      };
      const onDrain = () => src.stream.resume();
      const onFinish = () => {
        state.get(dst.stream)!.writeDone = true;
        if (allDone()) settle(true);
      };
      src.stream.on('data', onData);
      src.stream.on('end', endDst);
      dst.stream.on('drain', onDrain);
      dst.stream.on('finish', onFinish);
      cleanups.push(() => {
        src.stream.off('data', onData);
        src.stream.off('end', endDst);
        dst.stream.off('drain', onDrain);
        dst.stream.off('finish', onFinish);
      });
      if (src.pending && src.pending.length > 0) {
        count(src.pending.length);
        if (!send(src.pending)) src.stream.pause();
      }
      if (settled) return;
      if (src.ended) endDst();
      else if (!dst.stream.writableNeedDrain) src.stream.resume();
    };

    for (const s of [a, b]) {
      const onError = (e: Error) => settle(false, e.message);
      const onClose = () => {
        // Closing is normal once this stream has ended both ways; before that it is a teardown.
        const st = state.get(s.stream)!;
        if (!(st.readDone && st.writeDone)) settle(false, 'a side closed before the flow finished');
        else if (allDone()) settle(true);
      };
      s.stream.on('error', onError);
      s.stream.on('close', onClose);
      cleanups.push(() => {
        s.stream.off('close', onClose);
        s.stream.off('error', onError);
        s.stream.on('error', () => {}); // a late error must not crash the process
      });
    }
    if (a.stream.destroyed || b.stream.destroyed) {
      settle(false, 'a side was already closed');
      return;
    }
    pump(a, b, (n) => (aToB += n));
    if (!settled) pump(b, a, (n) => (bToA += n)); // a's pending bytes may already have torn it down
  });
}
