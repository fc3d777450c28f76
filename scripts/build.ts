// Bundles the CLI into dist/ with esbuild: one entry, lazily loaded chunks
// (yaml and zod load only when a policy must be compiled), a build id for the
// policy cache, and the package version.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

function hashTree(dir: string, h = createHash('sha256')): ReturnType<typeof createHash> {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) hashTree(p, h);
    else h.update(p).update(readFileSync(p));
  }
  return h;
}
const buildId = hashTree(join(root, 'src')).update(pkg.version).digest('hex').slice(0, 16);

rmSync(join(root, 'dist'), { recursive: true, force: true });
await build({
  entryPoints: { cordon: join(root, 'src/cli/entry.ts') },
  outdir: join(root, 'dist'),
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  sourcemap: 'linked',
  legalComments: 'none',
  chunkNames: 'chunks/[name]-[hash]',
  define: { __CORDON_BUILD__: JSON.stringify(buildId), __CORDON_VERSION__: JSON.stringify(pkg.version) },
  banner: { js: "import { createRequire as __cordonRequire } from 'node:module'; const require = __cordonRequire(import.meta.url);" },
  logLevel: 'warning',
});
process.stdout.write(`built dist/cordon.mjs (build ${buildId})\n`);
