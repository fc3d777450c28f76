// Process entry point: V8 compile cache in cordon's private state directory
// (never the shared /tmp), a fast path for `cordon run`, then the full CLI.

import { mkdirSync } from 'node:fs';
import module from 'node:module';
import { join } from 'node:path';
import { hostPaths } from '../paths.ts';

// Bundled CommonJS dependencies call require() for Node built-ins: one
// require for the whole bundle (instead of one per chunk).
(globalThis as { require?: NodeJS.Require }).require ??= module.createRequire(import.meta.url);

const cacheDir = join(hostPaths().state, 'cache', 'v8');
try {
  mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  module.enableCompileCache?.(cacheDir);
} catch {
  // no cache: only slower
}

async function run(argv: string[]): Promise<number> {
  if (argv[0] === 'run') {
    const { fastRun } = await import('./fast-run.ts');
    const code = await fastRun(argv.slice(1));
    if (code !== null) return code;
  }
  const { main } = await import('./main.ts');
  return main(argv);
}

const code = await run(process.argv.slice(2));
// Output to a pipe is written asynchronously: flush before exiting, or a large
// --json answer would be cut short.
const flush = (s: NodeJS.WriteStream) => new Promise<void>((resolve) => (s.writableLength === 0 ? resolve() : s.write('', () => resolve())));
await Promise.all([flush(process.stdout), flush(process.stderr)]);
process.exit(code);
