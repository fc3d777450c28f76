// `cordon secret add | list | rm | rotate`: manage the vault (broker/vault).
//
// Values come from stdin (a hidden prompt on a terminal), a file or an
// environment variable, never from the command line: arguments land in shell
// history and in every user's `ps`. From stdin and files exactly one final
// "\n" is dropped (echo and editors add one); --raw keeps the bytes as they
// are. Nothing here prints, logs or audits a value: output and audit records
// carry names and metadata only.

import { readFile, stat } from 'node:fs/promises';
import type { SecretMeta, Vault } from '../broker/types.ts';
import { MAX_VALUE_BYTES, type VaultFailure, vaultError } from '../broker/vault/common.ts';
import { CordonError, EXIT, isCordonError } from '../errors.ts';
import { hostPaths } from '../paths.ts';
import { notice, printJson, style } from './output.ts';

type Backend = 'auto' | 'keyring' | 'file';

export interface SecretValueOptions {
  fromFile?: string;
  fromEnv?: string;
  raw?: boolean;
}

interface Common {
  vault?: Backend;
  json?: boolean;
}

export interface AddOptions extends Common, SecretValueOptions {
  description?: string;
  force?: boolean;
}

export type RotateOptions = AddOptions;

function usage(message: string, hint?: string): CordonError {
  return new CordonError('CORDON_USAGE', message, { hint });
}

function secretError(message: string, reason: VaultFailure, hint?: string, secret?: string): CordonError {
  return vaultError(reason, message, { hint, secret });
}

/** Refuse anything beyond NAME and known options, without repeating it: it may be a value typed inline. */
export function refuseInlineValue(extraArgs: readonly string[]): void {
  if (extraArgs.length > 0) {
    throw usage(
      `unexpected ${extraArgs.length === 1 ? 'argument' : 'arguments'} after the secret name (not shown, in case it is a value); ` +
        'values are never taken on the command line: they would end up in shell history and in ps. Nothing was stored',
      'pipe the value on stdin (printf %s "$TOKEN" | cordon secret add NAME), or use --from-file FILE / --from-env VAR; on a terminal you are prompted',
    );
  }
}

async function openCliVault(o: Common): Promise<Vault> {
  const { openVault } = await import('../broker/vault/index.ts');
  return openVault({ stateDir: hostPaths().state, prefer: o.vault ?? 'auto' });
}

// ---- reading a value ----

interface ReadValue {
  /** Owns the memory: wipe when done. */
  buffer: Buffer;
  /** The value: `buffer`, or a view of it without the final newline. */
  value: Buffer;
  strippedNewline: boolean;
}

function finish(name: string, buffer: Buffer, strip: boolean, source: string): ReadValue {
  const dropped = strip && buffer.length > 0 && buffer[buffer.length - 1] === 0x0a;
  const value = dropped ? buffer.subarray(0, buffer.length - 1) : buffer;
  if (value.length === 0) {
    buffer.fill(0);
    throw secretError(`the value for secret ${name} from ${source} is empty; nothing was stored`, 'empty-value', undefined, name);
  }
  if (value.length > MAX_VALUE_BYTES) {
    buffer.fill(0);
    throw secretError(`the value for secret ${name} is larger than ${MAX_VALUE_BYTES} bytes`, 'too-large', undefined, name);
  }
  return { buffer, value, strippedNewline: dropped };
}

