// `cordon run`'s own entry point, bundled as CommonJS (dist/run.cjs): Node
// loads one CommonJS file about twice as fast as the graph of ES module chunks
// the rest of the CLI is split into, and `run` has a start-up budget. The
// heavy parts (the proxy, the vault, the policy compiler) stay in the ES
// module build and are imported from it only when a policy needs them.
// Anything unusual (--help, unknown options) goes to the full CLI.

import { mkdirSync } from 'node:fs';
import module from 'node:module';
import { join } from 'node:path';
import { hostPaths } from '../paths.ts';
import { fastRun } from './fast-run.ts';

async function main(): Promise<number> {
  // The ES module chunks call require() for Node built-ins through a global.
  (globalThis as { require?: NodeJS.Require }).require ??= module.createRequire(`${__dirname}/cordon.mjs`);
  try {
    const cacheDir = join(hostPaths().state, 'cache', 'v8');
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    module.enableCompileCache?.(cacheDir);
  } catch {
    // no cache: only slower
  }
  const argv = process.argv.slice(2);
  if (argv[0] === 'run') {
    const code = await fastRun(argv.slice(1));
    if (code !== null) return code;
  }
  // The full CLI runs itself on import, with the same arguments.
  await import(`${__dirname}/cordon.mjs`);
  return new Promise<number>(() => {}); // cordon.mjs exits the process
}

declare const __dirname: string;

void main().then(async (code) => {
  const flush = (s: NodeJS.WriteStream) => new Promise<void>((resolve) => (s.writableLength === 0 ? resolve() : s.write('', () => resolve())));
  await Promise.all([flush(process.stdout), flush(process.stderr)]);
  process.exit(code);
});
