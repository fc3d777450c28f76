// The per-session certificate authority the proxy terminates TLS with.
//
// Generated in memory with @peculiar/x509 over WebCrypto (ECDSA P-256); the
// private keys never touch the disk: the session writes only the CA
// certificate, inside a bundle the sandbox trusts (caBundle). One CA per
// session, so a certificate minted for one session means nothing to another.
// Leaf certificates are short-lived (24 h by default), cached per name, and
// carry exactly one SAN: the DNS name, or the IP address for IP literals.
// All leaves share one key pair per CA (minting is then a single signature).

import { readFileSync } from 'node:fs';
import { webcrypto } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { CordonError } from '../errors.ts';
import { parseIpLiteral } from '../policy/ip.ts';

export interface LeafCertificate {
  certPem: string;
  keyPem: string;
  notAfter: Date;
}

export interface SessionCa {
  /** The CA certificate, PEM. Safe to publish. */
  readonly caPem: string;
  /** A leaf for a host name or IP literal (cached; re-minted near expiry). */
  leafFor(hostname: string): Promise<LeafCertificate>;
  /** The system bundle at `systemBundlePath` followed by this CA, for the sandbox's trust store. */
  caBundle(systemBundlePath: string): string;
}

export interface SessionCaOptions {
  /** Shown in the CA's subject, e.g. the session id. */
  label?: string;
  /** Leaf lifetime (default 24 h). */
  leafLifetimeMs?: number;
  /** CA lifetime (default 30 days). */
  caLifetimeMs?: number;
  /** Most leaves kept (default 1000); the oldest is dropped first. */
  maxCachedLeaves?: number;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const SKEW_MS = 5 * 60_000;
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
/** Node's WebCrypto, passed explicitly so the library's global provider is never touched. */
const crypto = webcrypto as unknown as NonNullable<Parameters<typeof x509.X509CertificateGenerator.create>[1]>;

async function pemKey(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64}-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  const b = new Uint8Array(16);
  webcrypto.getRandomValues(b);
  b[0] = b[0]! & 0x7f; // positive
  return Buffer.from(b).toString('hex');
}

/** "CN=..." safe for a DN: letters, digits and a few separators only. */
function dnSafe(s: string): string {
  return s.replace(/[^A-Za-z0-9 ._:-]/g, '_').slice(0, 60);
}

export async function createSessionCa(options: SessionCaOptions = {}): Promise<SessionCa> {
  const leafLifetime = options.leafLifetimeMs ?? 24 * 3600_000;
  const caLifetime = options.caLifetimeMs ?? 30 * 24 * 3600_000;
  const maxLeaves = options.maxCachedLeaves ?? 1000;
  const now = Date.now();
  const caKeys = (await webcrypto.subtle.generateKey(ALG, false, ['sign', 'verify'])) as CryptoKeyPair;
  const caName = `CN=cordon session CA ${dnSafe(options.label ?? serial().slice(0, 12))}, O=cordon`;
  const caCert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial(),
      name: caName,
      notBefore: new Date(now - SKEW_MS),
      notAfter: new Date(now + caLifetime),
      signingAlgorithm: SIGN,
      keys: caKeys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const caPem = caCert.toString('pem') + '\n';
  const leafKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const leafKeyPem = await pemKey(leafKeys.privateKey);
  const aki = await x509.AuthorityKeyIdentifierExtension.create(caCert, false, crypto);
  const skiLeaf = await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey, false, crypto);
  const cache = new Map<string, Promise<LeafCertificate>>();

  async function mint(host: string): Promise<LeafCertificate> {
    const ip = parseIpLiteral(host);
    const san: x509.JsonGeneralName = ip ? { type: 'ip', value: ip.canonical } : { type: 'dns', value: host };
    const t = Date.now();
    const notAfter = new Date(Math.min(t + leafLifetime, caCert.notAfter.getTime()));
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serial(),
        subject: host.length <= 60 && !ip ? `CN=${dnSafe(host)}` : 'CN=cordon leaf',
        issuer: caCert.subject,
        notBefore: new Date(t - SKEW_MS),
        notAfter,
        signingAlgorithm: SIGN,
        publicKey: leafKeys.publicKey,
        signingKey: caKeys.privateKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
          new x509.SubjectAlternativeNameExtension([san], false),
          skiLeaf,
          aki,
        ],
      },
      crypto,
    );
    return { certPem: cert.toString('pem') + '\n' + caPem, keyPem: leafKeyPem, notAfter };
  }

  return {
    caPem,
    leafFor(hostname: string): Promise<LeafCertificate> {
      const host = hostname.toLowerCase();
      const cached = cache.get(host);
      if (cached) return cached.then((leaf) => (leaf.notAfter.getTime() - Date.now() > 3600_000 ? leaf : refresh(host)));
      return refresh(host);
    },
    caBundle(systemBundlePath: string): string {
      let system: string;
      try {
        system = readFileSync(systemBundlePath, 'utf8');
      } catch (e) {
        throw new CordonError('CORDON_PREREQ_MISSING', `cannot read the system CA bundle ${systemBundlePath}`, {
          hint: 'install the ca-certificates package, or point cordon at the bundle your system uses',
          cause: e,
        });
      }
      return `${system.trimEnd()}\n${caPem}`;
    },
  };

  function refresh(host: string): Promise<LeafCertificate> {
    const p = mint(host);
    p.catch(() => cache.delete(host));
    cache.delete(host);
    cache.set(host, p);
    if (cache.size > maxLeaves) cache.delete(cache.keys().next().value!);
    return p;
  }
}
