// Terminal output helpers: errors, colour when stderr is a terminal, JSON.

import type { CordonError } from '../errors.ts';

const useColor = (stream: NodeJS.WriteStream) => stream.isTTY === true && !process.env.NO_COLOR;

type Out = NodeJS.WriteStream;
export const style = {
  red: (s: string, stream: Out = process.stderr) => (useColor(stream) ? `\x1b[31m${s}\x1b[0m` : s),
  green: (s: string, stream: Out = process.stdout) => (useColor(stream) ? `\x1b[32m${s}\x1b[0m` : s),
  yellow: (s: string, stream: Out = process.stdout) => (useColor(stream) ? `\x1b[33m${s}\x1b[0m` : s),
  bold: (s: string, stream: Out = process.stdout) => (useColor(stream) ? `\x1b[1m${s}\x1b[0m` : s),
  dim: (s: string, stream: Out = process.stdout) => (useColor(stream) ? `\x1b[2m${s}\x1b[0m` : s),
};

export function printError(e: CordonError): void {
  if (process.argv.includes('--json')) {
    process.stderr.write(JSON.stringify({ error: e.toJSON() }) + '\n');
    return;
  }
  process.stderr.write(`${style.red('cordon:')} ${e.message}\n`);
  if (e.hint) process.stderr.write(`  ${style.dim('hint:', process.stderr)} ${e.hint}\n`);
}

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

export function notice(msg: string): void {
  process.stderr.write(`${style.yellow('cordon:', process.stderr)} ${msg}\n`);
}
