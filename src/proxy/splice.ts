// Joining two streams byte for byte, both ways, with TCP's half-close
// semantics: when one side finishes sending, the other side's write half is
// shut (after every byte before it is flushed) and the opposite direction
// keeps flowing. The splice is over only when both directions have ended.
// An error or an unclean close on either side destroys both (there is no way
// to forward a reset faithfully; a destroyed socket is the closest).

import type { Duplex } from 'node:stream';

export interface SpliceEnd {
  stream: Duplex;
  /** Bytes already read from this stream, to deliver to the other side first. */
  pending?: Buffer;
  /** The stream already ended (its 'end' event was consumed by a reader). */
  ended?: boolean;
}

export interface SpliceResult {
  /** Bytes moved from a to b and from b to a (pending bytes included). */
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
      const endDst = () => {
        const st = state.get(src.stream)!;
        if (st.readDone) return;
        st.readDone = true;
        dst.stream.end();
      };
      const onData = (chunk: Buffer) => {
        count(chunk.length);
        if (!dst.stream.write(chunk)) src.stream.pause();
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
        if (!dst.stream.write(src.pending)) src.stream.pause();
      }
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
    pump(b, a, (n) => (bToA += n));
  });
}
