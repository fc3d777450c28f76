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
// The heavy modules `cordon run` loads only when a policy needs them: entry
// points of their own in the ES module build, so the CommonJS run bundle
// below can import them by a stable name.
const LAZY: Record<string, string> = {
  'src/session/network.ts': 'lazy/network',
  'src/session/credentials.ts': 'lazy/credentials',
  'src/policy/parse.ts': 'lazy/parse',
};

await build({
  entryPoints: { cordon: join(root, 'src/cli/entry.ts'), ...Object.fromEntries(Object.entries(LAZY).map(([src, out]) => [out, join(root, src)])) },
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
  logLevel: 'warning',
});
// dist/run.cjs: the `cordon run` fast path as one CommonJS file.
await build({
  entryPoints: [join(root, 'src/cli/run-entry.ts')],
  outfile: join(root, 'dist', 'run.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node22',
  sourcemap: 'linked',
  legalComments: 'none',
  define: { __CORDON_BUILD__: JSON.stringify(buildId), __CORDON_VERSION__: JSON.stringify(pkg.version), 'import.meta.url': '__cordonUrl' },
  banner: { js: 'const __cordonUrl = require("node:url").pathToFileURL(__filename).href;' },
  plugins: [
    {
      name: 'cordon-lazy',
      setup(b) {
        b.onResolve({ filter: /\.ts$/ }, (args) => {
          const abs = join(args.resolveDir, args.path).slice(root.length);
          const out = LAZY[abs.replace(/^\//, '')];
          return out && args.kind === 'dynamic-import' ? { path: `./${out}.mjs`, external: true } : undefined;
        });
      },
    },
  ],
  logLevel: 'warning',
});

process.stdout.write(`built dist/cordon.mjs and dist/run.cjs (build ${buildId})\n`);
