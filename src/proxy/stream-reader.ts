// Pull-style reads over a socket, for the parts of a flow that must look at
// bytes before deciding what to do with them (header line, ClientHello,
// request heads, bodies). The socket is paused whenever nobody is reading, so
// nothing is consumed early; bytes read too far can be pushed back; and
// detach() hands the socket, with whatever was read ahead, to a splice.

import type { Duplex } from 'node:stream';
import { CordonError } from '../errors.ts';

export class ReadTimeout extends CordonError {
  constructor(what: string) {
    super('CORDON_INTERNAL', `timed out waiting for ${what}`);
  }
}

/** The stream closed or failed before a clean end. */
export class StreamAborted extends CordonError {
  constructor(reason: string) {
    super('CORDON_INTERNAL', reason);
  }
}

export class StreamReader {
  readonly stream: Duplex;
  #queue: Buffer[] = [];
  #ended = false;
  #failure: Error | null = null;
  #waiter: (() => void) | null = null;
  #detached = false;

  constructor(stream: Duplex) {
    this.stream = stream;
    stream.on('data', this.#onData);
    stream.on('end', this.#onEnd);
    stream.on('error', this.#onError);
    stream.on('close', this.#onClose);
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }
  #onData = (chunk: Buffer): void => {
    this.#queue.push(chunk);
    if (!this.#waiter) this.stream.pause();
    this.#wake();
  };
  #onEnd = (): void => {
    this.#ended = true;
    this.#wake();
  };
  #onError = (e: Error): void => {
    this.#failure ??= e;
    this.#wake();
  };
  #onClose = (): void => {
    if (!this.#ended) this.#failure ??= new StreamAborted('the connection closed');
    this.#wake();
  };

  /** The peer finished sending and every byte has been read. */
  get done(): boolean {
    return this.#ended && this.#queue.length === 0;
  }

  /**
   * The next chunk; null at a clean end of stream. Rejects with
   * StreamAborted when the stream fails or closes uncleanly, with
   * ReadTimeout when `timeoutMs` passes first.
   */
  async read(timeoutMs = 0, what = 'data'): Promise<Buffer | null> {
    if (this.#detached) throw new CordonError('CORDON_INTERNAL', 'read after detach');
    for (;;) {
      const next = this.#queue.shift();
      if (next) return next;
      if (this.#ended) return null;
      if (this.#failure) throw this.#failure instanceof StreamAborted ? this.#failure : new StreamAborted(this.#failure.message);
      await new Promise<void>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        this.#waiter = () => {
          if (timer) clearTimeout(timer);
          resolve();
        };
        if (timeoutMs > 0) {
          timer = setTimeout(() => {
            this.#waiter = null;
            this.stream.pause();
            reject(new ReadTimeout(what));
          }, timeoutMs);
        }
        this.stream.resume();
      });
    }
  }

  /** Put bytes back at the front; the next read returns them. */
  unshift(bytes: Uint8Array): void {
    if (bytes.length > 0) this.#queue.unshift(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  }

  /**
   * Stop reading: remove the listeners, leave the stream paused, and return
   * the bytes read ahead and whether the peer already ended.
   */
  detach(): { pending: Buffer; ended: boolean } {
    this.#detached = true;
    this.stream.pause();
    this.stream.off('data', this.#onData);
    this.stream.off('end', this.#onEnd);
    this.stream.off('error', this.#onError);
    this.stream.off('close', this.#onClose);
    const pending = Buffer.concat(this.#queue);
    this.#queue = [];
    return { pending, ended: this.#ended };
  }
}
