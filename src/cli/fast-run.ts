// `cordon run` with the plain arguments most invocations use, without loading
// the general CLI. Anything unusual (help, unknown options, no command) returns
// null and goes through the full parser, which explains what is wrong.

import { isCordonError } from '../errors.ts';
import { cmdRun, parseRunArgs } from './cmd-run.ts';
import { printError } from './output.ts';

export async function fastRun(args: string[]): Promise<number | null> {
  const parsed = parseRunArgs(args);
  if (parsed === null) return null;
  try {
    return await cmdRun(parsed.command, parsed.options);
  } catch (e) {
    if (!isCordonError(e)) throw e;
    printError(e);
    return e.exitCode;
  }
}
