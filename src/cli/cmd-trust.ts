// `cordon trust`: trust a workspace policy by its exact content.

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { join } from 'node:path';
import { CordonError, EXIT } from '../errors.ts';
import { hostPaths } from '../paths.ts';
import { sha256, TrustStore, WORKSPACE_POLICY } from '../policy/trust.ts';
import { resolveWorkspace } from '../sandbox/mount-plan.ts';
import { printJson, style } from './output.ts';

export async function cmdTrust(dir: string, o: { yes?: boolean; list?: boolean; revoke?: boolean; json?: boolean }): Promise<number> {
  const store = new TrustStore(hostPaths().state);
  if (o.list) {
    const entries = store.list();
    if (o.json) printJson({ entries });
    else if (entries.length === 0) process.stdout.write('no trusted workspace policies\n');
    else for (const e of entries) process.stdout.write(`${e.workspace}  sha256:${e.sha256.slice(0, 16)}  ${e.trustedAt}\n`);
    return EXIT.ok;
  }
  const ws = resolveWorkspace(dir);
  if (o.revoke) {
    const done = store.revoke(ws);
    if (o.json) printJson({ workspace: ws, revoked: done });
    else process.stdout.write(done ? `no longer trusting ${join(ws, WORKSPACE_POLICY)}\n` : `nothing was trusted for ${ws}\n`);
    return EXIT.ok;
  }
  const file = join(ws, WORKSPACE_POLICY);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new CordonError('CORDON_POLICY_NOT_FOUND', `${file} does not exist`, { hint: 'a workspace policy lives in .cordon/policy.yaml' });
  }
  // Validate before trusting: a policy that widens is refused outright.
  const { parsePolicyText } = await import('../policy/parse.ts');
  const { mergeLayers, narrowWithWorkspace } = await import('../policy/merge.ts');
  narrowWithWorkspace(mergeLayers([]), parsePolicyText(text, { role: 'workspace', source: file }));
  const hash = sha256(text);
  if (!o.yes) {
    if (!process.stdin.isTTY) throw new CordonError('CORDON_USAGE', 'refusing to trust without a terminal to confirm', { hint: 'review the file, then run: cordon trust --yes' });
    process.stdout.write(`${style.bold(file)} (sha256 ${hash.slice(0, 16)}):\n${style.dim('----')}\n${text}${text.endsWith('\n') ? '' : '\n'}${style.dim('----')}\n`);
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = (await rl.question('Trust exactly this content? It can only narrow your policy. [y/N] ')).trim().toLowerCase();
    rl.close();
    if (answer !== 'y' && answer !== 'yes') {
      process.stdout.write('not trusted\n');
      return EXIT.failed;
    }
  }
  const entry = store.trust(ws, hash);
  if (o.json) printJson(entry);
  else process.stdout.write(`trusted ${file} (sha256 ${hash.slice(0, 16)}); any edit voids the trust\n`);
  return EXIT.ok;
}
