// A loopback "S3" that checks SigV4 the way AWS does, with the REAL keys: the
// access key id, the session token, the body against x-amz-content-sha256,
// then the signature - recomputed by the AWS SDK's own signer
// (@smithy/signature-v4) from the request as received, so it does not share
// cordon's canonicalisation code. Objects are kept in memory.

import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { HttpRequest } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';
import { upstream, type Received, type Route, type Upstream } from './helpers.ts';

export interface RealKeys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

const bytes = (d: string | ArrayBuffer | ArrayBufferView): Buffer =>
  typeof d === 'string' ? Buffer.from(d) : d instanceof ArrayBuffer ? Buffer.from(d) : Buffer.from(d.buffer, d.byteOffset, d.byteLength);

class NodeSha256 {
  readonly #h: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#h.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#h.digest()));
  }
  reset(): void {}
}

const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

function amzDateToDate(v: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(v);
  if (!m) throw new Error('bad x-amz-date');
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

/** null when the request is signed by `keys`; else an S3 error code. */
export async function verifySigV4(req: Pick<Received, 'method' | 'url' | 'rawHeaders' | 'body'>, keys: RealKeys): Promise<string | null> {
  const header = (name: string) => {
    const out: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === name) out.push(req.rawHeaders[i + 1]!);
    return out;
  };
  const m = AUTH.exec(header('authorization')[0] ?? '');
  if (!m) return 'AccessDenied';
  if (m[1] !== keys.accessKeyId) return 'InvalidAccessKeyId';
  if ((header('x-amz-security-token')[0] ?? null) !== (keys.sessionToken ?? null)) return 'InvalidToken';
  const declared = header('x-amz-content-sha256')[0];
  if (declared && /^[0-9a-f]{64}$/.test(declared) && createHash('sha256').update(req.body).digest('hex') !== declared) return 'XAmzContentSHA256Mismatch';
  const signed = m[5]!.split(';');
  const headers: Record<string, string> = {};
  for (const h of signed) {
    const v = header(h);
    if (v.length === 0) return 'SignatureDoesNotMatch';
    headers[h] = v.join(',');
  }
  const [path, qs = ''] = req.url.split('?') as [string, string?];
  const query: Record<string, string> = {};
  for (const part of qs.split('&').filter(Boolean)) {
    const eq = part.indexOf('=');
    query[decodeURIComponent(eq < 0 ? part : part.slice(0, eq))] = decodeURIComponent(eq < 0 ? '' : part.slice(eq + 1));
  }
  const service = m[4]!;
  const signer = new SignatureV4({
    credentials: { accessKeyId: keys.accessKeyId, secretAccessKey: keys.secretAccessKey, ...(keys.sessionToken ? { sessionToken: keys.sessionToken } : {}) },
    region: m[3]!,
    service,
    sha256: NodeSha256,
    uriEscapePath: service !== 's3',
    applyChecksum: false,
  });
  const expected = await signer.sign(new HttpRequest({ method: req.method, protocol: 'https:', hostname: 'x', path, query, headers, body: req.body }), {
    signingDate: amzDateToDate(header('x-amz-date')[0] ?? ''),
    signableHeaders: new Set(signed),
  });
  const want = AUTH.exec(String(expected.headers.authorization));
  return want && want[5] === m[5] && want[6] === m[6] ? null : 'SignatureDoesNotMatch';
}

export interface FakeS3 extends Upstream {
  objects: Map<string, Buffer>;
  /** Verdicts, in order: null = accepted. */
  verdicts: Array<string | null>;
}

export async function fakeS3(name: string, keys: RealKeys): Promise<FakeS3> {
  const objects = new Map<string, Buffer>();
  const verdicts: Array<string | null> = [];
  const handler: Route = (req, res, rec) => {
    void verifySigV4(rec, keys).then((err) => {
      verdicts.push(err);
      const key = (req.url ?? '/').split('?')[0]!;
      if (err) {
        res.writeHead(403, { 'Content-Type': 'application/xml' });
        // Like S3: the error names the access key id that was used.
        const used = /Credential=([^/]+)/.exec(String(req.headers.authorization))?.[1] ?? '';
        return res.end(`<Error><Code>${err}</Code><AWSAccessKeyId>${used}</AWSAccessKeyId></Error>`);
      }
      if (req.method === 'PUT') {
        objects.set(key, rec.body);
        res.setHeader('ETag', `"${createHash('md5').update(rec.body).digest('hex')}"`);
        return res.end();
      }
      if (req.method === 'GET' && key === '/whoami') return res.end(`<Owner><AccessKeyId>${keys.accessKeyId}</AccessKeyId></Owner>`);
      if (req.method === 'GET') {
        const body = objects.get(key);
        if (!body) {
          res.writeHead(404);
          return res.end('<Error><Code>NoSuchKey</Code></Error>');
        }
        res.setHeader('Content-Type', 'application/octet-stream');
        return res.end(body);
      }
      res.setHeader('Content-Type', 'application/x-amz-json-1.0');
      res.end(JSON.stringify({ ok: true, bytes: rec.body.length }));
    });
  };
  const up = await upstream(name, { '*': handler });
  return Object.assign(up, { objects, verdicts });
}
