// Terminating the agent's TLS with a leaf from the session CA, so requests
// inside can be judged one by one. The ClientHello the proxy already read is
// handed back to the socket before the TLS layer takes it over (Node's
// TLSSocket consumes a wrapped socket's buffered bytes first).
//
// ALPN is pinned to http/1.1 on both sides: the relay speaks HTTP/1.1 through
// one strict parser; offering h2 would need a second parser (and a second
// smuggling surface) to judge the same requests. Clients that offer h2 also
// offer http/1.1; a client offering only h2 fails the handshake.

import type net from 'node:net';
import tls from 'node:tls';
import { DialError } from './dial.ts';
import type { Flow } from './flow.ts';
import type { StreamReader } from './stream-reader.ts';

/** Take over the client socket behind `reader` and complete a TLS handshake as `host`. */
export async function terminateClientTls(flow: Flow, reader: StreamReader, host: string): Promise<tls.TLSSocket> {
  const raw = reader.stream as net.Socket;
  const secureContext = await flow.ctx.leafContext(host);
  const { pending, ended } = reader.detach();
  if (ended) throw new DialError('tls', 'the client ended before the TLS handshake');
  if (pending.length > 0) raw.unshift(pending);
  const t = flow.track(new tls.TLSSocket(raw, { isServer: true, secureContext, ALPNProtocols: ['http/1.1'] }));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new DialError('tls', 'the TLS handshake with the client timed out'));
    }, flow.ctx.timeouts.handshakeMs);
    const onSecure = () => {
      cleanup();
      resolve();
    };
    const onError = (e: Error) => {
      cleanup();
      reject(new DialError('tls', `the TLS handshake with the client failed: ${e.message}`));
    };
    const onClose = () => {
      cleanup();
      reject(new DialError('tls', 'the client closed during the TLS handshake'));
    };
    const cleanup = () => {
      clearTimeout(timer);
      t.off('secure', onSecure);
      t.off('error', onError);
      t.off('close', onClose);
      t.off('end', onClose);
    };
    t.once('secure', onSecure);
    t.once('error', onError);
    t.once('close', onClose);
    t.once('end', onClose);
  });
  return t;
}
