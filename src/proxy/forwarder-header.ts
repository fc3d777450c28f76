// The one line cordon-netcap (the C forwarder) writes at the start of every
// Unix connection it opens to the proxy:
//   CORDON/1 TCP <orig-ip> <orig-port> <client-port>\n   a captured TCP flow
//   CORDON/1 DNS\n                                          the DNS datagram channel
// Parsed strictly: exact tokens, single spaces, decimal ports, an IP literal
// in plain dotted-quad or IPv6 text. Anything else closes the connection.

import { type IpLiteral, isCanonicalIpv4, parseIpLiteral } from '../policy/ip.ts';
import { type StreamReader } from './stream-reader.ts';

export const MAX_HEADER_LINE = 128;

export type ForwarderHeader =
  | { kind: 'tcp'; ip: IpLiteral; port: number; clientPort: number; lineBytes: number }
  | { kind: 'dns' }
  | { kind: 'invalid'; reason: string };

const PORT = /^(0|[1-9][0-9]{0,4})$/;

export function parseForwarderHeader(line: string): ForwarderHeader {
  if (line === 'CORDON/1 DNS') return { kind: 'dns' };
  const parts = line.split(' ');
  if (parts.length !== 5 || parts[0] !== 'CORDON/1' || parts[1] !== 'TCP') return { kind: 'invalid', reason: 'not a CORDON/1 header line' };
  const [, , ipText, portText, clientText] = parts as [string, string, string, string, string];
  const ip = parseIpLiteral(ipText);
  if (!ip || (ip.family === 4 && !isCanonicalIpv4(ipText)) || ipText.startsWith('[')) {
    return { kind: 'invalid', reason: 'the original address is not a plain IP address' };
  }
  if (!PORT.test(portText) || !PORT.test(clientText)) return { kind: 'invalid', reason: 'a port is not a decimal number' };
  const port = Number(portText);
  const clientPort = Number(clientText);
  if (port < 1 || port > 65535 || clientPort > 65535) return { kind: 'invalid', reason: 'a port is out of range' };
  return { kind: 'tcp', ip, port, clientPort, lineBytes: line.length + 1 };
}

/** Read the header line; bytes after it are pushed back into the reader. */
export async function readForwarderHeader(reader: StreamReader, timeoutMs: number): Promise<ForwarderHeader> {
  let buf = Buffer.alloc(0);
  for (;;) {
    const chunk = await reader.read(timeoutMs, 'the forwarder header');
    if (chunk === null) return { kind: 'invalid', reason: 'the connection ended before the header line' };
    buf = Buffer.concat([buf, chunk]);
    const nl = buf.indexOf(0x0a);
    if (nl >= 0) {
      if (nl > MAX_HEADER_LINE) return { kind: 'invalid', reason: 'the header line is too long' };
      reader.unshift(buf.subarray(nl + 1));
      const line = buf.subarray(0, nl);
      if (line.some((c) => c < 0x20 || c > 0x7e)) return { kind: 'invalid', reason: 'a control or non-ASCII byte in the header line' };
      return parseForwarderHeader(line.toString('latin1'));
    }
    if (buf.length > MAX_HEADER_LINE) return { kind: 'invalid', reason: 'the header line is too long' };
  }
}
