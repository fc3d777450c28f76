// The session proxy's DNS channel, as the forwarder speaks it: the synthetic
// address the proxy hands out for a name (benchmarks dial it as a captured
// client would).

import net from 'node:net';
import * as dnsPacket from 'dns-packet';

export async function syntheticAddress(socketPath: string, name: string): Promise<string> {
  const q = dnsPacket.encode({ type: 'query', id: 1, questions: [{ name, type: 'A' }] });
  const answer = await new Promise<Buffer>((resolve, reject) => {
    const s = net.connect(socketPath, () => {
      const f = Buffer.alloc(9 + q.length);
      f.writeUInt16BE(7 + q.length, 0);
      f[2] = 4;
      q.copy(f, 9);
      s.end(Buffer.concat([Buffer.from('CORDON/1 DNS\n'), f]));
    });
    let b = Buffer.alloc(0);
    s.on('data', (c: Buffer) => {
      b = Buffer.concat([b, c]);
      if (b.length >= 2 && b.length >= 2 + b.readUInt16BE(0)) {
        s.destroy();
        resolve(b.subarray(9));
      }
    });
    s.on('error', reject);
  });
  return ((dnsPacket.decode(answer).answers ?? [])[0] as dnsPacket.StringAnswer).data;
}
