// What a proxied sandbox is told, without loading the proxy: the resolver
// address, the proxy and CA variables, where the CA files appear inside, and
// where systems keep their CA bundle. Kept apart from network.ts so that
// `cordon run` pays for the proxy only when the policy uses it.

import { proxyEnv, SYNTHETIC } from '../netcap/capture.ts';

/** Where Debian/Ubuntu, Fedora/RHEL, Arch, Alpine and openSUSE keep the system bundle. */
export const SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/ssl/cert.pem',
];

/** Inside the sandbox: the session CA alone, and the system bundle plus the CA. */
export const CA_PATH = '/run/cordon/ca.pem';
export const BUNDLE_PATH = '/run/cordon/ca-bundle.pem';

/** The resolver address inside the sandbox (UDP/53 to anywhere is captured anyway). */
export const SANDBOX_RESOLVER = SYNTHETIC.resolver;

/** The variables a proxied sandbox gets: proxy settings and CA locations. Static. */
export function sandboxNetworkEnv(): Record<string, string> {
  return {
    ...proxyEnv(),
    // Tools that read their own variable instead of the system bundle.
    SSL_CERT_FILE: BUNDLE_PATH,
    CURL_CA_BUNDLE: BUNDLE_PATH,
    REQUESTS_CA_BUNDLE: BUNDLE_PATH,
    GIT_SSL_CAINFO: BUNDLE_PATH,
    CARGO_HTTP_CAINFO: BUNDLE_PATH,
    AWS_CA_BUNDLE: BUNDLE_PATH,
    PIP_CERT: BUNDLE_PATH,
    DENO_CERT: CA_PATH,
    NODE_EXTRA_CA_CERTS: CA_PATH,
    NPM_CONFIG_CAFILE: BUNDLE_PATH,
  };
}

