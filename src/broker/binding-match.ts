// Where a binding applies. Two levels:
//   covers   host (exact, normalised) and port: the host is "credentialed" -
//            foreign credentials are refused there, headers stripped,
//            responses scrubbed, and the placeholder going there is no leak.
//   matches  covers, plus the method and the path: the real value is injected.
// Paths use the network rules' normalisation and matching (strict, as for
// allow rules: a path that cannot be normalised matches no binding path).

import { normalizeRequestPath, pathMatches } from '../policy/decide-network.ts';
import type { Binding } from '../policy/types.ts';

export function bindingCovers(b: Binding, host: string, port: number): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return b.hosts.includes(h) && b.ports.includes(port);
}

/** Method and path only (the caller checked `covers`). `target` is origin-form, query allowed. */
export function bindingMatchesRequest(b: Binding, method: string, target: string): boolean {
  if (b.methods !== null && !b.methods.includes(method)) return false;
  if (b.paths === null) return true;
  const n = normalizeRequestPath(target);
  if (!n.ok) return false;
  return b.paths.some((p) => pathMatches(p, n.segments));
}