export async function readSecretValue(name: string, o: SecretValueOptions): Promise<ReadValue> {
  if (o.fromFile !== undefined && o.fromEnv !== undefined) throw usage('use one of --from-file and --from-env');
  if (o.fromEnv !== undefined) {
    const v = process.env[o.fromEnv];
    if (v === undefined) {
      throw secretError(`environment variable ${o.fromEnv} is not set; nothing was stored`, 'env-unset', `export ${o.fromEnv}=... first, or pipe the value on stdin`, name);
    }
    return finish(name, Buffer.from(v, 'utf8'), false, `$${o.fromEnv}`);
  }
  if (o.fromFile !== undefined) {
    const file = o.fromFile;
    let buffer: Buffer;
    try {
      const st = await stat(file);
      if (!st.isFile()) throw secretError(`${file} is not a regular file`, 'io', undefined, name);
      if (st.size > MAX_VALUE_BYTES + 1) throw secretError(`${file} is larger than ${MAX_VALUE_BYTES} bytes`, 'too-large', undefined, name);
      buffer = await readFile(file);
    } catch (e) {
      if (isCordonError(e)) throw e;
      throw secretError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'read failed'}`, 'io', undefined, name);
    }
    return finish(name, buffer, !o.raw, file);
  }
  if (process.stdin.isTTY) return finish(name, await promptHidden(`Value for secret ${name} (input hidden, Enter to finish): `), false, 'the prompt');
  return finish(name, await readStdin(name), !o.raw, 'stdin');
}

async function readStdin(name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      total += chunk.length;
      if (total > MAX_VALUE_BYTES + 1) throw secretError(`the value for secret ${name} on stdin is larger than ${MAX_VALUE_BYTES} bytes`, 'too-large', undefined, name);
    }
    return Buffer.concat(chunks, total);
  } finally {
    for (const c of chunks) c.fill(0);
  }
}

/** Read a line from the terminal without echo, into a buffer we can wipe. */
function promptHidden(prompt: string): Promise<Buffer> {
  const stdin = process.stdin;
  const buf = Buffer.alloc(MAX_VALUE_BYTES + 1);
  let len = 0;
  process.stderr.write(prompt);
  return new Promise<Buffer>((resolve, reject) => {
    const done = (err: CordonError | null) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) {
        buf.fill(0);
        reject(err);
        return;
      }
      const out = Buffer.from(buf.subarray(0, len));
      buf.fill(0);
      resolve(out);
    };
    const onData = (d: Buffer) => {
      for (const byte of d) {
        if (byte === 0x0d || byte === 0x0a || byte === 0x04) return void (d.fill(0), done(null));
        if (byte === 0x03) return void (d.fill(0), done(usage('cancelled; nothing was stored')));
        if (byte === 0x7f || byte === 0x08) {
          // Erase one character: UTF-8 continuation bytes, then the lead byte.
          while (len > 0 && (buf[len - 1]! & 0xc0) === 0x80) len--;
          if (len > 0) len--;
        } else if (byte === 0x15) {
          len = 0; // Ctrl-U
        } else if (len < buf.length) {
          buf[len++] = byte;
        }
      }
      d.fill(0);
    };
    stdin.setRawMode(true);
    stdin.on('data', onData);
    stdin.resume();
  });
}

// ---- audit (best effort: a broken log must never block removing a secret) ----

async function audit(type: string, data: Record<string, unknown>): Promise<void> {
  try {
    const { AuditStore } = await import('../audit/index.ts');
    const store = AuditStore.open(hostPaths().state);
    try {
      store.append('cordon', type, data);
    } finally {
      store.close();
    }
  } catch (e) {
    notice(`the change was made but not recorded in the audit log: ${(e as Error).message}`);
  }
}

// ---- commands ----

function metaJson(m: SecretMeta) {
  return { name: m.name, backend: m.backend, bytes: m.bytes, createdAt: m.createdAt, rotatedAt: m.rotatedAt, description: m.description };
}

function newlineNote(r: ReadValue): string {
  return r.strippedNewline ? ' (one final newline dropped; --raw keeps it)' : '';
}

export async function cmdSecretAdd(name: string, o: AddOptions, extraArgs: readonly string[] = []): Promise<number> {
  refuseInlineValue(extraArgs);
  const vault = await openCliVault(o);
  try {
    // Fail on a taken name before asking for the value.
    let before: boolean;
    try {
      before = (await vault.meta(name)) !== null;
    } catch (e) {
      // A corrupted or tampered record can be replaced with --force: that is the way out.
      const reason = isCordonError(e) ? e.detail.reason : null;
      if (!o.force || (reason !== 'corrupt' && reason !== 'tampered')) throw e;
      before = true;
    }
    if (before && !o.force) {
      throw secretError(`secret ${name} already exists`, 'exists', `replace its value: cordon secret rotate ${name}; start over: cordon secret add ${name} --force`, name);
    }
    const input = await readSecretValue(name, o);
    let meta: SecretMeta;
    try {
      meta = await vault.set(name, input.value, { description: o.description ?? null, exclusive: !o.force });
    } finally {
      input.buffer.fill(0);
    }
    const action = before ? 'replaced' : 'added';
    await audit(`secret.${action}`, { secretName: name, backend: meta.backend, bytes: meta.bytes });
    if (o.json) printJson({ action, secret: metaJson(meta) });
    else process.stdout.write(`${action} secret ${style.bold(name)}: ${meta.bytes} bytes in the ${meta.backend} vault${newlineNote(input)}\n`);
    return EXIT.ok;
  } finally {
    vault.close();
  }
}

export async function cmdSecretRotate(name: string, o: RotateOptions, extraArgs: readonly string[] = []): Promise<number> {
  refuseInlineValue(extraArgs);
  const vault = await openCliVault(o);
  try {
    if (!(await vault.meta(name))) throw secretError(`no secret named ${name}`, 'not-found', `add it: cordon secret add ${name}`, name);
    const input = await readSecretValue(name, o);
    let meta: SecretMeta;
    try {
      meta = await vault.rotate(name, input.value, o.description === undefined ? {} : { description: o.description });
    } finally {
      input.buffer.fill(0);
    }
    await audit('secret.rotated', { secretName: name, backend: meta.backend, bytes: meta.bytes });
    if (o.json) printJson({ action: 'rotated', secret: metaJson(meta) });
    else process.stdout.write(`rotated secret ${style.bold(name)}: ${meta.bytes} bytes, created ${meta.createdAt}${newlineNote(input)}\n`);
    return EXIT.ok;
  } finally {
    vault.close();
  }
}

export async function cmdSecretRm(name: string, o: Common): Promise<number> {
  const vault = await openCliVault(o);
  try {
    const backend = vault.backend;
    if (!(await vault.delete(name))) throw secretError(`no secret named ${name}`, 'not-found', 'cordon secret list shows the names', name);
    await audit('secret.removed', { secretName: name, backend });
    if (o.json) printJson({ action: 'removed', name, backend });
    else process.stdout.write(`removed secret ${style.bold(name)}\n`);
    return EXIT.ok;
  } finally {
    vault.close();
  }
}

export async function cmdSecretList(o: Common): Promise<number> {
  const vault = await openCliVault(o);
  try {
    const secrets = await vault.list();
    if (o.json) {
      printJson({ backend: vault.backend, location: vault.location, secrets: secrets.map(metaJson) });
      return EXIT.ok;
    }
    process.stdout.write(style.dim(`vault: ${vault.backend}, ${vault.location}`) + '\n');
    if (secrets.length === 0) {
      process.stdout.write('no secrets; add one with: cordon secret add NAME\n');
      return EXIT.ok;
    }
    const rows = [['NAME', 'BYTES', 'CREATED', 'ROTATED', 'DESCRIPTION'], ...secrets.map((m) => [m.name, String(m.bytes), m.createdAt, m.rotatedAt ?? '-', m.description ?? ''])];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const [i, r] of rows.entries()) {
      const line = r.map((c, j) => (j === r.length - 1 ? c : c.padEnd(widths[j]!))).join('  ').trimEnd();
      process.stdout.write((i === 0 ? style.bold(line) : line) + '\n');
    }
    return EXIT.ok;
  } finally {
    vault.close();
  }
}
